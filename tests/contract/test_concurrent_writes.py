"""Concurrent writes give the same answers on every supported database: one winner, the others
409, a replay or 401, never a 5xx. Real gunicorn with several workers on the test database (a
SQLite file or PostgreSQL), calls released together by a barrier.

On SQLite every writing transaction begins with ``BEGIN IMMEDIATE`` (``app.db``), so writers
queue on the database's one write lock for up to the busy timeout, as PostgreSQL's writers queue
on row locks; reads take no lock. Both databases run this module.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from app.db import SESSIONS
from app.models import AuditEvent, IdempotencyKey, PurchaseRequest, RefreshToken
from testkit.builders.families import (
    INTERNAL_CONFIG,
    Family,
    build_family,
)
from testkit.config import TEST_JWT_SECRET
from testkit.database import truncate_all
from testkit.servers.gunicorn import gunicorn_server, race_responses
from testkit.typing import Json

pytestmark = [pytest.mark.slow]

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's password


@pytest.fixture(scope="module")
def shared_database(
    migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database for the module: the server and the tests' own app use the same file."""
    if not migrated_database.startswith("sqlite:///"):
        yield migrated_database
        truncate_all(migrated_database)  # as conftest's database_url does after each test
        return
    copy = tmp_path_factory.mktemp("concurrent") / "hearthgate.sqlite3"
    shutil.copyfile(migrated_database.removeprefix("sqlite:///"), copy)
    yield f"sqlite:///{copy}"


@pytest.fixture
def database_url(shared_database: str) -> str:
    """The module's database (rows of different tests live side by side: unique emails)."""
    return shared_database


LOCAL_LOGINS = {
    "AUTH_LOCAL_ACCOUNTS_ENABLED": "true",
    # the login throttle would answer 429 before the database is reached
    "AUTH_LOGIN_FAILURES_PER_ACCOUNT": "100000/minute",
    "AUTH_LOGIN_FAILURES_PER_IP": "100000/minute",
}
"""What the servers here add to ``gunicorn_server``'s settings: password logins, unthrottled."""


@pytest.fixture(scope="module")
def shared_server(shared_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """4 gthread workers × 4 threads."""
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with gunicorn_server(shared_database, TEST_JWT_SECRET, workers=4, threads=4, log_path=log,
                         settings=LOCAL_LOGINS) as base:
        yield base
    assert "OperationalError" not in log.read_text(errors="replace")


@pytest.fixture(scope="module")
def default_server(shared_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The development defaults: WEB_CONCURRENCY and GUNICORN_THREADS unset (2 sync workers)."""
    log = tmp_path_factory.mktemp("gunicorn") / "default.log"
    with gunicorn_server(shared_database, TEST_JWT_SECRET, workers=None, threads=None,
                         log_path=log, settings={**LOCAL_LOGINS, "HEARTHGATE_ENV": "development"}
                         ) as base:
        yield base
    assert "OperationalError" not in log.read_text(errors="replace")


@pytest.fixture
def family(make_app: Callable[..., Flask]) -> Family:
    return build_family(make_app(**INTERNAL_CONFIG), prefix=f"{uuid.uuid4().hex[:8]}-")


def statuses(answers: list[requests.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def count(app: Flask, model: type, *where: Any) -> int:
    with SESSIONS.get(app)() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audited(family: Family, action: str, decision: str = "allowed", **where: Any) -> int:
    clauses = [AuditEvent.action == action, AuditEvent.decision == decision]
    clauses += [getattr(AuditEvent, name) == value for name, value in where.items()]
    return count(family.app, AuditEvent, *clauses)


# -- the buy-flow ----------------------------------------------------------------------------


def test_forty_concurrent_approvals_approve_once(shared_server: str, family: Family) -> None:
    request_id = family.submit()
    url = shared_server + family.url(f"/{request_id}/approve")
    approvers = [family.headers(family.owner), family.headers(family.adult)]
    answers = race_responses([
        (lambda h: lambda s: s.post(url, headers=h, timeout=60))(approvers[i % 2])
        for i in range(40)
    ])
    assert statuses(answers) == {200: 1, 409: 39}, statuses(answers)
    assert all(a.json()["error"] == "Conflict" for a in answers if a.status_code == 409)
    assert family.request_row(request_id).status == "APPROVED"
    assert audited(family, "request.approved", household_id=family.household_id) == 1


def test_forty_identical_idempotency_key_posts_create_one_request(
    shared_server: str, family: Family
) -> None:
    url = shared_server + family.url()
    body: dict[str, Json] = {"title": "Skates", "amountMinor": 9000, "currency": "EUR"}
    headers = {**family.headers(family.child), "Idempotency-Key": "skates-" + family.child.id}
    answers = race_responses([lambda s: s.post(url, json=body, headers=headers, timeout=60)] * 40)
    assert statuses(answers) == {201: 40}, statuses(answers)
    assert len({a.json()["id"] for a in answers}) == 1  # every answer replays the one request
    household = PurchaseRequest.household_id == family.household_id
    assert count(family.app, PurchaseRequest, household) == 1
    assert count(family.app, IdempotencyKey, IdempotencyKey.user_id == family.child.id) == 1
    assert audited(family, "request.created", household_id=family.household_id) == 1


def test_refused_confirmations_with_a_key_are_403_and_all_audited(
    shared_server: str, family: Family
) -> None:
    """Wrong tokens and a non-actor, each with an Idempotency-Key, against the real checkout."""
    request_id, intent = family.cart_ready_intent()  # the adult is the actor
    url = shared_server + family.url(f"/{request_id}/confirm-checkout")
    calls = []
    for i in range(20):
        by = family.adult if i % 2 == 0 else family.owner
        token = "A" * 43 if i % 2 == 0 else intent["confirmationToken"]
        headers = {**family.headers(by), "Idempotency-Key": f"refused-{i}"}
        body = {"intentId": intent["intentId"], "confirmationToken": token}
        calls.append((lambda h, b: lambda s: s.post(url, json=b, headers=h, timeout=60))(
            headers, body))
    answers = race_responses(calls)
    assert statuses(answers) == {403: 20}, statuses(answers)
    assert audited(family, "checkout.confirm", "denied", household_id=family.household_id) == 20
    assert family.intent_row(intent["intentId"]).status == "CART_READY"
    owner_or_adult = IdempotencyKey.user_id.in_([family.adult.id, family.owner.id])
    assert count(family.app, IdempotencyKey, owner_or_adult) == 0


# -- identity --------------------------------------------------------------------------------


def register_and_log_in(base: str, email: str) -> dict[str, Any]:
    r = requests.post(f"{base}/api/auth/register", timeout=30,
                      json={"email": email, "password": PASSWORD, "name": "Racer"})
    assert r.status_code == 201, r.text
    r = requests.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD},
                      timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def refresh_race(base: str, app: Flask, calls: int = 8) -> None:
    """``calls`` refreshes of one refresh token: one new pair; the others present a token spent a
    moment ago, within the reuse grace (``AUTH_REFRESH_REUSE_GRACE_SECONDS``): 409, and nothing
    is revoked, so the winner's new pair stays valid (API.md: two tabs must not log out)."""
    pair = register_and_log_in(base, f"refresh-{uuid.uuid4().hex[:12]}@example.test")
    body = {"refreshToken": pair["refreshToken"]}
    url = f"{base}/api/auth/refresh"
    answers = race_responses([lambda s: s.post(url, json=body, timeout=60)] * calls)
    assert statuses(answers) == {200: 1, 409: calls - 1}, statuses(answers)
    winner = next(a.json() for a in answers if a.status_code == 200)
    user_id = pair["user"]["id"]
    mine = RefreshToken.user_id == user_id
    assert count(app, RefreshToken, mine) == 2  # the login's and the winner's, nothing else
    assert count(app, RefreshToken, mine, RefreshToken.revoked_at.is_(None)) == 2
    again = requests.post(f"{base}/api/auth/refresh", timeout=30,
                          json={"refreshToken": winner["refreshToken"]})
    assert again.status_code == 200  # the successor pair works
    reuse = [AuditEvent.action == "auth.refresh.reuse", AuditEvent.principal_id == user_id]
    assert count(app, AuditEvent, *reuse) == 0
    assert count(app, AuditEvent, AuditEvent.action == "auth.refresh",
                 AuditEvent.decision == "allowed", AuditEvent.principal_id == user_id) == 2
    assert count(app, AuditEvent, AuditEvent.action == "auth.refresh",
                 AuditEvent.decision == "denied", AuditEvent.principal_id == user_id) == calls - 1


def test_eight_concurrent_refreshes_of_one_token_rotate_once(
    shared_server: str, make_app: Callable[..., Flask]
) -> None:
    app = make_app()
    for _ in range(3):
        refresh_race(shared_server, app)


def test_a_hundred_failed_logins_from_eight_threads_are_all_401_and_audited(
    shared_server: str, make_app: Callable[..., Flask]
) -> None:
    app = make_app()
    email = f"guessed-{uuid.uuid4().hex[:12]}@example.test"
    register_and_log_in(shared_server, email)
    before = count(app, AuditEvent, AuditEvent.action == "auth.login",
                   AuditEvent.decision == "denied")
    barrier = threading.Barrier(8)

    def guess(thread: int) -> list[int]:
        with requests.Session() as session:
            barrier.wait(timeout=60)
            return [
                session.post(f"{shared_server}/api/auth/login", timeout=60,
                             json={"email": email, "password": f"wrong-{thread}-{n}"}).status_code
                for n in range(100 // 8 + (1 if thread < 100 % 8 else 0))
            ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = Counter(s for codes in pool.map(guess, range(8)) for s in codes)
    assert answers == {401: 100}, answers
    after = count(app, AuditEvent, AuditEvent.action == "auth.login",
                  AuditEvent.decision == "denied")
    assert after - before == 100


# -- the development defaults ----------------------------------------------------------------


def test_the_default_workers_answer_races_without_5xx(
    default_server: str, family: Family
) -> None:
    """``scripts/run`` and an unset WEB_CONCURRENCY: sync workers, several of them."""
    refresh_race(default_server, family.app)
    request_id = family.submit()
    url = default_server + family.url(f"/{request_id}/approve")
    headers = family.headers(family.adult)
    answers = race_responses([lambda s: s.post(url, headers=headers, timeout=60)] * 20)
    assert statuses(answers) == {200: 1, 409: 19}, statuses(answers)
    assert family.request_row(request_id).status == "APPROVED"


@pytest.mark.sqlite_only
def test_a_writer_waits_for_the_lock_and_a_reader_does_not(
    shared_server: str, family: Family, shared_database: str
) -> None:
    """While another connection holds SQLite's write lock, a write queues behind it (and then
    answers as usual) and a read answers at once."""
    import sqlite3
    import time

    request_id = family.submit()
    holder = sqlite3.connect(shared_database.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        read = requests.get(shared_server + family.url(f"/{request_id}"),
                            headers=family.headers(family.adult), timeout=30)
        read_took = time.monotonic() - started
        assert read.status_code == 200 and read_took < 1.0

        results: list[requests.Response] = []
        writer = threading.Thread(target=lambda: results.append(requests.post(
            shared_server + family.url(f"/{request_id}/approve"), headers=family.headers(family.adult),
            timeout=30)))
        writer.start()
        time.sleep(1.0)
        assert not results  # still queued behind the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    writer.join(timeout=30)
    assert [r.status_code for r in results] == [200]
    assert family.request_row(request_id).status == "APPROVED"
