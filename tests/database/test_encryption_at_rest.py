"""Encryption at rest (API.md, "Defense in depth at the database"): no plaintext of the encrypted
columns in any stored row, a value moved to another row or column refused, key rotation, and
hostile strings round-tripping."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Table, insert, select, text

from app.auth import sessions
from app.crypto import fields as crypto_fields
from app.crypto import rotate as crypto_rotate
from app.crypto.fields import ENCRYPTED_FIELDS, FieldDecryptionError, decode_value, encrypt
from app.crypto.keys import KeyRing, key_id, parse_key
from app.db import SESSIONS, Base, Database, new_id, utcnow
from app.models import AuditEvent, LoginFlow
from app.models.audit import SYSTEM_CHAIN
from app.rowsecurity import in_flow
from testkit.builders.audit import verify
from testkit.builders.families import INTERNAL_CONFIG, ORCHESTRATOR_TOKEN, Family, build_family
from testkit.builders.households import json_object, snapshot
from testkit.builders.webhooks import SECRET, signed

MARK = "zq-plaintext-marker-7x"
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
WEBHOOK_CONFIG = {"HYPERBEAM_EVENT_SIGNING_SECRET": [SECRET],
                  "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": True}


def family_app(make_app: Any, **config: Any) -> Family:
    return build_family(make_app(**INTERNAL_CONFIG, **WEBHOOK_CONFIG, **config))


def items_url(family: Family, tail: str = "") -> str:
    return f"/api/households/{family.household_id}/items{tail}"


def add_item(family: Family, notes: str) -> str:
    r = family.client.post(items_url(family), json={"name": "Boots", "notes": notes},
                           headers=family.headers(family.owner))
    assert r.status_code == 201, r.get_json()
    return str(json_object(r)["id"])


def write_everything(family: Family, mark: str) -> dict[str, str]:
    """Write ``mark`` through every path that stores an encrypted column; returns ids."""
    app, client = family.app, family.client
    item_id = add_item(family, f"first {mark}")
    r = client.patch(items_url(family, f"/{item_id}"), json={"notes": f"patched {mark}"},
                     headers=family.headers(family.owner))
    assert r.status_code == 200, r.get_json()
    request_id = family.submit(note=f"note {mark}", url=f"https://shop.example.test/{mark}")
    assert family.post(family.adult, f"/{request_id}/approve").status_code == 200
    intent_id = family.intent(request_id)["intentId"]
    internal = {"X-Internal-Token": ORCHESTRATOR_TOKEN}
    r = client.post("/api/internal/events", headers=internal,
                    json={"intentId": intent_id, "type": "page.view", "data": {"text": mark}})
    assert r.status_code in (200, 201, 202), r.get_json()
    r = client.post("/api/internal/artifacts", headers=internal,
                    json={"intentId": intent_id, "kind": "receipt", "sha256": "a" * 64,
                          "uri": f"https://files.example.test/{mark}"})
    assert r.status_code in (200, 201, 202), r.get_json()
    body = json.dumps({"type": "session.started", "intentId": intent_id,
                       "data": {"sessionId": mark}}).encode()
    r = client.post("/api/webhooks/hyperbeam", data=body, headers=signed(body, msg_id=new_id("m")))
    assert r.status_code == 200, r.get_json()
    # A login session (device and claims) and a code-flow login's claims, by their own code.
    # In the identity provider's login flow: row-level security admits its tables (PostgreSQL).
    with app.test_request_context(headers={"User-Agent": f"Browser {mark}"}), in_flow("oidc"):
        sessions.start_session(family.owner, "oidc", {"sub": "owner", "note": mark})
        Database().session.add(LoginFlow(
            state_hash=new_id("s"), browser_hash="b" * 64, nonce="n", code_verifier="v",
            redirect_uri="https://spa.example.test/", expires_at=utcnow(),
            claims={"name": mark}))
        Database().session.commit()
    return {"item": item_id, "request": request_id, "intent": intent_id}


def stored_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    return snapshot(app)


def _interrupt_rotation(monkeypatch: pytest.MonkeyPatch, at: int) -> Any:
    """Make ``flask data rotate`` fail at its ``at``-th value; the real ``reseal`` is returned,
    to put back."""
    calls = {"n": 0}
    real = crypto_rotate.reseal

    def failing(*args: Any) -> str:
        calls["n"] += 1
        if calls["n"] == at:
            raise RuntimeError("interrupted")
        return real(*args)

    monkeypatch.setattr(crypto_rotate, "reseal", failing)
    return real

def test_no_stored_row_holds_the_plaintext_of_an_encrypted_field(make_app: Any) -> None:
    family = family_app(make_app)
    ids = write_everything(family, MARK)
    # Every row of every table, read with raw SQL: the marker is nowhere.
    for table, rows in stored_rows(family.app).items():
        for row in rows:
            assert MARK not in repr(row), f"plaintext in {table}: {row!r}"
    # Every non-null value of every encrypted column is sealed under the current key.
    ring = KeyRing.from_setting(family.app.config["DATA_ENCRYPTION_KEYS"])
    seen = set()
    with Database.engine(family.app).connect() as connection:
        for field in ENCRYPTED_FIELDS:
            query = f"SELECT id, {field.column} FROM {field.table}"  # noqa: S608 - our names
            for row_id, value in connection.execute(text(query)):
                if value is None:
                    continue
                assert value.startswith(f"v1:{ring.current}:"), (field, value[:12])
                decode_value(field.table, field.column, row_id, value, ring)
                seen.add((field.table, field.column))
    assert seen == {(f.table, f.column) for f in ENCRYPTED_FIELDS}
    # ... and every API read gives the plaintext back.
    owner = family.headers(family.owner)
    item = json_object(family.client.get(items_url(family, f"/{ids['item']}"), headers=owner))
    assert item["notes"] == f"patched {MARK}"
    listed = json_object(family.client.get(items_url(family), headers=owner))["items"]
    assert [i["notes"] for i in listed] == [f"patched {MARK}"]
    request = json_object(family.get(family.owner, f"/{ids['request']}"))
    assert request["note"] == f"note {MARK}" and MARK in request["url"]
    view = family.get(family.owner, f"/{ids['request']}/purchase-intents/{ids['intent']}")
    shown = json.dumps(view.get_json())
    assert shown.count(MARK) == 3, shown  # the event, the webhook and the artifact
    mine = json_object(family.client.get("/api/auth/sessions", headers=owner))["items"]
    assert [s["userAgent"] for s in mine] == [f"Browser {MARK}"]


def test_the_sealed_type_refuses_to_store_plaintext(app: Flask) -> None:
    from app.models import Item

    items = Item.__table__
    assert isinstance(items, Table)  # a declarative model's table (typed as any FROM clause)
    with Database.engine(app).begin() as connection, pytest.raises(Exception, match="unencrypted"):
        connection.execute(insert(items), {
            "id": new_id("itm"), "household_id": "hh_x", "name": "x", "notes": "plain",
            "created_at": utcnow(), "updated_at": utcnow()})


def raw(app: Flask, table: str, column: str, row_id: str) -> Any:
    """The stored value as the driver gives it (a JSON column's, after the downgrade, parsed on
    PostgreSQL)."""
    with Database.engine(app).connect() as connection:
        return connection.execute(
            text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id}  # noqa: S608
        ).scalar_one()


def put_raw(app: Flask, table: str, column: str, row_id: str, value: str) -> None:
    with Database.engine(app).begin() as connection:
        connection.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"),  # noqa: S608
                           {"v": value, "id": row_id})


def test_a_value_swapped_between_rows_or_columns_is_refused(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    family = family_app(make_app)
    first, second = add_item(family, f"one {MARK}"), add_item(family, f"two {MARK}")
    a, b = raw(family.app, "items", "notes", first), raw(family.app, "items", "notes", second)
    put_raw(family.app, "items", "notes", first, b)
    put_raw(family.app, "items", "notes", second, a)
    before = snapshot(family.app)
    owner = family.headers(family.owner)
    with caplog.at_level(logging.ERROR, logger="app.crypto"):
        for item_id in (first, second):
            r = family.client.get(items_url(family, f"/{item_id}"), headers=owner)
            assert r.status_code == 500
            assert json_object(r)["message"] == "A stored value could not be decrypted"
            assert MARK not in r.get_data(as_text=True)
        assert family.client.get(items_url(family), headers=owner).status_code == 500
    refused = [rec.getMessage() for rec in caplog.records if rec.name == "app.crypto"]
    assert any(f"items.notes of row {first} does not decrypt: authentication failed" in m
               for m in refused), refused
    assert not any(MARK in m or a in m or b in m for m in refused)
    assert snapshot(family.app) == before  # nothing written, nothing lost
    # Between two columns of one row: the note's value in the url column.
    request_id = family.submit(note=f"n {MARK}", url="https://shop.example.test/x")
    put_raw(family.app, "purchase_requests", "url", request_id,
            raw(family.app, "purchase_requests", "note", request_id))
    assert family.get(family.owner, f"/{request_id}").status_code == 500
    # Plaintext put in place of a sealed value is refused too, never shown.
    put_raw(family.app, "purchase_requests", "url", request_id, "https://evil.example.test/")
    r = family.get(family.owner, f"/{request_id}")
    assert r.status_code == 500 and "evil" not in r.get_data(as_text=True)


def sealed_key_ids(app: Flask) -> dict[str, int]:
    counts: dict[str, int] = {}
    with Database.engine(app).connect() as connection:
        for field in ENCRYPTED_FIELDS:
            query = f"SELECT {field.column} FROM {field.table}"  # noqa: S608 - our names
            for (value,) in connection.execute(text(query)):
                if value is not None:
                    kid = crypto_fields.key_id_of(value) or "plaintext"
                    counts[kid] = counts.get(kid, 0) + 1
    return counts


def test_rotation_re_encrypts_every_value_and_resumes_after_an_interruption(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = family_app(make_app, DATA_ENCRYPTION_KEYS=[KEY_A])
    ids = write_everything(old, MARK)
    for n in range(4):
        add_item(old, f"extra {n} {MARK}")
    kid_a, kid_b = key_id(parse_key(KEY_A) or b""), key_id(parse_key(KEY_B) or b"")
    total = sealed_key_ids(old.app)[kid_a]
    assert set(sealed_key_ids(old.app)) == {kid_a}

    app = make_app(**INTERNAL_CONFIG, **WEBHOOK_CONFIG, DATA_ENCRYPTION_KEYS=[KEY_B, KEY_A])
    family = Family(app=app, client=app.test_client(), auth=old.auth, household_id=old.household_id,
                    owner=old.owner, adult=old.adult, child=old.child)
    runner = app.test_cli_runner()
    # Bounded: two batches of two rows, then it stops; a second run fails mid-batch.
    result = runner.invoke(args=["data", "rotate", "--batch-size", "2", "--max-batches", "2"])
    assert result.exit_code == 0, result.output
    assert "4 values now under key" in result.output and "run again to resume" in result.output
    assert sealed_key_ids(app) == {kid_b: 4, kid_a: total - 4}
    real = _interrupt_rotation(monkeypatch, at=4)
    result = runner.invoke(args=["data", "rotate", "--batch-size", "3"])
    assert result.exit_code != 0
    assert sealed_key_ids(app) == {kid_b: 7, kid_a: total - 7}  # the failed batch rolled back
    monkeypatch.setattr(crypto_rotate, "reseal", real)
    result = runner.invoke(args=["data", "rotate", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert f"{total - 7} values now under key {kid_b}" in result.output
    assert sealed_key_ids(app) == {kid_b: total}
    again = runner.invoke(args=["data", "rotate"])
    assert again.exit_code == 0 and f"0 values now under key {kid_b}" in again.output

    # With the old key gone, everything still reads.
    only_new = make_app(**INTERNAL_CONFIG, DATA_ENCRYPTION_KEYS=[KEY_B])
    family.app, family.client = only_new, only_new.test_client()
    family.tokens.clear()
    owner = family.headers(family.owner)
    item = json_object(family.client.get(items_url(family, f"/{ids['item']}"), headers=owner))
    assert item["notes"] == f"patched {MARK}"
    view = family.get(family.owner, f"/{ids['request']}/purchase-intents/{ids['intent']}")
    assert view.status_code == 200 and json.dumps(view.get_json()).count(MARK) == 3


def test_rotation_encrypts_text_stored_before_encryption_and_stops_at_a_bad_value(
    make_app: Any,
) -> None:
    family = family_app(make_app)
    item_id, other = add_item(family, "x"), add_item(family, "y")
    put_raw(family.app, "items", "notes", item_id, f"legacy {MARK}")
    runner = family.app.test_cli_runner()
    result = runner.invoke(args=["data", "rotate"])
    assert result.exit_code == 0, result.output
    assert "items.notes: batch 1, 0 re-encrypted, 1 encrypted" in result.output
    r = family.client.get(items_url(family, f"/{item_id}"), headers=family.headers(family.owner))
    assert json_object(r)["notes"] == f"legacy {MARK}"
    # A sealed value moved to another row stops the run, naming the row, writing nothing.
    put_raw(family.app, "items", "notes", other, raw(family.app, "items", "notes", item_id))
    ring = KeyRing.from_setting([KEY_B, *family.app.config["DATA_ENCRYPTION_KEYS"]])
    before = snapshot(family.app)
    with pytest.raises(FieldDecryptionError, match=f"items.notes of row {other}"):
        crypto_rotate.rotate(Database.engine(family.app), ring, 10)
    assert snapshot(family.app) == before


def stored_values(app: Flask) -> dict[tuple[str, str], list[str]]:
    """Every stored value of every encrypted column, by (table, column)."""
    values: dict[tuple[str, str], list[str]] = {}
    with Database.engine(app).connect() as connection:
        for field in ENCRYPTED_FIELDS:
            query = f"SELECT {field.column} FROM {field.table}"  # noqa: S608 - our names
            values[(field.table, field.column)] = [
                v if isinstance(v, str) else json.dumps(v)
                for (v,) in connection.execute(text(query)) if v is not None]
    return values


def audit_rows(app: Flask) -> list[tuple[str, int, str, str | None, str | None, str]]:
    """(chain, seq, action, household, principal, details) of every audit event."""
    with SESSIONS.get(app)() as session:
        return sorted((e.chain, e.seq, e.action, e.household_id, e.principal_id,
                       json.dumps(e.details, sort_keys=True))
                      for e in session.scalars(select(AuditEvent)))


def test_rotation_records_each_committed_batch_on_the_system_chain_never_a_value(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = family_app(make_app, DATA_ENCRYPTION_KEYS=[KEY_A])
    write_everything(old, MARK)
    legacy = add_item(old, "x")
    put_raw(old.app, "items", "notes", legacy, f"legacy {MARK}")
    kid_a, kid_b = key_id(parse_key(KEY_A) or b""), key_id(parse_key(KEY_B) or b"")
    before = stored_values(old.app)
    under_a = {name: sum(1 for v in vs if crypto_fields.key_id_of(v) == kid_a)
               for name, vs in before.items()}
    app = make_app(**INTERNAL_CONFIG, **WEBHOOK_CONFIG, DATA_ENCRYPTION_KEYS=[KEY_B, KEY_A])
    runner = app.test_cli_runner()
    events_before = audit_rows(app)

    # A run that fails at its fourth value: the batches before commit with their events, the
    # failing one with neither.
    real = _interrupt_rotation(monkeypatch, at=4)
    assert runner.invoke(args=["data", "rotate", "--batch-size", "3"]).exit_code != 0
    monkeypatch.setattr(crypto_rotate, "reseal", real)
    added = [row for row in audit_rows(app) if row not in events_before]
    assert {(chain, action) for chain, _, action, *_ in added} == {(SYSTEM_CHAIN, "data.rotated")}
    committed = [v for vs in stored_values(app).values() for v in vs
                 if crypto_fields.key_id_of(v) == kid_b]
    recorded = [json.loads(row[5]) for row in added]
    assert sum(d["reEncrypted"] + d["encrypted"] for d in recorded) == len(committed) > 0

    result = runner.invoke(args=["data", "rotate", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    batches = sum(1 for line in result.output.splitlines() if ": batch " in line)
    added = [row for row in audit_rows(app) if row not in events_before]
    # Only data.rotated events on the system chain, one per committed batch, of no one.
    assert {(chain, action, household, principal)
            for chain, _, action, household, principal, _ in added} == {
        (SYSTEM_CHAIN, "data.rotated", None, None)}
    assert len(added) == len(recorded) + batches
    details = [json.loads(row[5]) for row in added]
    assert all(set(d) == {"table", "column", "reEncrypted", "encrypted", "fromKeyIds", "toKeyId"}
               for d in details)
    assert all(d["toKeyId"] == kid_b and d["fromKeyIds"] in ([], [kid_a]) for d in details)
    # The counts add up, per column, to what the rotation rewrote.
    rewritten: dict[tuple[str, str], int] = {}
    encrypted: dict[tuple[str, str], int] = {}
    for d in details:
        name = (d["table"], d["column"])
        rewritten[name] = rewritten.get(name, 0) + d["reEncrypted"]
        encrypted[name] = encrypted.get(name, 0) + d["encrypted"]
    assert rewritten == {name: n for name, n in under_a.items() if n}
    assert {name: n for name, n in encrypted.items() if n} == {("items", "notes"): 1}
    after = stored_values(app)
    assert all(crypto_fields.key_id_of(v) == kid_b for vs in after.values() for v in vs)
    # Neither a plaintext nor a ciphertext, old or new, in any event.
    stored_text = " ".join(row[5] for row in added)
    assert MARK not in stored_text and "v1:" not in stored_text
    for value in [v for vs in [*before.values(), *after.values()] for v in vs]:
        assert value not in stored_text
    assert verify(app, SYSTEM_CHAIN).ok and verify(app).ok


@pytest.mark.parametrize("value", [
    "", "with\x00nul", "x" * 65536, "\U0001f600 e\u0301 \u202e rtl", "v1:deadbeef:AAAA",
])
def test_hostile_strings_round_trip(app: Flask, value: str) -> None:
    ring = KeyRing.from_setting([KEY_A])
    sealed = encrypt("items", "notes", "itm_1", value, ring)
    assert crypto_fields.decrypt("items", "notes", "itm_1", sealed, ring) == value
    assert value == "" or value not in sealed


def test_a_lone_surrogate_is_refused_before_sealing() -> None:
    with pytest.raises(UnicodeEncodeError):
        encrypt("items", "notes", "itm_1", "\ud800", KeyRing.from_setting([KEY_A]))


def test_a_64_kib_value_round_trips_through_the_api(make_app: Any) -> None:
    family = family_app(make_app)
    request_id = family.approved()
    intent_id = family.intent(request_id)["intentId"]
    big = "\u00e9" * 32768  # 64 KiB of UTF-8 (a NUL is refused before, as unstorable)
    r = family.client.post("/api/internal/events", headers={"X-Internal-Token": ORCHESTRATOR_TOKEN},
                           json={"intentId": intent_id, "type": "page.view", "data": {"t": big}})
    assert r.status_code in (200, 201, 202), r.get_json()
    view = json_object(family.get(family.owner, f"/{request_id}/purchase-intents/{intent_id}"))
    assert [e["data"] for e in view["events"]] == [{"t": big}]


def test_every_encrypted_column_has_the_sealed_type() -> None:
    from app.models.sealed import Sealed

    for field in ENCRYPTED_FIELDS:
        column = Base.metadata.tables[field.table].c[field.column]
        assert isinstance(column.type, Sealed), field
    sealed = {(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns
              if isinstance(c.type, Sealed)}
    assert sealed == {(f.table, f.column) for f in ENCRYPTED_FIELDS}


def test_orm_reads_after_expiry_and_a_retried_insert_see_the_plaintext(app: Flask) -> None:
    from sqlalchemy.exc import IntegrityError

    from app.models import Item
    from testkit.builders.households import make_household

    household_id = make_household(app, "H", {})
    sessions_of = SESSIONS.get(app)
    with sessions_of() as session:
        item = Item(household_id=household_id, name="x", notes=f"kept {MARK}")
        session.add(item)
        session.commit()
        assert item.notes == f"kept {MARK}"
        session.expire(item)
        assert item.notes == f"kept {MARK}"  # reloaded (refresh event) and opened
        session.refresh(item)
        assert item.notes == f"kept {MARK}"
        # An insert that fails (unknown household) and is retried stores the text, once sealed.
        again = Item(household_id="hh_missing", name="y", notes=f"retry {MARK}")
        session.add(again)
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        again.household_id = household_id
        session.add(again)
        session.commit()
        retried = again.id
    with sessions_of() as session:
        found = session.get(Item, retried)
        assert found is not None and found.notes == f"retry {MARK}"


def test_the_log_redaction_masks_every_data_key(make_app: Any) -> None:
    from app.logs import MASK, redactor

    make_app(DATA_ENCRYPTION_KEYS=[KEY_B, KEY_A])
    line = redactor.redact(f"keys were {KEY_B} and {KEY_A}")
    assert KEY_A not in line and KEY_B not in line and line.count(MASK) == 2


def test_the_migration_encrypts_what_was_stored_before_it_and_its_downgrade_decrypts(
    make_app: Any, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from alembic import command
    from alembic.config import Config

    from app.cli import MIGRATIONS
    from app.db import build_engine
    from app.models import Item, WebhookEvent
    from testkit.config import DB_BACKEND

    if DB_BACKEND == "postgresql":
        server = request.getfixturevalue("postgres")
        server.psql("CREATE DATABASE before_encryption")
        url = server.url("before_encryption")
    else:
        url = f"sqlite:///{tmp_path / 'before.sqlite3'}"
    engine = build_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "h10id")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO households (id, name, created_at) "
                                "VALUES ('hh_1', 'H', :now)"), {"now": now})
        connection.execute(text("INSERT INTO items (id, household_id, name, notes, created_at, "
                                "updated_at) VALUES ('itm_1', 'hh_1', 'x', :notes, :now, :now)"),
                           {"notes": f"old {MARK}", "now": now})
        connection.execute(text("INSERT INTO webhook_events (id, webhook_id, provider, type, "
                                "payload, received_at) VALUES ('evt_1', 'w1', 'hyperbeam', 't', "
                                ":payload, :now)"),
                           {"payload": json.dumps({"data": MARK}), "now": now})
    engine.dispose()

    app = make_app(DATABASE_URL=url, DATA_ENCRYPTION_KEYS=[KEY_A])
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert all(MARK not in repr(row) for rows in snapshot(app).values() for row in rows)
    with SESSIONS.get(app)() as session:
        item, event = session.get(Item, "itm_1"), session.get(WebhookEvent, "evt_1")
        assert item is not None and item.notes == f"old {MARK}"
        assert event is not None and event.payload == {"data": MARK}
    result = app.test_cli_runner().invoke(args=["db", "downgrade", "h10id"])
    assert result.exit_code == 0, result.output
    assert raw(app, "items", "notes", "itm_1") == f"old {MARK}"
    payload = raw(app, "webhook_events", "payload", "evt_1")
    assert (json.loads(payload) if isinstance(payload, str) else payload) == {"data": MARK}
    Database.engine(app).dispose()


def test_export_and_erasure_work_over_encrypted_rows(make_app: Any) -> None:
    family = family_app(make_app)
    write_everything(family, MARK)
    runner = family.app.test_cli_runner()
    exported = runner.invoke(args=["audit", "export", "--household", family.household_id])
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.output.splitlines() if line.startswith("{")]
    assert len(lines) > 3 and MARK not in exported.output
    r = family.client.delete(f"/api/households/{family.household_id}",
                             headers=family.headers(family.owner))
    assert r.status_code == 204
    after = snapshot(family.app)
    for table in Base.metadata.sorted_tables:
        if "household_id" in table.c and table.name != "audit_events":
            assert not any(family.household_id in repr(row) for row in after[table.name]), table
    # What belongs to the person, not the household, stays readable.
    mine = family.client.get("/api/auth/sessions", headers=family.headers(family.owner))
    assert [s["userAgent"] for s in json_object(mine)["items"]] == [f"Browser {MARK}"]


def test_rotation_beside_concurrent_writes_loses_none_of_them(make_app: Any) -> None:
    import threading

    old = family_app(make_app, DATA_ENCRYPTION_KEYS=[KEY_A])
    item_ids = [add_item(old, f"before {n}") for n in range(24)]
    app = make_app(DATA_ENCRYPTION_KEYS=[KEY_B, KEY_A])
    headers = {"Authorization": f"Bearer {old.auth.token(old.owner)}"}
    failures: list[BaseException] = []

    def rotating() -> None:
        try:
            with app.app_context():
                crypto_rotate.rotate(Database.engine(app), KeyRing.from_setting(
                    [KEY_B, KEY_A]), batch_size=3)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    worker = threading.Thread(target=rotating)
    client = app.test_client()
    worker.start()
    for n, item_id in enumerate(item_ids):
        r = client.patch(f"/api/households/{old.household_id}/items/{item_id}",
                         json={"notes": f"after {n}"}, headers=headers)
        assert r.status_code == 200, r.get_json()
    worker.join(60)
    assert not failures and not worker.is_alive()
    kid_b = key_id(parse_key(KEY_B) or b"")
    listed = client.get(f"/api/households/{old.household_id}/items?limit=50", headers=headers)
    assert [i["notes"] for i in json_object(listed)["items"]] == [f"after {n}" for n in range(24)]
    assert sealed_key_ids(app) == {kid_b: 24}
