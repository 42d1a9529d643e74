"""Rate limits as deployed: gunicorn with several workers in front of a real Redis.

Requests are sent 16 at a time on fresh connections, so that every worker serves some of them
(each response names its worker); the counts are exact because the storage is shared.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from flask import Flask

from app.gateway.tokens import ACCESS_TOKENS
from app.ratelimit.fallback import RETRY_STORAGE_AFTER_SECONDS
from testkit.config import TEST_JWT_SECRET
from testkit.servers.ratelimit import Gunicorn, Redis, gunicorn, redis_server

pytestmark = pytest.mark.slow

LIMIT = 20
REQUESTS = 100


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


def burst(send: Callable[[int], requests.Response], n: int = REQUESTS) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(send, range(n)))


def tally(responses: list[requests.Response]) -> Counter[int]:
    counts = Counter(r.status_code for r in responses)
    print("statuses:", dict(sorted(counts.items())))  # the measured counts, shown with -s
    return counts


def workers_of(responses: list[requests.Response]) -> set[str]:
    return {r.headers["X-Test-Worker"] for r in responses}


def bearer(app: Flask, sub: str) -> dict[str, str]:
    minted = ACCESS_TOKENS.get(app).mint(
        {"sub": sub, "email": f"{sub}@example.test", "name": sub, "permissions": [], "sid": "rtf_t"}
    )
    return {"Authorization": f"Bearer {minted.token}"}


def redis_env(redis: Redis, **extra: str) -> dict[str, str]:
    return {
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_STORAGE_URI": redis.url,
        "RATELIMIT_ANONYMOUS": f"{LIMIT}/minute",
        "RATELIMIT_AUTHENTICATED": "1000/minute",
        "LIMIT_TEST_OWN": f"{LIMIT}/minute",
        "AUTH_JWT_SECRET": TEST_JWT_SECRET,
        **extra,
    }


@pytest.fixture(scope="module")
def four_workers(redis: Redis) -> Iterator[Gunicorn]:
    with gunicorn(4, **redis_env(redis)) as server:
        yield server


def test_redis_four_workers_anonymous_limit_is_exact(four_workers: Gunicorn, redis: Redis) -> None:
    redis.flush()
    responses = burst(lambda _: four_workers.get("/api/limit-test/public"))
    assert tally(responses) == {200: LIMIT, 429: REQUESTS - LIMIT}
    assert len(workers_of(responses)) == 4


def test_redis_four_workers_own_limit_per_sub_is_exact(
    four_workers: Gunicorn, redis: Redis, app: Flask
) -> None:
    redis.flush()
    headers = bearer(app, "usr_" + uuid.uuid4().hex)
    responses = burst(lambda _: four_workers.get("/api/limit-test/own", headers=headers))
    assert tally(responses) == {200: LIMIT, 429: REQUESTS - LIMIT}
    assert len(workers_of(responses)) == 4
    denied = next(r for r in responses if r.status_code == 429)
    assert denied.json()["limit"] == LIMIT and denied.json()["window"] == 60
    assert int(denied.headers["Retry-After"]) == denied.json()["retryAfter"]


def test_rotating_forwarded_for_without_trusted_proxies_cannot_escape(
    four_workers: Gunicorn, redis: Redis
) -> None:
    redis.flush()
    responses = burst(lambda i: four_workers.get(
        "/api/limit-test/public", headers={"X-Forwarded-For": f"198.51.100.{i % 250}"}))
    assert tally(responses) == {200: LIMIT, 429: REQUESTS - LIMIT}


def test_headers_are_consistent_across_workers_within_a_window(
    four_workers: Gunicorn, redis: Redis
) -> None:
    redis.flush()
    responses = [four_workers.get("/api/limit-test/public") for _ in range(LIMIT + 1)]
    ok, denied = responses[:LIMIT], responses[LIMIT]
    assert [r.status_code for r in ok] == [200] * LIMIT and denied.status_code == 429
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in ok] == list(range(LIMIT - 1, -1, -1))
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {str(LIMIT)}
    assert {r.headers["RateLimit-Policy"] for r in responses} == {f'"anonymous";q={LIMIT};w=60'}
    resets = [int(r.headers["X-RateLimit-Reset"]) for r in responses]
    # Each worker computes the reset from the key's remaining lifetime when it answers, then rounds
    # up to whole seconds: a boundary crossed between two answers shows as one second more.
    assert max(resets) - min(resets) <= 1
    assert int(denied.headers["Retry-After"]) == denied.json()["retryAfter"] >= 1


def test_memory_storage_with_one_worker_is_exact() -> None:
    env = {
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ANONYMOUS": f"{LIMIT}/minute",
    }
    with gunicorn(1, **env) as server:
        responses = burst(lambda _: server.get("/api/limit-test/public"))
    assert tally(responses) == {200: LIMIT, 429: REQUESTS - LIMIT}


def test_one_trusted_proxy_keys_by_the_right_most_address(redis: Redis, app: Flask) -> None:
    redis.flush()
    env = redis_env(redis, TRUSTED_PROXY_COUNT="1", RATELIMIT_AUTHENTICATED=f"{LIMIT}/minute")
    with gunicorn(4, **env) as server:
        # The client writes the left part; our proxy appends the address it saw.
        spoofed = burst(lambda i: server.get(
            "/api/limit-test/public", headers={"X-Forwarded-For": f"10.1.{i}.1, 203.0.113.7"}))
        assert tally(spoofed) == {200: LIMIT, 429: REQUESTS - LIMIT}
        other = burst(lambda i: server.get(
            "/api/limit-test/public", headers={"X-Forwarded-For": f"10.2.{i}.1, 203.0.113.8"}))
        assert tally(other) == {200: LIMIT, 429: REQUESTS - LIMIT}  # a different client
        headers = bearer(app, "usr_" + uuid.uuid4().hex)
        rotating = burst(lambda i: server.get(
            "/api/limit-test/me",
            headers={**headers, "X-Forwarded-For": f"198.51.100.{i % 250}"}))
        assert tally(rotating) == {200: LIMIT, 429: REQUESTS - LIMIT}  # one sub, one bucket


def test_redis_outage_sensitive_limited_reads_open_no_500_then_shared_again() -> None:
    own = 5
    with redis_server() as redis:
        env = redis_env(redis, RATELIMIT_ANONYMOUS="1000/minute", LIMIT_TEST_OWN=f"{own}/minute")
        with gunicorn(4, **env) as server:
            shared = burst(lambda _: server.post("/api/limit-test/sensitive"), 40)
            assert tally(shared) == {200: own, 429: 40 - own}

            redis.stop()
            sensitive = burst(lambda _: server.post("/api/limit-test/sensitive"), 60)
            reads = burst(lambda _: server.get("/api/limit-test/read"), 60)
            ready = server.get("/readyz")
            counts = tally(sensitive)
            # Each worker counts alone now: at most one limit per worker, never unlimited.
            assert set(counts) <= {200, 429}
            assert own <= counts[200] <= own * 4 and counts[429] >= 60 - own * 4
            assert tally(reads) == {200: 60}  # ordinary reads fail open
            assert ready.status_code == 503 and ready.json()["components"]["ratelimit"] == "down"

            redis.start_again()
            time.sleep(RETRY_STORAGE_AFTER_SECONDS + 0.5)  # each worker's fallback ends
            assert server.get("/readyz").status_code == 200
            resumed = burst(lambda _: server.post("/api/limit-test/sensitive"), 40)
            assert tally(resumed) == {200: own, 429: 40 - own}
            reads_again = burst(lambda _: server.get("/api/limit-test/read"), 40)
            assert tally(reads_again) == {200: own, 429: 40 - own}
            log = server.log()
        assert "sensitive call limited per process" in log
        assert "ordinary call not limited" in log
        assert "Traceback" not in log
