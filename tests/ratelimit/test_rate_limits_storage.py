"""Rate limits on a real Redis and a real memcached: limits shared between application instances,
and the failure policy while Redis is down (sensitive: limited per process; ordinary: open)."""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from limits.storage import RedisStorage

from app.auth.throttle import LOGIN_THROTTLE
from app.ratelimit.fallback import FAIL_OPEN, FALLBACK, RETRY_STORAGE_AFTER_SECONDS
from app.ratelimit.setup import LIMITER, rate_limit_storage
from testkit.builders.households import json_object
from testkit.servers.processes import missing
from testkit.servers.ratelimit import Redis, memcached_server
from testkit.spies import spy
from testkit.typing import LimitedApp


def codes(client: FlaskClient, path: str, n: int) -> list[int]:
    method = client.post if path.endswith("/sensitive") else client.get
    return [method(path).status_code for _ in range(n)]


def test_redis_limits_hold_across_application_instances(
    limited_app: LimitedApp, redis: Redis
) -> None:
    one = limited_app(RATELIMIT_STORAGE_URI=redis.url, RATELIMIT_ANONYMOUS="5/minute")
    two = limited_app(RATELIMIT_STORAGE_URI=redis.url, RATELIMIT_ANONYMOUS="5/minute")
    assert codes(one.test_client(), "/api/limit-test/public", 3) == [200] * 3
    assert codes(two.test_client(), "/api/limit-test/public-other", 3) == [200, 200, 429]
    assert codes(one.test_client(), "/api/limit-test/public", 1) == [429]
    with redis.client() as client:
        keys = [k.decode() for k in client.keys("*")]
    assert keys and all("/hg/caller/ip:127.0.0.1/" in k for k in keys), keys


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_each_strategy_on_redis(limited_app: LimitedApp, redis: Redis, strategy: str) -> None:
    app = limited_app(RATELIMIT_STORAGE_URI=redis.url, RATELIMIT_STRATEGY=strategy,
                      RATELIMIT_ANONYMOUS="4/minute")
    r = None
    client = app.test_client()
    results = []
    for _ in range(8):
        r = client.get("/api/limit-test/public")
        results.append(r.status_code)
    assert results == [200] * 4 + [429] * 4
    assert r is not None and 1 <= json_object(r)["retryAfter"] <= 60


def test_storage_outage_sensitive_limited_ordinary_open_then_shared_again(
    limited_app: LimitedApp, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = limited_app(RATELIMIT_STORAGE_URI=redis.url, LIMIT_TEST_OWN="3/minute")
    storage = rate_limit_storage(app)
    client = app.test_client()
    assert codes(client, "/api/limit-test/sensitive", 4) == [200, 200, 200, 429]
    assert json_object(client.get("/readyz"))["components"]["ratelimit"] == "ok"

    redis.stop()
    with caplog.at_level(logging.WARNING, logger="app.ratelimit.fallback"):
        sensitive = [client.post("/api/limit-test/sensitive") for _ in range(6)]
        ordinary = [client.get("/api/limit-test/read") for _ in range(6)]
        ready = client.get("/readyz")
    # Sensitive: counted in this process with the same limit, a fresh count (never open).
    assert [r.status_code for r in sensitive] == [200, 200, 200, 429, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in sensitive[:3]] == ["2", "1", "0"]
    # Ordinary: let through, without rate-limit headers (nothing was counted).
    assert [r.status_code for r in ordinary] == [200] * 6
    assert not any("X-RateLimit-Limit" in r.headers for r in ordinary)
    assert storage.failures[FALLBACK] >= 6 and storage.failures[FAIL_OPEN] >= 6
    assert ready.status_code == 503 and json_object(ready)["components"]["ratelimit"] == "down"
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "sensitive call limited per process" in warned
    assert "ordinary call not limited" in warned
    assert "rate-limit storage failed: ConnectionError" in warned
    assert redis.url not in warned

    redis.start_again()
    time.sleep(RETRY_STORAGE_AFTER_SECONDS + 0.2)  # the fallback period ends
    assert client.get("/readyz").status_code == 200
    # Shared again: the restarted (empty) Redis counts from zero, for both kinds of route.
    assert codes(client, "/api/limit-test/read", 4) == [200, 200, 200, 429]
    assert codes(client, "/api/limit-test/sensitive", 4) == [200, 200, 200, 429]
    other = limited_app(RATELIMIT_STORAGE_URI=redis.url, LIMIT_TEST_OWN="3/minute")
    assert codes(other.test_client(), "/api/limit-test/read", 1) == [429]


def test_login_throttle_and_contract_limits_share_one_connection_and_one_fallback(
    limited_app: LimitedApp, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One storage per application: one Redis connection for the contract limits and the login
    throttle, and one suspension, so an outage found by one suspends both and both go back to
    Redis together."""
    app = limited_app(RATELIMIT_STORAGE_URI=redis.url, LIMIT_TEST_OWN="3/minute",
                      AUTH_LOCAL_ACCOUNTS_ENABLED=True, AUTH_LOGIN_FAILURES_PER_ACCOUNT="2/minute")
    storage = rate_limit_storage(app)
    assert LIMITER.get(app).fallback is storage
    assert LOGIN_THROTTLE.get(app).storage is storage
    client = app.test_client()
    account = {"email": "hana@example.test", "password": "correct horse battery staple"}
    wrong = {**account, "password": "a wrong password guess"}

    def login(body: dict[str, str]) -> int:
        return client.post("/api/auth/login", json=body).status_code

    assert client.post("/api/auth/register", json={**account, "name": "Hana"}).status_code == 201
    assert login(wrong) == 401
    assert codes(client, "/api/limit-test/sensitive", 1) == [200]
    with redis.client() as watcher:
        mine = str(watcher.client_id())
        connections = [c for c in watcher.client_list() if c["id"] != mine]
        keys = " ".join(k.decode() for k in watcher.keys("*"))
    assert len(connections) == 1, connections
    assert "hearthgate-login-failures/account:" in keys and "/hg/endpoint/" in keys

    # Every command the application sends to Redis, failed or not.
    sent: list[Any] = []
    assert isinstance(storage.storage, RedisStorage)
    redis_client = storage.storage.storage
    send = redis_client.execute_command
    monkeypatch.setattr(redis_client, "execute_command",
                        spy(send, lambda *args, **options: sent.append(args[0])))
    storage.retry_after = 3.0  # room for the logins' hashing on a loaded machine
    redis.stop()
    # The contract limiter finds Redis down and counts this call in the process ...
    assert codes(client, "/api/limit-test/sensitive", 1) == [200]
    assert sent and storage.suspended()
    sent.clear()
    # ... and the throttle, suspended with it, counts in the process without trying Redis: the
    # account's first failure (in Redis) is not seen, so two more are allowed, then 429.
    assert [login(wrong), login(wrong), login(account)] == [401, 401, 429]
    assert sent == []
    fallback_calls = storage.failures[FALLBACK]
    assert fallback_calls >= 1 + 3

    redis.start_again()
    time.sleep(storage.retry_after + 0.2)
    assert not storage.suspended()
    # The throttle's next count goes to Redis (the restart emptied it) ...
    with app.app_context():
        LOGIN_THROTTLE.get(app).failed("192.0.2.1", account["email"])
    assert sent and not storage.suspended() and storage.failures[FALLBACK] == fallback_calls
    # ... and the contract limits count there again at once, without a suspension to wait out.
    sent.clear()
    response = client.post("/api/limit-test/sensitive")
    assert response.status_code == 200 and sent
    assert response.headers["X-RateLimit-Remaining"] == "2"  # Redis's fresh count, not the process's
    assert storage.failures[FALLBACK] == fallback_calls
    with redis.client() as watcher:
        keys = " ".join(k.decode() for k in watcher.keys("*"))
    assert "hearthgate-login-failures/account:" in keys and "/hg/endpoint/" in keys


def test_no_500_when_redis_is_down_from_the_start(limited_app: LimitedApp, redis: Redis) -> None:
    redis.stop()
    app = limited_app(RATELIMIT_STORAGE_URI=redis.url, LIMIT_TEST_OWN="2/minute")
    client = app.test_client()
    assert codes(client, "/api/limit-test/public", 5) == [200] * 5
    assert codes(client, "/api/limit-test/sensitive", 3) == [200, 200, 429]
    assert client.get("/readyz").status_code == 503


def test_memcached_limits_hold_across_application_instances(limited_app: LimitedApp) -> None:
    if importlib.util.find_spec("pymemcache") is None:
        missing("pymemcache is not installed (pip install .[memcached])")
    with memcached_server() as uri:
        one = limited_app(RATELIMIT_STORAGE_URI=uri, RATELIMIT_ANONYMOUS="4/minute")
        two = limited_app(RATELIMIT_STORAGE_URI=uri, RATELIMIT_ANONYMOUS="4/minute")
        assert codes(one.test_client(), "/api/limit-test/public", 2) == [200, 200]
        assert codes(two.test_client(), "/api/limit-test/public", 3) == [200, 200, 429]
        assert json_object(one.test_client().get("/readyz"))["components"]["ratelimit"] == "ok"
