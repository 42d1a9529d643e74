"""Witnessed checkpoints: every checkpoint reaches the file witness and the ``audit_witness``
plugins; a checkpoint that does not extend the witnessed one is refused and logged at ERROR;
``flask audit verify`` reports ``truncated`` against the witness when the newest events, the
newest events and every checkpoint, or a rewritten tail are gone — and, without a witness, says
what the database alone can show. The service signs a chain's head by itself after the interval,
and an erased household's final checkpoint is witnessed and named by its erasure record."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select

from app import audit
from app.audit.checkpoints import checkpoint_all
from app.audit.notes import open_note
from app.audit.signing import PublicKeys, signer
from app.audit.verify import verify_database
from app.audit.witness import FileWitness, WitnessRefused, checkpointer
from app.hookspecs import hookimpl
from app.models import AuditCheckpoint, AuditEvent
from app.plugins import PLUGINS
from testkit.builders.audit import chain_rows, rehash_from, remove, session_of, write_events
from testkit.builders.households import make_household

LENGTH = 11  # AUDIT_CHECKPOINT_EVERY=5 signs 5 and 10


def _witness_dir(tmp_path: Path) -> Path:
    return tmp_path / "witness"


@pytest.fixture
def witnessed_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    return make_app(AUDIT_CHECKPOINT_EVERY=5,
                    AUDIT_WITNESS_URL=f"file://{_witness_dir(tmp_path)}")


@pytest.fixture
def plain_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(AUDIT_CHECKPOINT_EVERY=5)


def _household(app: Flask, auth: Any) -> str:
    owner = auth.user("owner@example.test")
    home = make_household(app, "Witnessed", {owner.id: "owner"})
    write_events(app, LENGTH, home)
    return home


def _checkpoint_and_witness(app: Flask) -> None:
    with app.app_context(), session_of(app) as session:
        checkpoint_all(session, signer(app))
        session.commit()
    checkpointer(app).flush()


def _witnessed(app: Flask, tmp_path: Path) -> dict[str, Any]:
    return FileWitness(_witness_dir(tmp_path), [signer(app).public_key]).all_latest()


def _verify(app: Flask, witness: Path | None) -> list[tuple[str, int, str]]:
    args = ["audit", "verify"] + (["--witness", f"file://{witness}"] if witness else [])
    result = app.test_cli_runner().invoke(args=args)
    with app.app_context(), session_of(app) as session:
        keys = PublicKeys([signer(app).public_key])
        witnessed = (FileWitness(witness, keys.keys).all_latest() if witness else None)
        report = verify_database(session, keys, None, witnessed)
    assert (result.exit_code == 0) == report.ok, result.output
    return [(p.chain, p.seq, p.reason) for p in report.problems]


def test_every_checkpoint_reaches_the_witness_in_order(witnessed_app: Flask, auth: Any,
                                                       tmp_path: Path) -> None:
    home = _household(witnessed_app, auth)
    checkpointer(witnessed_app).flush()
    lines = (_witness_dir(tmp_path) / f"{home}.log").read_text().splitlines()
    key = signer(witnessed_app).public_key
    assert [open_note(json.loads(line)["note"], [key]).size for line in lines] == [5, 10]
    _checkpoint_and_witness(witnessed_app)
    assert _witnessed(witnessed_app, tmp_path)[home].size == LENGTH
    assert _verify(witnessed_app, _witness_dir(tmp_path)) == []


CASES = ["newest-deleted", "newest-and-checkpoints-deleted", "forked-tail"]


def _tamper(app: Flask, home: str, case: str) -> None:
    with session_of(app) as session:
        if case == "newest-deleted":
            remove(session, home, LENGTH)
        elif case == "newest-and-checkpoints-deleted":
            for seq in (LENGTH, LENGTH - 1, LENGTH - 2):
                remove(session, home, seq)
            session.execute(delete(AuditCheckpoint))
        else:  # cut the tail, write another one in its place, drop what would betray it
            for seq in (LENGTH, LENGTH - 1, LENGTH - 2):
                remove(session, home, seq)
            session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > 5))
            session.commit()
            write_events(app, 3, home, forged=True)
            with session_of(app) as again:
                rehash_from(again, home, LENGTH - 2)
                again.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > 5))
                again.commit()
            return
        session.commit()


EXPECTED_WITH_WITNESS = {
    "newest-deleted": LENGTH,
    "newest-and-checkpoints-deleted": LENGTH - 2,
    "forked-tail": LENGTH,
}


@pytest.mark.parametrize("case", CASES)
def test_truncation_is_reported_against_the_witness(witnessed_app: Flask, auth: Any,
                                                    tmp_path: Path, case: str) -> None:
    home = _household(witnessed_app, auth)
    _checkpoint_and_witness(witnessed_app)
    assert _verify(witnessed_app, _witness_dir(tmp_path)) == []
    _tamper(witnessed_app, home, case)
    problems = _verify(witnessed_app, _witness_dir(tmp_path))
    assert problems == [(home, EXPECTED_WITH_WITNESS[case], "truncated")]


# Without a witness the database alone shows a cut up to its newest checkpoint; once the
# checkpoints are gone too, or the rewritten tail lies beyond them, nothing is left to compare.
EXPECTED_WITHOUT_WITNESS = {
    "newest-deleted": [LENGTH, "truncated"],
    "newest-and-checkpoints-deleted": None,
    "forked-tail": None,
}


@pytest.mark.parametrize("case", CASES)
def test_without_a_witness_truncation_is_seen_only_up_to_the_newest_checkpoint(
    plain_app: Flask, auth: Any, case: str,
) -> None:
    home = _household(plain_app, auth)
    _checkpoint_and_witness(plain_app)
    _tamper(plain_app, home, case)
    expected = EXPECTED_WITHOUT_WITNESS[case]
    problems = _verify(plain_app, None)
    assert problems == ([] if expected is None else [(home, expected[0], expected[1])])


def test_the_witness_refuses_a_rewritten_chain_and_the_service_logs_it(
    witnessed_app: Flask, auth: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    home = _household(witnessed_app, auth)
    _checkpoint_and_witness(witnessed_app)
    _tamper(witnessed_app, home, "forked-tail")
    with caplog.at_level(logging.ERROR, logger="app.audit.witness"):
        write_events(witnessed_app, 1, home)  # the forger goes on writing
        _checkpoint_and_witness(witnessed_app)
    refusals = [r for r in caplog.records if "AUDIT WITNESS REFUSED" in r.getMessage()]
    assert refusals and home in refusals[0].getMessage()
    assert _witnessed(witnessed_app, tmp_path)[home].size == LENGTH  # kept the honest head
    assert _verify(witnessed_app, _witness_dir(tmp_path)) == [(home, LENGTH, "truncated")]


def test_a_plugin_witness_receives_every_checkpoint_with_its_consistency_proof(
    witnessed_app: Flask, auth: Any, tmp_path: Path,
) -> None:
    seen: list[tuple[str, int, bool]] = []

    class Plugin:
        @hookimpl
        def audit_witness(self, chain: str, note: str, consistency: Callable[[int], Any]
                          ) -> None:
            opened = open_note(note, [signer(witnessed_app).public_key])
            seen.append((chain, opened.size, isinstance(consistency(1), list)))
            if opened.size > 10:
                raise WitnessRefused("this plugin stops at 10")

    PLUGINS.get(witnessed_app).register(Plugin(), name="test-witness")
    home = _household(witnessed_app, auth)
    _checkpoint_and_witness(witnessed_app)
    assert [s for s in seen if s[0] == home] == [(home, 5, True), (home, 10, True),
                                                (home, LENGTH, True)]
    # The plugin's refusal does not keep the file witness from its copy.
    assert _witnessed(witnessed_app, tmp_path)[home].size == LENGTH


def test_the_service_signs_and_witnesses_a_quiet_chain_by_itself(
    make_app: Callable[..., Flask], auth: Any, tmp_path: Path,
) -> None:
    app = make_app(AUDIT_CHECKPOINT_EVERY=100, AUDIT_CHECKPOINT_INTERVAL_SECONDS=1,
                   AUDIT_WITNESS_URL=f"file://{_witness_dir(tmp_path)}")
    owner = auth.user("owner@example.test")
    home = make_household(app, "Quiet", {owner.id: "owner"})
    write_events(app, 2, home)
    deadline = time.monotonic() + 30  # a bound for a loaded machine, not a speed requirement
    while time.monotonic() < deadline:
        latest = _witnessed(app, tmp_path).get(home)
        if latest is not None and latest.size == 2:
            break
        time.sleep(0.1)
    assert _witnessed(app, tmp_path)[home].size == 2
    with session_of(app) as session:
        signed = session.scalars(select(AuditCheckpoint.seq)
                                 .where(AuditCheckpoint.chain == home)).all()
    assert signed == [2]


def test_the_checkpoint_thread_wakes_for_new_work_only(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every commit reports its chains; one already waiting for its interval does not wake the
    thread again (a wake-up per commit costs the request path a thread switch), while a chain
    not yet due and a note to witness do."""
    app = make_app(AUDIT_CHECKPOINT_INTERVAL_SECONDS=60,
                   AUDIT_WITNESS_URL=f"file://{_witness_dir(tmp_path)}")
    runner = checkpointer(app)
    monkeypatch.setattr(runner, "_runner", type("Idle", (), {"ensure": lambda self: None})())
    woken: list[bool] = []
    monkeypatch.setattr(runner._lock, "notify", lambda n=1: woken.append(True))
    runner.committed(["chain-a"], [])
    due = dict(runner._due)
    runner.committed(["chain-a"], [])
    runner.committed(["chain-a"], [])
    assert len(woken) == 1 and runner._due == due  # the chain keeps its first time
    runner.committed(["chain-a", "chain-b"], [])
    runner.committed(["chain-a"], ["a note"])
    assert len(woken) == 3 and set(runner._due) == {"chain-a", "chain-b"}
    assert runner._notes == ["a note"]


def test_a_checkpoint_due_on_an_event_appended_without_a_session_is_signed_and_witnessed(
    make_app: Callable[..., Flask], tmp_path: Path,
) -> None:
    """On PostgreSQL an event recorded before its request opened a session goes straight into
    the request's transaction; a checkpoint it makes due is signed in a session that adopts the
    transaction, and reaches the witness once that committed, with the event."""
    from app.db import db
    from app.rowsecurity import in_flow

    app = make_app(AUDIT_CHECKPOINT_EVERY=2, AUDIT_WITNESS_URL=f"file://{_witness_dir(tmp_path)}")
    for n in range(3):
        with app.test_request_context(method="POST"), in_flow("login"):
            audit.record("test.direct", principal_id="usr_direct", details={"n": n})
            db.commit()
    checkpointer(app).flush()
    with session_of(app) as session:
        signed = session.scalars(select(AuditCheckpoint.seq)
                                 .where(AuditCheckpoint.chain == "usr_direct")).all()
    assert signed == [2]
    assert _witnessed(app, tmp_path)["usr_direct"].size == 2
    assert _verify(app, _witness_dir(tmp_path)) == []


def test_an_erased_household_stays_provable(witnessed_app: Flask, auth: Any,
                                            tmp_path: Path) -> None:
    home = _household(witnessed_app, auth)
    checkpointer(witnessed_app).flush()
    assert _witnessed(witnessed_app, tmp_path)[home].size == 10  # 11, 12 not yet signed
    with witnessed_app.app_context(), session_of(witnessed_app) as session:
        audit.erase_household(home, session=session)
        session.commit()
    checkpointer(witnessed_app).flush()
    assert chain_rows(witnessed_app, home) == []
    with session_of(witnessed_app) as session:
        record = session.scalars(select(AuditEvent)
                                 .where(AuditEvent.action == "household.erased")).one()
    final = open_note(record.details["finalCheckpoint"], [signer(witnessed_app).public_key])
    assert (final.chain, final.size) == (home, LENGTH)
    witnessed = _witnessed(witnessed_app, tmp_path)[home]
    assert (witnessed.size, witnessed.root) == (final.size, final.root)  # accepted as extension
    assert _verify(witnessed_app, _witness_dir(tmp_path)) == []


def test_an_erasure_record_that_does_not_match_the_witness_is_truncation(
    witnessed_app: Flask, auth: Any, tmp_path: Path,
) -> None:
    home = _household(witnessed_app, auth)
    _checkpoint_and_witness(witnessed_app)
    # Events deleted without an erasure record: the witnessed chain is simply gone.
    with session_of(witnessed_app) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.chain == home))
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.chain == home))
        session.commit()
    assert _verify(witnessed_app, _witness_dir(tmp_path)) == [(home, 1, "truncated")]
