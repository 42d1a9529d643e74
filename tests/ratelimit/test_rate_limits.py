"""Rate limits in one process (memory:// storage): buckets, keys, headers, the 429 body,
strategies, configuration and the storage hook."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits.storage import MemoryStorage, RedisSentinelStorage

from app.config import ConfigurationError, ConfigurationRefused
from app.gateway.contracts import RATE_LIMIT, contract_of
from app.hookspecs import hookimpl
from app.plugins import PLUGINS
from app.ratelimit import storage as limit_storage
from app.ratelimit.memory import SweptMemoryStorage
from app.ratelimit.setup import LIMITER, rate_limit_storage
from app.readiness import CHECKS
from plugins.limiter import limiter_storage, with_redis_timeouts
from testkit.builders.households import AuthActions, json_object, snapshot
from testkit.spies import spy
from testkit.typing import MakeApp

LimitedApp = Callable[..., Flask]


def statuses(client: FlaskClient, path: str, n: int, **kwargs: Any) -> list[int]:
    method = client.post if path.endswith("/sensitive") else client.get
    return [method(path, **kwargs).status_code for _ in range(n)]


def test_anonymous_bucket_is_one_per_ip_across_routes(limited_app: LimitedApp) -> None:
    client = limited_app(RATELIMIT_ANONYMOUS="5/minute").test_client()
    assert statuses(client, "/api/limit-test/public", 3) == [200] * 3
    assert statuses(client, "/api/limit-test/public-other", 2) == [200] * 2
    assert client.get("/api/limit-test/public").status_code == 429
    assert client.get("/api/limit-test/public-other").status_code == 429
    other_ip = {"REMOTE_ADDR": "198.51.100.9"}
    assert client.get("/api/limit-test/public", environ_base=other_ip).status_code == 200


def test_authenticated_bucket_is_one_per_verified_sub(limited_app: LimitedApp) -> None:
    app = limited_app(RATELIMIT_AUTHENTICATED="4/minute", RATELIMIT_ANONYMOUS="2/minute")
    auth = AuthActions(app)
    alice, bob = auth.user("alice@example.test"), auth.user("bob@example.test")
    client = app.test_client()
    # Two tokens of one user are one bucket: the key is the verified sub, not the token.
    first, second = auth.headers(alice), auth.headers(alice)
    assert statuses(client, "/api/limit-test/me", 2, headers=first) == [200, 200]
    assert statuses(client, "/api/limit-test/me-other", 2, headers=second) == [200, 200]
    assert client.get("/api/limit-test/me", headers=first).status_code == 429
    assert statuses(client, "/api/limit-test/me", 4, headers=auth.headers(bob)) == [200] * 4
    # The same IP's anonymous bucket was never touched by authenticated calls.
    assert statuses(client, "/api/limit-test/public", 3) == [200, 200, 429]


def test_own_limit_is_a_bucket_beside_the_callers(limited_app: LimitedApp) -> None:
    app = limited_app(RATELIMIT_AUTHENTICATED="10/minute", LIMIT_TEST_OWN="3/minute")
    auth = AuthActions(app)
    headers = auth.headers(auth.user("carol@example.test"))
    client = app.test_client()
    assert statuses(client, "/api/limit-test/own", 5, headers=headers) == [200] * 3 + [429] * 2
    # Those five calls also cost the caller's bucket: 10 - 5 left for every other route.
    assert statuses(client, "/api/limit-test/me", 6, headers=headers) == [200] * 5 + [429]
    denied = client.get("/api/limit-test/own", headers=headers)
    assert denied.status_code == 429 and json_object(denied)["limit"] == 10  # caller bucket first


def test_headers_are_consistent_across_a_window_and_429_matches_the_contract(
    limited_app: LimitedApp,
) -> None:
    app = limited_app(RATELIMIT_ANONYMOUS="5/minute", CORS_ORIGINS=["https://spa.example.test"])
    client = app.test_client()
    resets = set()
    for expected_remaining in range(4, -1, -1):
        r = client.get("/api/limit-test/public", headers={"Origin": "https://spa.example.test"})
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert r.headers["X-RateLimit-Remaining"] == str(expected_remaining)
        resets.add(r.headers["X-RateLimit-Reset"])
        assert r.headers["RateLimit-Policy"] == '"anonymous";q=5;w=60'
        assert r.headers["RateLimit"].startswith(f'"anonymous";r={expected_remaining};t=')
        seconds = int(r.headers["RateLimit"].rsplit("t=", 1)[1])
        assert 0 < seconds <= 60
        assert "Retry-After" not in r.headers
        exposed = r.headers["Access-Control-Expose-Headers"]
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                     "RateLimit-Policy", "RateLimit", "Retry-After"):
            assert name in exposed
    assert len(resets) == 1  # the window does not move while it lasts
    reset = int(resets.pop())
    assert time.time() < reset <= math.ceil(time.time()) + 60

    r = client.get("/api/limit-test/public")
    assert r.status_code == 429
    body = r.get_json()
    assert set(body) == {"error", "message", "correlationId", "timestamp", "retryAfter", "limit",
                         "window"}
    assert body["error"] == "TooManyRequests"
    assert body["limit"] == 5 and body["window"] == 60
    assert body["correlationId"] == r.headers["X-Request-ID"]
    assert int(r.headers["Retry-After"]) == body["retryAfter"]
    assert 1 <= body["retryAfter"] <= 60
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["X-RateLimit-Reset"] == str(reset)


def test_own_limit_headers_show_the_binding_bucket_and_list_both_policies(
    limited_app: LimitedApp,
) -> None:
    app = limited_app(RATELIMIT_ANONYMOUS="10/minute", LIMIT_TEST_OWN="2/30 seconds")
    r = app.test_client().get("/api/limit-test/read")
    assert r.headers["RateLimit-Policy"] == '"anonymous";q=10;w=60, "endpoint";q=2;w=30'
    assert r.headers["X-RateLimit-Limit"] == "2" and r.headers["X-RateLimit-Remaining"] == "1"
    assert r.headers["RateLimit"].startswith('"endpoint";r=1;')


def test_health_endpoints_are_not_limited(limited_app: LimitedApp) -> None:
    client = limited_app(RATELIMIT_ANONYMOUS="1/minute").test_client()
    for path in ["/healthz", "/readyz"] * 4:
        r = client.get(path)
        assert r.status_code == 200, r.get_json()
        assert "X-RateLimit-Limit" not in r.headers


def test_disabled_limits_neither_limit_nor_add_headers(limited_app: LimitedApp) -> None:
    app = limited_app(RATELIMIT_ENABLED=False, RATELIMIT_ANONYMOUS="1/minute")
    assert LIMITER.find(app) is None and RATE_LIMIT.find(app) is None
    client = app.test_client()
    responses = [client.get("/api/limit-test/public") for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert not any("X-RateLimit-Limit" in r.headers for r in responses)
    assert "ratelimit" not in CHECKS.get(app)


@pytest.mark.parametrize(
    "strategy", ["fixed-window", "moving-window", "sliding-window-counter", "sliding", "moving"]
)
def test_each_strategy_lets_exactly_the_limit_through(limited_app: LimitedApp, strategy: str) -> None:
    client = limited_app(RATELIMIT_STRATEGY=strategy, RATELIMIT_ANONYMOUS="3/minute").test_client()
    codes = statuses(client, "/api/limit-test/public", 10)
    assert codes == [200] * 3 + [429] * 7


def test_failed_authentication_costs_the_ip_quota_and_changes_nothing(
    limited_app: LimitedApp,
) -> None:
    app = limited_app(RATELIMIT_ANONYMOUS="3/minute")
    auth = AuthActions(app)
    valid = auth.headers(auth.user("dave@example.test"))
    before = snapshot(app)
    client = app.test_client()
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfeCJ9."}
    assert statuses(client, "/api/limit-test/me", 3, headers=forged) == [401] * 3
    r = client.get("/api/limit-test/me", headers=forged)
    assert r.status_code == 429 and json_object(r)["error"] == "TooManyRequests"
    assert client.get("/api/limit-test/me").status_code == 429  # no header at all: same bucket
    assert snapshot(app) == before
    # A genuine token from the same address has its own bucket (its sub).
    assert client.get("/api/limit-test/me", headers=valid).status_code == 200


@pytest.mark.parametrize("trusted, key_from", [(0, "socket"), (1, "right-most")])
def test_forwarded_for_is_trusted_only_through_the_configured_hops(
    limited_app: LimitedApp, trusted: int, key_from: str
) -> None:
    client = limited_app(RATELIMIT_ANONYMOUS="3/minute", TRUSTED_PROXY_COUNT=trusted).test_client()
    codes = [
        client.get("/api/limit-test/public",
                   headers={"X-Forwarded-For": f"10.0.{i}.1, 203.0.113.7"}).status_code
        for i in range(6)
    ]
    assert codes == [200] * 3 + [429] * 3  # rotating the client-written part never escapes
    fresh = client.get("/api/limit-test/public",
                       headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.8"}).status_code
    # With one trusted hop a new right-most address is a new client; with none it is ignored.
    assert fresh == (200 if key_from == "right-most" else 429)


@pytest.mark.parametrize(
    "value",
    ["", ",", "garbage", "1.2.3.4, not-an-ip", "::1, [::1]:80", "999.1.1.1", "a" * 5000,
     "203.0.113.7,203.0.113.7,203.0.113.7", "fe80::1%eth0", "\u00e9\u00e9"],
)
def test_malformed_forwarded_for_never_crashes_or_chooses_the_key(
    limited_app: LimitedApp, value: str
) -> None:
    client = limited_app(RATELIMIT_ANONYMOUS="2/minute", TRUSTED_PROXY_COUNT=1).test_client()
    codes = [client.get("/api/limit-test/public", headers={"X-Forwarded-For": value}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


def test_login_throttle_keys_are_hashed_and_its_429_is_the_contract_limiters(
    limited_app: LimitedApp,
) -> None:
    """The failed-login throttle counts in the application's one storage, accounts hashed, and
    refuses with the same 429 body as a contract limit, whether or not RATELIMIT_ENABLED."""
    for enabled in (True, False):
        app = limited_app(RATELIMIT_ENABLED=enabled, AUTH_LOCAL_ACCOUNTS_ENABLED=True,
                          AUTH_LOGIN_FAILURES_PER_ACCOUNT="2/minute")
        client = app.test_client()
        body = {"email": "Erin@Example.test", "password": "not the password at all"}
        codes = [client.post("/api/auth/login", json=body).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        other = client.post("/api/auth/login", json={**body, "email": "frank@example.test"})
        assert other.status_code == 401  # another account, another bucket
        refused = client.post("/api/auth/login", json=body)
        assert set(refused.get_json()) == {"error", "message", "correlationId", "timestamp",
                                           "retryAfter", "limit", "window"}
        assert json_object(refused)["error"] == "TooManyRequests"
        assert json_object(refused)["limit"] == 2 and json_object(refused)["window"] == 60
        assert int(refused.headers["Retry-After"]) == json_object(refused)["retryAfter"] >= 1
        shared = rate_limit_storage(app).storage
        assert isinstance(shared, MemoryStorage)
        keys = " ".join(shared.storage)
        assert "hearthgate-login-failures" in keys
        assert "erin" not in keys.lower() and "frank" not in keys.lower()
        assert limit_storage.hashed_key("erin@example.test") in keys


@pytest.mark.parametrize(
    "changes, setting, error",
    [
        ({"RATELIMIT_STRATEGY": "leaky-bucket"}, "RATELIMIT_STRATEGY", ConfigurationError),
        ({"RATELIMIT_ANONYMOUS": "lots"}, "RATELIMIT_ANONYMOUS", ConfigurationError),
        ({"RATELIMIT_AUTHENTICATED": "100 per fortnight"}, "RATELIMIT_AUTHENTICATED",
         ConfigurationError),
        ({"RATELIMIT_STORAGE_URI": "mongodb://127.0.0.1:1/x"}, "RATELIMIT_STORAGE_URI",
         ConfigurationRefused),
        ({"RATELIMIT_STORAGE_URI": "memcached://127.0.0.1:1", "RATELIMIT_STRATEGY": "moving-window"},
         "RATELIMIT_STRATEGY", ConfigurationError),
    ],
)
def test_bad_limit_settings_refuse_the_start_by_name(
    limited_app: LimitedApp, changes: dict[str, Any], setting: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as refused:
        limited_app(**changes)
    assert setting in str(refused.value)


def test_every_contract_limit_of_the_application_parses(limited_app: LimitedApp) -> None:
    app = limited_app()
    limiter = LIMITER.get(app)
    declared = [c.rate_limit for view in app.view_functions.values()
                if (c := contract_of(view)) is not None and c.rate_limit]
    assert declared  # at least the test routes' own limits
    for text in declared:
        assert limiter.item_for(text).amount > 0


# -- the limiter_storage hook -------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri", ["memory://", "redis://h:6379/0", "rediss://h:6380", "redis+sentinel://h:26379/m",
            "redis+cluster://h:7000", "redis+unix:///tmp/r.sock", "memcached://h:11211"],
)
def test_builtin_plugin_accepts_the_limits_schemes(uri: str) -> None:
    accepted = limiter_storage(uri=uri, config={})
    assert accepted is not None and accepted.split("://")[0] == uri.split("://")[0]


@pytest.mark.parametrize("uri", ["mongodb://h/x", "http://h", "", "memory", "file:///tmp/x"])
def test_builtin_plugin_declines_other_schemes(uri: str) -> None:
    assert limiter_storage(uri=uri, config={}) is None


def test_redis_uris_get_timeouts_unless_they_set_their_own() -> None:
    assert with_redis_timeouts("redis://h:1/0") == (
        "redis://h:1/0?socket_connect_timeout=1&socket_timeout=1")
    assert with_redis_timeouts("redis://h:1/0?socket_timeout=5") == (
        "redis://h:1/0?socket_timeout=5&socket_connect_timeout=1")


def test_a_sentinel_storage_gets_timeouts_for_the_sentinels_and_the_master(make_app: MakeApp) -> None:
    # Nothing listens on port 1: building the storage connects to nothing, a request would.
    app = make_app(RATELIMIT_ENABLED=True,
                   RATELIMIT_STORAGE_URI="redis+sentinel://127.0.0.1:1/mymaster")
    shared = rate_limit_storage(app).storage
    assert isinstance(shared, RedisSentinelStorage)
    sentinel = shared.sentinel
    assert sentinel.sentinel_kwargs == {"socket_connect_timeout": 1, "socket_timeout": 1}
    assert sentinel.connection_kwargs == {"socket_connect_timeout": 1, "socket_timeout": 1}
    assert limit_storage.storage_options("redis+cluster://h:7000") == {
        "socket_connect_timeout": 1, "socket_timeout": 1}
    assert limit_storage.storage_options("redis://h:1/0") == {}  # its URI carries them


def test_a_plugin_can_serve_its_own_storage_scheme(limited_app: LimitedApp) -> None:
    class CustomStorage:
        @hookimpl
        def limiter_storage(self, uri: str, config: dict[str, Any]) -> str | None:
            return "memory://" if uri.startswith("custom://") else None

    app = limited_app()
    manager = PLUGINS.get(app)
    plugin = CustomStorage()
    manager.register(plugin)
    try:
        app.config["RATELIMIT_STORAGE_URI"] = "custom://anything"
        assert limit_storage.storage_uri(app, manager.hook.limiter_storage) == "memory://"
    finally:
        manager.unregister(plugin)
    with pytest.raises(ConfigurationRefused, match="RATELIMIT_STORAGE_URI"):
        limit_storage.storage_uri(app, manager.hook.limiter_storage)


def test_storage_password_is_redacted_from_logs(
    limited_app: LimitedApp, caplog: pytest.LogCaptureFixture
) -> None:
    password = "limiter-pw-0123456789"
    app = limited_app(RATELIMIT_STORAGE_URI=f"redis://:{password}@127.0.0.1:1/0")
    with caplog.at_level(logging.INFO):
        logging.getLogger("hearthgate.test").warning("connecting to %s",
                                                     app.config["RATELIMIT_STORAGE_URI"])
    assert caplog.records and password not in caplog.text


# -- machine callers and routes outside the caller's bucket (main app routes) ---------------------

INTERNAL = "internal-token-for-rate-limit-tests"


def test_internal_callers_share_a_service_bucket_not_the_ip_budget(make_app: MakeApp) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="3/minute", RATELIMIT_INTERNAL="5/minute",
                   ORCHESTRATOR_INTERNAL_TOKEN=[INTERNAL], REQUIRE_INTERNAL_EVENT_TOKEN=True)
    client = app.test_client()
    body = {"intentId": "pi_00000000000000000000000000", "type": "page", "data": {}}
    statuses = [client.post("/api/internal/events", json=body, headers={"X-Internal-Token": INTERNAL}).status_code
                for _ in range(7)]
    assert 429 not in statuses[:5] and statuses[5:] == [429, 429]
    r = client.post("/api/internal/events", json=body, headers={"X-Internal-Token": INTERNAL})
    assert json_object(r)["limit"] == 5 and '"service"' in r.headers["RateLimit-Policy"]
    # the same address as an anonymous visitor still has its own, untouched budget
    assert client.get("/api/openapi.json").status_code == 200
    assert client.post("/api/voice/live/public-session").status_code == 201


def test_voice_sessions_follow_their_own_limit_only(make_app: MakeApp) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="3/minute",
                   VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS=12, VOICE_LIVE_PUBLIC_RATE_LIMIT_WINDOW_SECONDS=60)
    client = app.test_client()
    statuses = [client.post("/api/voice/live/public-session").status_code for _ in range(13)]
    assert statuses[:12] == [201] * 12 and statuses[12] == 429
    other = client.post("/api/voice/live/public-session", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 201  # per client IP


def test_webhooks_are_not_cut_by_the_anonymous_limit(make_app: MakeApp) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="2/minute", WEBHOOK_RATE_LIMIT="4/minute",
                   HYPERBEAM_ENFORCE_EVENT_SIGNATURES=False)
    client = app.test_client()
    statuses = []
    for n in range(5):
        statuses.append(client.post("/api/webhooks/hyperbeam", json={"type": "t", "intentId": None, "data": {}},
                                    headers={"webhook-id": f"msg_{n}", "webhook-timestamp": "1",
                                             "webhook-signature": "v1,x"}).status_code)
    assert 429 not in statuses[:4] and statuses[4] == 429


def test_the_memory_storage_counts_without_starting_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time as clock

    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    storage = SweptMemoryStorage()
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", spy(real_start, started.append))
    limiter = FixedWindowRateLimiter(storage)
    item = parse("3/second")
    assert [limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    for n in range(50):
        limiter.hit(parse("1000/second"), f"visitor-{n}")
    assert started == []
    assert "visitor-0" in " ".join(storage.storage)
    # Past their window and the sweep interval, counters nobody asks about are dropped inline.
    monkeypatch.setattr(storage, "_next_sweep", clock.monotonic() - 1)
    real_time = clock.time
    monkeypatch.setattr(clock, "time", lambda: real_time() + 5)
    limiter.hit(item, "k")
    assert not [key for key in storage.storage if "visitor" in key] and started == []
