"""The chain on the real database: an untouched chain verifies on SQLite and PostgreSQL; each
kind of tampering done directly in the database is named with its exact sequence number, by the
function and by ``flask audit verify``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import audit
from app.audit.chain import canonical, entry_hash, hash_parts
from app.audit.notes import open_note
from app.audit.signing import signer
from app.models import AuditCheckpoint, AuditEvent
from testkit.builders.audit import (
    chain_rows,
    edit,
    edit_and_rehash,
    forge_signature,
    rehash_from,
    remove,
    session_of,
    swap,
    verify,
    write_events,
)
from testkit.builders.households import AuthActions, make_household

CHAIN_LENGTH = 10


pytestmark = pytest.mark.settings(AUDIT_CHECKPOINT_EVERY=5)


@pytest.fixture
def household(app: Flask, auth: AuthActions) -> str:
    owner = auth.user("owner@example.test")
    household_id = make_household(app, "Chain", {owner.id: "owner"})
    write_events(app, CHAIN_LENGTH, household_id)
    write_events(app, 3)  # the system chain, untouched by every case
    return household_id


def test_untouched_chains_verify_and_reread_entries_hash_the_same(app: Flask, household: str) -> None:
    rows = chain_rows(app, household)
    assert [r.seq for r in rows] == list(range(1, CHAIN_LENGTH + 1))
    # Re-read from the database (timestamps, JSON details): the stored hash is reproduced.
    assert all(r.hash == entry_hash(r) for r in rows)
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    report = verify(app)
    assert report.ok, report.problems
    assert (report.chains, report.entries, report.checkpoints) == (2, CHAIN_LENGTH + 3, 2)


def test_microseconds_survive_the_round_trip(app: Flask, household: str) -> None:
    stamps = [r.created_at for r in chain_rows(app, household)]
    # Written microseconds apart: truncation to seconds or milliseconds would collapse some.
    assert any(s.microsecond % 1000 for s in stamps)


def test_checkpoints_are_signed_every_n_entries(app: Flask, household: str) -> None:
    with session_of(app) as session:
        signed = session.execute(select(AuditCheckpoint.seq, AuditCheckpoint.head_hash)
                                 .where(AuditCheckpoint.chain == household)
                                 .order_by(AuditCheckpoint.seq)).all()
    rows = {r.seq: r.hash for r in chain_rows(app, household)}
    assert [tuple(s) for s in signed] == [(5, rows[5]), (10, rows[10])]


Tamper = Callable[[Session, str], object]  # what it returns is not used


def _rewrite_chain(session: Session, chain: str) -> None:
    edit(session, chain, 3, action="x")
    rehash_from(session, chain, 3)

CASES: list[tuple[str, Tamper, int, str]] = [
    ("edited", lambda s, c: edit(s, c, 4, action="test.forged"), 4, "edited"),
    ("edited-details", lambda s, c: edit(s, c, 7, details={"n": 700}), 7, "edited"),
    ("edited-decision", lambda s, c: edit(s, c, 2, decision="denied"), 2, "edited"),
    ("edited-time", lambda s, c: edit(s, c, 9, created_at=datetime(2020, 1, 1)), 9, "edited"),
    ("edited-time-text", lambda s, c: s.execute(text(
        "UPDATE audit_events SET created_at = '2020-01-01 00:00:00' WHERE chain = :c AND seq = 6"
    ), {"c": c}), 6, "edited"),
    ("deleted", lambda s, c: remove(s, c, 6), 6, "deleted"),
    ("deleted-first", lambda s, c: remove(s, c, 1), 1, "deleted"),
    ("reordered", lambda s, c: swap(s, c, 3, 4), 3, "reordered"),
    ("truncated", lambda s, c: remove(s, c, CHAIN_LENGTH), CHAIN_LENGTH, "truncated"),
    ("hash-rewritten", lambda s, c: edit_and_rehash(s, c, 8, action="x"), 8, "edited"),
    ("chain-rewritten", _rewrite_chain, 5, "edited"),
    ("bad-signature", lambda s, c: forge_signature(s, c, 5), 5, "bad signature"),
]


@pytest.mark.parametrize("case, tamper, seq, reason", CASES, ids=[c[0] for c in CASES])
def test_tampering_is_named_with_its_sequence_number(
    app: Flask, household: str, case: str, tamper: Tamper, seq: int, reason: str
) -> None:
    with session_of(app) as session:
        tamper(session, household)
        session.commit()
    report = verify(app)
    assert [(p.chain, p.seq, p.reason) for p in report.problems] == [(household, seq, reason)]

    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"chain {household}: seq {seq}: {reason}" in result.output
    scoped = app.test_cli_runner().invoke(args=["audit", "verify", "--household", "system"])
    assert scoped.exit_code == 0 and scoped.output.startswith("OK")


def test_verify_command_prints_ok_for_an_untouched_trail(app: Flask, household: str) -> None:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 2 chains, 13 entries, 2 signed checkpoints")


def test_on_demand_checkpoint_makes_truncation_after_the_last_one_detectable(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(AUDIT_CHECKPOINT_EVERY=0)
    write_events(app, 4)
    with session_of(app) as session:
        remove(session, "system", 4)
        session.commit()
    assert verify(app).ok  # no checkpoint yet: the newest entry can vanish unseen
    write_events(app, 1)  # seq 4 again
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0 and "signed system seq 4" in result.output
    again = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert "0 checkpoints signed" in again.output
    with session_of(app) as session:
        remove(session, "system", 4)
        session.commit()
    assert [(p.seq, p.reason) for p in verify(app).problems] == [(4, "truncated")]


def test_a_checkpoint_from_another_key_is_a_bad_signature(
    make_app: Callable[..., Flask], app: Flask, household: str,
) -> None:
    other = make_app()  # same database, a freshly generated key
    report = verify(other, household)
    assert [(p.seq, p.reason) for p in report.problems] == [(5, "bad signature")]


def test_erasure_drops_the_chain_and_is_itself_on_the_verified_system_chain(
    app: Flask, household: str,
) -> None:
    head = chain_rows(app, household)[-1]
    with app.app_context(), session_of(app) as session:
        erased = audit.erase_household(household, session=session)
        session.commit()
    assert erased is not None
    assert chain_rows(app, household) == []
    with session_of(app) as session:
        assert session.scalars(select(AuditCheckpoint)
                               .where(AuditCheckpoint.chain == household)).all() == []
        record = session.scalars(select(AuditEvent).where(AuditEvent.action == "household.erased")
                                 ).one()
    assert record.chain == "system" and record.seq == 4
    final = record.details.pop("finalCheckpoint")
    assert record.details == {"erasedHouseholdId": household, "finalSeq": CHAIN_LENGTH,
                              "finalHeadHash": head.hash}
    opened = open_note(final, [signer(app).public_key])
    assert (opened.chain, opened.size) == (household, CHAIN_LENGTH)
    report = verify(app)
    assert report.ok, report.problems
    assert report.chains == 1


def test_awkward_details_round_trip_and_verify(app: Flask) -> None:
    details = {"name": 'é "quoted" \\ 東京 \u2028', "ratio": 1.5, "big": 2**62, "none": None,
               "list": [{"b": 1, "a": [True, False]}], "zeta": {"z": 1, "a": 2}, "empty": ""}
    write_events(app, 3, None, **details)
    report = verify(app)
    assert report.ok and report.entries == 3, report.problems
    stored = chain_rows(app, "system")[0]
    assert stored.details == {"n": 0, **details}


def test_stored_json_text_is_canonical_and_a_respaced_copy_is_no_false_alarm(app: Flask) -> None:
    write_events(app, 3)
    with session_of(app) as session:
        raw = session.execute(text("SELECT CAST(details AS TEXT) FROM audit_events "
                                   "WHERE seq = 2")).scalar_one()
        assert raw == '{"n":1}'
        # Same content, other spelling (as another writer might store it): still the same entry.
        session.execute(text("UPDATE audit_events SET details = :d WHERE seq = 2"),
                        {"d": '{ "n" : 1 }'})
        session.commit()
    assert verify(app).ok
    with session_of(app) as session:
        session.execute(text("UPDATE audit_events SET details = :d WHERE seq = 2"),
                        {"d": '{"n": 2}'})
        session.commit()
    assert [(p.seq, p.reason) for p in verify(app).problems] == [(2, "edited")]


AWKWARD = (None, "", 'é "quoted" \\ 東京 \u2028', "\x00\x1f\x7f controls", "\U0001f642 astral",
           "</script>\n\t")


@pytest.mark.parametrize("value", AWKWARD)
def test_the_parts_the_database_completes_give_the_entry_hash(value: str | None) -> None:
    """``hash_parts``, completed as ``audit_append`` completes them (migration a3), is byte for
    byte the serialization ``entry_hash`` hashes, whatever the fields hold."""
    for seq, prev in ((1, "0" * 64), (12345678901, "ab" * 32)):
        event = AuditEvent(chain=value or "c", seq=seq, household_id=value, principal_id=value,
                           action=value or "a", resource=value, decision=value or "allowed",
                           correlation_id=value, details={"v": value, "z": {"b": [value], "a": 1}},
                           created_at=datetime(2026, 1, 2, 3, 4, 5, 678901), prev_hash=prev)
        before, between, details = hash_parts(event)
        completed = before + json.dumps(prev).encode() + between + str(seq).encode() + b"}"
        assert hashlib.sha256(completed).hexdigest() == entry_hash(event)
        assert details == canonical(event.details).decode()
