"""No global lock: on a PostgreSQL started with ``log_lock_waits=on`` and ``deadlock_timeout=1ms``
(every lock wait longer than 1 ms is logged), 200 concurrent password logins of 200 distinct
users plus a concurrent burst of 403s from another user, through gunicorn: no login waits on any
lock. The only waits in the server's log are the burst's own, on the denied user's chain (the
events of one principal form one sequence, so they queue behind each other — and behind nobody
else). Every login and every denial is on its user's own chain, and the trail verifies."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.audit.signing import PublicKeys, generate_pem, load_private_key
from app.audit.verify import verify_database
from app.audit.writer import _chain_lock_key
from app.auth.passwords import hash_password
from app.cli import migrate
from app.models import AuditEvent, User
from testkit.servers.postgres import Postgres, postgres_server
from testkit.servers.processes import free_port, gunicorn_process

pytestmark = pytest.mark.postgres_only

USERS = 200
DENIALS = 100
CLIENTS = 32
PASSWORD = "lock free passphrase 42"  # noqa: S105 - test value
WAIT_MARKERS = ("still waiting for", "acquired ShareLock", "acquired ExclusiveLock",
                "acquired AccessExclusiveLock", "acquired RowExclusiveLock")


@pytest.fixture(scope="module")
def lock_logging_postgres() -> Iterator[Postgres]:
    with postgres_server(("log_lock_waits=on", "deadlock_timeout=1ms")) as pg:
        pg.psql("CREATE DATABASE lockfree")
        yield pg


def _log(pg: Postgres) -> Path:
    return pg.directory / "postgres.log"


def _waits(text_: str) -> list[str]:
    return [line for line in text_.splitlines() if any(m in line for m in WAIT_MARKERS)]


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    return _send(request)


def _get(url: str, token: str) -> tuple[int, dict[str, Any]]:
    return _send(urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, headers={"Authorization": f"Bearer {token}"}))


def _send(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - 127.0.0.1
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_logins_and_denials_of_different_users_never_wait_on_a_lock(
    lock_logging_postgres: Postgres, tmp_path: Path,
) -> None:
    url = lock_logging_postgres.url("lockfree")
    migrate(url)
    engine = create_engine(url)
    password_hash = hash_password(PASSWORD)
    with Session(engine) as session:
        users = [User(email=f"user{n}@example.test", name=f"User {n}",
                      password_hash=password_hash) for n in range(USERS)]
        # The denied user lacks audit:read: each GET …/audit is a permission.denied event.
        denied = User(email="denied@example.test", name="Denied", password_hash=password_hash,
                      permissions=["households:read"])
        session.add_all([*users, denied])
        session.commit()
        user_ids = [u.id for u in users]
        denied_id = denied.id
    key = generate_pem()
    port = free_port()
    environ = {
        **os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "4",
        "GUNICORN_THREADS": "4", "HEARTHGATE_ENV": "development", "DATABASE_URL": url,
        "AUTH_JWT_SECRET": "lockfree-secret-0123456789abcdef0123456789",
        "SECRET_STORE_URL": "memory://", "AUTH_LOCAL_ACCOUNTS_ENABLED": "true",
        "RATELIMIT_ENABLED": "false", "AUDIT_SIGNING_KEY": key, "AUDIT_CHECKPOINT_EVERY": "1",
        "LOG_LEVEL": "WARNING", "DATABASE_POOL_SIZE": "8",
    }
    base = f"http://127.0.0.1:{port}"
    with gunicorn_process("wsgi:app", environ, tmp_path / "gunicorn.log"):
        status, body = _post(f"{base}/api/auth/login",
                             {"email": "denied@example.test", "password": PASSWORD})
        assert status == 200, body
        token = body["token"]
        offset = _log(lock_logging_postgres).stat().st_size
        start = threading.Barrier(CLIENTS)

        def login(n: int) -> int:
            if n < CLIENTS:
                start.wait()
            return _post(f"{base}/api/auth/login",
                         {"email": f"user{n}@example.test", "password": PASSWORD})[0]

        def deny(n: int) -> int:
            return _get(f"{base}/api/households/hh_{n:026d}/audit", token)[0]

        with ThreadPoolExecutor(CLIENTS) as pool:
            logins = [pool.submit(login, n) for n in range(USERS)]
            denials = [pool.submit(deny, n) for n in range(DENIALS)]
            login_codes = [f.result() for f in logins]
            denial_codes = [f.result() for f in denials]
        time.sleep(0.5)  # the server writes its log asynchronously
        with _log(lock_logging_postgres).open(encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            during_load = log.read()
    assert login_codes == [200] * USERS
    assert denial_codes == [403] * DENIALS
    waits = [line for line in _waits(during_load) if "still waiting for" in line]
    own_chain = _advisory_lock(denied_id)
    others = [line for line in waits if own_chain not in line]
    print(f"lock waits during the load: {len(waits)}; on the denied user's own chain: "
          f"{len(waits) - len(others)}; elsewhere: {len(others)}")
    assert others == [], "\n".join(others[:20])

    with Session(engine) as session:
        logins_by_chain = dict(session.execute(
            select(AuditEvent.chain, AuditEvent.principal_id)
            .where(AuditEvent.action == "auth.login", AuditEvent.decision == "allowed")
        ).tuples().all())
        denials_on_chain = session.scalars(
            select(AuditEvent.chain).where(AuditEvent.action == "permission.denied")).all()
        keys = PublicKeys([load_private_key(key).public_key()])
        report = verify_database(session, keys)
    for user_id in user_ids:
        assert logins_by_chain[user_id] == user_id  # each login on its user's own chain
    assert denials_on_chain == [denied_id] * DENIALS
    assert report.ok, report.problems
    assert report.checkpoints >= USERS + DENIALS  # AUDIT_CHECKPOINT_EVERY=1: none waited either

    # The detector works: a deliberate wait on a user's chain lock is logged with that key.
    with engine.connect() as holder, engine.connect() as waiter:
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        holder.execute(lock, {"key": _chain_lock_key(user_ids[0])})
        released = threading.Timer(0.2, holder.commit)
        released.start()
        waiter.execute(lock, {"key": _chain_lock_key(user_ids[0])})
        waiter.commit()
        released.join()
    time.sleep(0.5)
    with _log(lock_logging_postgres).open(encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        after = log.read()[len(during_load):]
    assert any(_advisory_lock(user_ids[0]) in line for line in _waits(after))
    engine.dispose()


def _advisory_lock(chain: str) -> str:
    """How the server's log names the chain's advisory lock: [database, high, low, 1]."""
    key = _chain_lock_key(chain) & 0xFFFFFFFFFFFFFFFF
    return f",{key >> 32},{key & 0xFFFFFFFF},1]"
