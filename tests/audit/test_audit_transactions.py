"""The audit write shares the transaction of the change it records (fail closed), and the
``audit_sink`` hook sees committed events only."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import audit
from app.audit.sinks import AUDIT_SINKS, DRAIN_AT_EXIT_SECONDS
from app.db import Database
from app.hookspecs import hookimpl
from app.models import AuditEvent, PurchaseRequest, User
from app.plugins import PLUGINS
from testkit.apps import audit as audit_routes
from testkit.builders.audit import session_of, verify
from testkit.builders.households import AuthActions, make_household, snapshot
from testkit.database import system_connection
from testkit.spies import spy
from testkit.typing import MakeApp

pytestmark = pytest.mark.blueprints(audit_routes.bp)


@dataclass
class SubmittedRequest:
    """A purchase request the ``adult`` of ``household`` submitted, and the ``url`` of the audit
    sample's route by which its ``owner`` approves it."""

    owner: User
    household: str
    request: str
    url: str


@pytest.fixture
def request_setup(app: Flask, auth: AuthActions) -> SubmittedRequest:
    owner = auth.user("owner@example.test")
    adult = auth.user("adult@example.test")
    household = make_household(app, "Tx", {owner.id: "owner", adult.id: "adult"})
    with session_of(app) as session:
        request = PurchaseRequest(household_id=household, requested_by=adult.id, title="Boots",
                                  amount_minor=4200, currency="EUR")
        session.add(request)
        session.commit()
        request_id = request.id
    url = f"/api/audit-sample/households/{household}/requests/{request_id}/approve"
    return SubmittedRequest(owner=owner, household=household, request=request_id, url=url)


def _status(app: Flask, request_id: str) -> str:
    with session_of(app) as session:
        row = session.get(PurchaseRequest, request_id)
        assert row is not None, request_id
        return row.status


class RecordingSink:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.received: list[dict[str, Any]] = []
        self.threads: set[str] = set()

    @hookimpl
    def audit_sink(self, event: dict[str, Any]) -> None:
        self.threads.add(threading.current_thread().name)
        self.received.append(event)

    @property
    def events(self) -> list[dict[str, Any]]:
        """What the sink received once everything committed so far was delivered."""
        assert AUDIT_SINKS.get(self.app).drain(10)
        return self.received


@pytest.fixture
def sink(app: Flask) -> RecordingSink:
    plugin = RecordingSink(app)
    PLUGINS.get(app).register(plugin, name="recording-sink")
    return plugin


def test_an_audited_transition_commits_with_its_event_and_reaches_the_sink(
    app: Flask, client: FlaskClient, auth: AuthActions, request_setup: SubmittedRequest,
    sink: RecordingSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The route reads its household before its session opens, so the session adopts that
    # transaction (app.db): the event is handed on only once another connection can see it.
    relay = AUDIT_SINKS.get(app)
    put = relay.put
    visible_when_handed: list[int] = []

    def handed(record: dict[str, Any]) -> None:
        with system_connection(app.config["DATABASE_URL"]) as connection:
            visible_when_handed.append(len(connection.execute(
                select(AuditEvent.seq).where(AuditEvent.chain == record["chain"],
                                             AuditEvent.seq == record["seq"])).all()))
        put(record)

    monkeypatch.setattr(relay, "put", handed)
    r = client.post(request_setup.url, headers=auth.headers(request_setup.owner))
    assert r.status_code == 204, r.get_json()
    assert visible_when_handed == [1]
    assert _status(app, request_setup.request) == "APPROVED"
    with session_of(app) as session:
        stored = session.scalars(select(AuditEvent)).one()
    assert (stored.action, stored.chain, stored.principal_id) == (
        "request.approved", request_setup.household, request_setup.owner.id)
    assert stored.correlation_id == r.headers["X-Request-ID"]
    assert [(e["action"], e["seq"], e["hash"]) for e in sink.events] == [
        ("request.approved", 1, stored.hash)]
    assert sink.events[0] == audit.event_record(stored)


@pytest.mark.parametrize("injection", ["database-refuses", "hashing-raises"])
def test_a_failing_audit_write_aborts_the_transition(
    app: Flask, client: FlaskClient, auth: AuthActions, request_setup: SubmittedRequest,
    sink: RecordingSink, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    injection: str,
) -> None:
    if injection == "database-refuses":
        request.getfixturevalue("failing_audit_storage")
    else:
        def broken(_event: AuditEvent) -> str:
            raise RuntimeError("audit hashing failed")

        monkeypatch.setattr("app.audit.writer.entry_hash", broken)
    before = snapshot(app)
    r = client.post(request_setup.url, headers=auth.headers(request_setup.owner))
    assert r.status_code >= 500
    assert "audit storage failed" not in r.get_data(as_text=True)
    assert _status(app, request_setup.request) == "SUBMITTED"
    assert snapshot(app) == before
    assert sink.events == []


def test_rolled_back_events_never_reach_the_sink(app: Flask, sink: RecordingSink) -> None:
    with app.app_context(), session_of(app) as session:
        audit.record("test.rolled-back", session=session)
        session.rollback()
        audit.record("test.kept", session=session)
        with session.begin_nested() as savepoint:
            audit.record("test.savepoint-rolled-back", session=session)
            savepoint.rollback()
        session.commit()
        audit.record("test.after-commit", session=session)
        session.rollback()
    assert [(e["action"], e["seq"]) for e in sink.events] == [("test.kept", 1)]
    assert verify(app).ok


def test_a_failing_sink_does_not_undo_the_commit(app: Flask, sink: RecordingSink) -> None:
    class BrokenSink:
        @hookimpl
        def audit_sink(self, event: dict[str, Any]) -> None:
            raise ConnectionError("sink down")

    PLUGINS.get(app).register(BrokenSink(), name="broken-sink")
    with app.app_context(), session_of(app) as session:
        audit.record("test.committed", session=session)
        session.commit()
    with session_of(app) as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["test.committed"]
    assert [e["action"] for e in sink.events] == ["test.committed"]


@pytest.mark.parametrize("failing", ["checkpointer", "sinks"])
def test_a_failure_handing_committed_events_on_is_logged_not_raised(
    app: Flask, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, failing: str,
) -> None:
    """Once the transaction committed, neither the checkpointer nor the sinks can fail the
    request (its client would send a finished write again): the failure is logged, and the other
    still gets the events. Both ways a commit hands them on: a session's, and a request's
    transaction (on PostgreSQL an event recorded before any session goes straight into it)."""
    from app.audit.witness import CHECKPOINTER
    from app.db import db
    from app.rowsecurity import in_flow

    checkpointer, relay = CHECKPOINTER.get(app), AUDIT_SINKS.get(app)
    chains: list[str] = []

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(f"{failing} down")

    counted = spy(checkpointer.transaction_committed,
                  lambda events, notes=(): chains.extend(e.chain for e in events))
    monkeypatch.setattr(checkpointer, "transaction_committed",
                        down if failing == "checkpointer" else counted)
    if failing == "sinks":
        monkeypatch.setattr(relay, "forward", down)
    with app.app_context(), session_of(app) as session:
        audit.record("test.session-commit", session=session, principal_id="usr_session")
        session.commit()
    with app.test_request_context(method="POST"), in_flow("login"):
        audit.record("test.request-commit", principal_id="usr_request")
        db.commit()
    with session_of(app) as session:
        stored = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert sorted(stored) == ["test.request-commit", "test.session-commit"]
    failures = [r for r in caplog.records if r.name == "app.audit.committed"]
    assert [(r.levelname, f"handed to the {failing}" in r.getMessage()) for r in failures] == [
        ("ERROR", True), ("ERROR", True)]
    if failing == "checkpointer":
        assert sorted(e["action"] for e in sink.events) == sorted(stored)
    else:
        assert sorted(chains) == ["usr_request", "usr_session"]
        assert sink.events == []
    assert verify(app).ok


def test_a_slow_sink_never_holds_the_response(
    app: Flask, client: FlaskClient, auth: AuthActions, request_setup: SubmittedRequest,
    sink: RecordingSink,
) -> None:
    release, entered = threading.Event(), threading.Event()

    class SlowSink:
        @hookimpl
        def audit_sink(self, event: dict[str, Any]) -> None:
            entered.set()
            release.wait(30)  # a SIEM that does not answer

    PLUGINS.get(app).register(SlowSink(), name="slow-sink")
    try:
        r = client.post(request_setup.url, headers=auth.headers(request_setup.owner))
        # The response is here while the sink still waits: delivery is not on the request path.
        assert r.status_code == 204 and not release.is_set()
        assert entered.wait(10)
        assert _status(app, request_setup.request) == "APPROVED"
    finally:
        release.set()
    assert [e["action"] for e in sink.events] == ["request.approved"]
    assert sink.threads == {"audit-sinks"}


def test_a_stream_of_events_reaches_the_sinks_once_per_rest(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AUDIT_SINK_GATHER_MILLISECONDS``: the first event after a quiet spell goes to the sinks
    at once; those committed while the sink thread rests go together when it wakes, in commit
    order, none lost and none twice."""
    app = make_app(AUDIT_SINK_GATHER_MILLISECONDS=2000)
    sink = RecordingSink(app)
    PLUGINS.get(app).register(sink, name="recording-sink")
    relay = AUDIT_SINKS.get(app)
    rests: list[list[int]] = []  # what the sinks had received at each rest of the thread
    real_rest = type(relay)._rest

    def rest(self: Any) -> None:
        rests.append([e["seq"] for e in sink.received])
        real_rest(self)

    monkeypatch.setattr(type(relay), "_rest", rest)

    def rested(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(rests) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with app.app_context(), session_of(app) as session:
        audit.record("test.first", session=session)
        session.commit()
        rested(1)
        assert rests == [[1]]  # delivered before the thread rested: at once
        for n in range(5):
            audit.record(f"test.stream-{n}", session=session)
            session.commit()
    assert relay.drain(10)
    rested(2)
    assert rests == [[1], [1, 2, 3, 4, 5, 6]]  # the five in one wake-up
    assert [e["action"] for e in sink.received] == [
        "test.first", *(f"test.stream-{n}" for n in range(5))]


def test_events_committed_while_the_sink_thread_rests_go_out_with_the_drain_at_exit(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stops while the sink thread rests: the drain it registered for its exit
    hands the sinks every event committed during the rest, without waiting the rest out (here
    far longer than the drain may take)."""
    registered: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    monkeypatch.setattr(atexit, "register", lambda f, *args: registered.append((f, args)))
    app = make_app(AUDIT_SINK_GATHER_MILLISECONDS=600_000)
    relay = AUDIT_SINKS.get(app)
    (at_exit, args), = [(f, args) for f, args in registered if f == relay.drain]
    assert args == (DRAIN_AT_EXIT_SECONDS,)
    sink = RecordingSink(app)
    PLUGINS.get(app).register(sink, name="recording-sink")
    resting = threading.Event()
    real_rest = type(relay)._rest

    def rest(self: Any) -> None:
        resting.set()
        real_rest(self)

    monkeypatch.setattr(type(relay), "_rest", rest)
    with app.app_context(), session_of(app) as session:
        audit.record("test.first", session=session)
        session.commit()
        assert resting.wait(10)  # the first went at once; the thread rests now
        for n in range(3):
            audit.record(f"test.resting-{n}", session=session)
            session.commit()
    time.sleep(0.2)
    assert [e["seq"] for e in sink.received] == [1]  # the three wait for the rest to end
    started = time.monotonic()
    assert at_exit(*args) is True
    assert time.monotonic() - started < DRAIN_AT_EXIT_SECONDS
    assert [(e["action"], e["seq"]) for e in sink.received] == [
        ("test.first", 1), *((f"test.resting-{n}", n + 2) for n in range(3))]
    assert relay.dropped == 0


def test_a_full_queue_drops_with_a_warning_and_the_chain_stays_whole(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(AUDIT_SINK_QUEUE_SIZE=1)
    release, entered = threading.Event(), threading.Event()

    class StuckSink:
        def __init__(self) -> None:
            self.received: list[int] = []

        @hookimpl
        def audit_sink(self, event: dict[str, Any]) -> None:
            entered.set()
            release.wait(30)
            self.received.append(event["seq"])

    stuck = StuckSink()
    PLUGINS.get(app).register(stuck, name="stuck-sink")
    try:
        with app.app_context(), session_of(app) as session, caplog.at_level("WARNING"):
            for n in range(4):
                audit.record(f"test.burst-{n}", session=session)
                session.commit()
                if n == 0:
                    assert entered.wait(10)  # the first is in the sink's hands
    finally:
        release.set()
    assert AUDIT_SINKS.get(app).drain(10)
    relay = AUDIT_SINKS.get(app)
    # One in the sink's hands, one queued; the rest were not forwarded, each with a warning.
    assert stuck.received == [1, 2] and relay.dropped == 2
    assert caplog.text.count("audit sink queue full") == 2
    with session_of(app) as session:
        assert len(session.scalars(select(AuditEvent)).all()) == 4
    assert verify(app).ok


def test_a_carried_change_commits_with_its_event_and_fails_or_rolls_back_with_it(
    app: Flask, sink: RecordingSink,
) -> None:
    """``audit.Carried``: the change and its event (one statement on PostgreSQL) are written
    together; a change the database refuses leaves no event; a savepoint rolled back takes both,
    and only committed events reach the sink."""
    from sqlalchemy import Table, bindparam, insert, select
    from sqlalchemy.exc import IntegrityError

    users = User.__table__
    assert isinstance(users, Table)  # a declarative model's table (typed as any FROM clause)
    carried = audit.Carried(insert(users).values(
        id=bindparam("u_id"), email=bindparam("u_email"), name=bindparam("u_name")), "added")

    def user(n: int) -> tuple[audit.Carried, dict[str, Any]]:
        return carried, {"u_id": f"usr_carried{n}", "u_email": f"c{n}@example.test",
                         "u_name": f"C{n}"}

    with app.app_context(), session_of(app) as session:
        audit.record("test.carried", session=session, carried=user(1))
        session.commit()
        with pytest.raises(IntegrityError):  # the same id again: refused, with its event
            audit.record("test.carried", session=session, carried=user(1))
        session.rollback()
        with session.begin_nested() as savepoint:
            audit.record("test.carried", session=session, carried=user(2))
            savepoint.rollback()
        audit.record("test.carried", session=session, carried=user(3))
        session.commit()
        names = session.scalars(select(User.name).order_by(User.name)).all()
        events = session.execute(select(AuditEvent.action, AuditEvent.seq)
                                 .order_by(AuditEvent.seq)).all()
    assert names == ["C1", "C3"]
    assert [tuple(e) for e in events] == [("test.carried", 1), ("test.carried", 2)]
    assert [(e["action"], e["seq"]) for e in sink.events] == [("test.carried", 1),
                                                             ("test.carried", 2)]
    assert verify(app).ok


def test_an_event_appended_before_any_session_commits_or_rolls_back_with_its_request(
    app: Flask, sink: RecordingSink,
) -> None:
    """An event recorded before its request opened a session (on PostgreSQL it goes straight into
    the request's transaction; elsewhere a session opens for it) reaches the sink once that
    transaction committed, never when it rolled back, and a session that adopts the transaction
    later decides for it: committed, or rolled back with the session."""
    from app.db import db
    from app.rowsecurity import in_flow

    postgres = Database.engine(app).dialect.name == "postgresql"

    def request(action: str, then: Callable[[], None]) -> None:
        with app.test_request_context(method="POST"), in_flow("login"):
            audit.record(action, principal_id="usr_direct")
            assert (db.opened_session() is None) is postgres
            then()

    def adopt_then_roll_back() -> None:
        db.session.rollback()
        db.commit()

    def adopt_then_commit() -> None:
        db.session.flush()
        db.commit()

    request("test.committed", db.commit)
    request("test.rolled-back", db.rollback)
    request("test.abandoned", lambda: None)  # the request ends without a commit
    request("test.adopted-and-committed", adopt_then_commit)
    request("test.adopted-and-rolled-back", adopt_then_roll_back)
    with session_of(app) as session:
        stored = session.execute(select(AuditEvent.action, AuditEvent.seq)
                                 .order_by(AuditEvent.seq)).all()
    assert [tuple(e) for e in stored] == [("test.committed", 1),
                                          ("test.adopted-and-committed", 2)]
    assert [(e["action"], e["seq"]) for e in sink.events] == [tuple(e) for e in stored]
    assert verify(app).ok
