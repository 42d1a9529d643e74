"""Concurrent appends on a real PostgreSQL (always, whatever HEARTHGATE_TEST_DB says): 8 writers
with their own connections append 200 events each to one household chain; the chain has no fork
and no gap, and verifies."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import audit, create_app
from app.cli import migrate
from app.db import Database
from app.models import AuditCheckpoint, AuditEvent
from testkit.builders.audit import session_of, verify
from testkit.builders.households import make_household
from testkit.config import BASE_CONFIG
from testkit.servers.postgres import Postgres

WRITERS = 8
EVENTS_EACH = 200


@pytest.fixture
def pg_app(postgres: Postgres) -> Iterator[Flask]:
    postgres.psql("DROP DATABASE IF EXISTS audit_concurrency")
    postgres.psql("CREATE DATABASE audit_concurrency")
    url = postgres.url("audit_concurrency")
    migrate(url)
    app = create_app({**BASE_CONFIG, "DATABASE_URL": url, "DATABASE_POOL_SIZE": WRITERS,
                      "AUDIT_CHECKPOINT_EVERY": 100})
    yield app
    Database.engine(app).dispose()
    postgres.psql("DROP DATABASE audit_concurrency")


@pytest.mark.postgres
def test_concurrent_writers_never_fork_or_gap_a_chain(pg_app: Flask) -> None:
    household = make_household(pg_app, "Busy", {})
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            with pg_app.app_context(), session_of(pg_app) as session:
                start.wait()
                for n in range(EVENTS_EACH):
                    audit.record("test.concurrent", household_id=household,
                                 details={"writer": number, "n": n}, session=session)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    total = WRITERS * EVENTS_EACH
    with session_of(pg_app) as session:
        seqs = session.scalars(select(AuditEvent.seq).where(AuditEvent.chain == household)
                               .order_by(AuditEvent.seq)).all()
        links = session.execute(select(AuditEvent.prev_hash, func.count())
                                .where(AuditEvent.chain == household)
                                .group_by(AuditEvent.prev_hash)
                                .having(func.count() > 1)).all()
        per_writer = session.execute(
            select(AuditEvent.details).where(AuditEvent.chain == household)).scalars().all()
        checkpoints = session.scalars(select(AuditCheckpoint.seq)
                                      .where(AuditCheckpoint.chain == household)
                                      .order_by(AuditCheckpoint.seq)).all()
    assert seqs == list(range(1, total + 1))  # no gap, no duplicate
    assert links == []  # no two entries share a predecessor: no fork
    assert sorted((d["writer"], d["n"]) for d in per_writer) == sorted(
        (w, n) for w in range(WRITERS) for n in range(EVENTS_EACH))  # nothing lost
    assert checkpoints == list(range(100, total + 1, 100))
    report = verify(pg_app)
    assert report.ok, report.problems
    assert report.entries == total


@pytest.mark.postgres
def test_the_database_itself_refuses_a_second_entry_at_a_taken_seq(pg_app: Flask) -> None:
    from sqlalchemy.exc import IntegrityError

    with pg_app.app_context(), session_of(pg_app) as session:
        first = audit.record("test.one", session=session)
        session.commit()
        twin = AuditEvent(chain=first.chain, seq=first.seq, action="test.twin", decision="allowed",
                          details={}, prev_hash=first.prev_hash, hash="0" * 64)
        session.add(twin)
        with pytest.raises(IntegrityError):
            session.flush()
