"""Every read goes through ``app.fastread``, and trusted rows are serialised by the
response schema without being validated again.

- The sweep calls every ``GET`` route with a contract (except those that declare ``writes``) as
  a member of a household that has one of everything, and fails if a single statement reached
  the database through SQLAlchemy's execution (the ORM or Core) instead of a ``Read``, or if the
  route read nothing through a ``Read``.
- The response schema stays the contract: a trusted answer is written by a mirror of it, so a
  row's undeclared columns never leave, and its validator is never called.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from app import fastread
from app.audit.checkpoints import checkpoint_all
from app.audit.signing import signer
from app.auth import sessions
from app.crypto.fields import read_decoder
from app.db import Database
from app.gateway.contracts import contract_of
from app.gateway.schemas import Trusted, row_serializer, serialize
from app.households.schemas import MemberOut, MemberPage
from app.rowsecurity import in_flow
from app.wardrobe.schemas import ItemOut, ItemPage
from testkit.builders.audit import session_of
from testkit.builders.households import AuthActions, json_object
from testkit.spies import spy

TOKEN = "internal-token-for-fastread-0123456789"  # noqa: S105 - a test value
pytestmark = pytest.mark.settings(BUYFLOW_INTERNAL_TOKEN=[TOKEN], REQUIRE_BUYFLOW_INTERNAL_TOKEN=True)


def _get_routes(app: Flask) -> dict[str, str]:
    """``"GET rule"`` → rule, for every contracted GET that only reads."""
    routes = {}
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if "GET" in (rule.methods or ()) and contract is not None and not contract.writes:
            routes[f"GET {rule.rule}"] = rule.rule
    return routes


@dataclass(frozen=True)
class ReaderHome:
    """A household's owner's ``headers``, and ``ids`` by the URL parameter each fills
    (``household_id``, ``item_id`` …), for substituting into a route's rule."""

    headers: dict[str, str]
    ids: dict[str, str]


@pytest.fixture
def reader_home(app: Flask, auth: AuthActions) -> ReaderHome:
    """A household with one of everything a read shows: an item, an outfit, a member, an
    invitation, a purchase request with an intent whose cart is ready, audit events."""
    owner, adult = auth.user("owner@example.test"), auth.user("adult@example.test")
    headers, other = auth.headers(owner), auth.headers(adult)
    client = app.test_client()
    household = json_object(client.post("/api/households", json={"name": "Home"}, headers=headers))["id"]
    base = f"/api/households/{household}"
    item = json_object(client.post(f"{base}/items", headers=headers,
                                   json={"name": "Coat", "notes": "wool"}))["id"]
    outfit = json_object(client.post(f"{base}/outfits", headers=headers,
                                     json={"name": "O", "itemIds": [item]}))["id"]
    invitation = json_object(client.post(f"{base}/members", headers=headers,
                                         json={"email": adult.email, "role": "adult"}))["id"]
    assert client.post(f"/api/invitations/{invitation}/accept", headers=other).status_code == 200
    client.post(f"{base}/members", headers=headers, json={"email": "x@example.test", "role": "child"})
    request_id = json_object(client.post(f"{base}/requests", headers=other, json={
        "title": "Boots", "amountMinor": 8900, "currency": "EUR"}))["id"]
    assert client.post(f"{base}/requests/{request_id}/approve", headers=headers).status_code == 200
    intent = json_object(client.post(f"{base}/requests/{request_id}/purchase-intents",
                                     headers=headers))["intentId"]
    ready = client.post(f"/api/internal/purchase-intents/{intent}/cart-ready",
                        json={"actorUserId": owner.id,
                              "cart": {"items": [{"name": "Boots", "quantity": 1,
                                                  "amountMinor": 8900}],
                                       "totalMinor": 8900, "currency": "EUR"}},
                        headers={"X-Internal-Token": TOKEN})
    assert ready.status_code == 200, ready.get_json()
    with app.app_context(), session_of(app) as session:  # a signed checkpoint: proofs exist
        checkpoint_all(session, signer(app))
        session.commit()
    event = json_object(client.get(f"{base}/audit", headers=headers))["items"][0]["id"]
    return ReaderHome(headers=headers, ids={
        "household_id": household, "item_id": item, "outfit_id": outfit,
        "request_id": request_id, "intent_id": intent, "event_id": event})


def test_every_read_route_reads_only_through_fastread(
        app: Flask, reader_home: ReaderHome, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = _get_routes(app)
    through_sqlalchemy: list[str] = []
    fast: list[str] = []
    execute = fastread._execute
    monkeypatch.setattr(fastread, "_execute",
                        spy(execute, lambda connection, compiled, params: fast.append(compiled.sql)))
    event.listen(Database.engine(app), "before_cursor_execute",
                 lambda *args: through_sqlalchemy.append(args[2]))
    client = app.test_client()
    checked = []
    for name, rule in sorted(routes.items()):
        if not rule.startswith("/api/"):
            continue
        path = re.sub(r"<([a-z_]+)>", lambda m: reader_home.ids[m.group(1)], rule)
        through_sqlalchemy.clear()
        fast.clear()
        answer = client.get(path, headers=reader_home.headers)
        assert answer.status_code == 200, (name, answer.get_json())
        assert through_sqlalchemy == [], (name, through_sqlalchemy)
        assert fast, f"{name} read nothing through fastread"
        checked.append(name)
    assert len(checked) == len(routes) - len(
        [r for r in routes.values() if not r.startswith("/api/")]), checked


def test_trusted_rows_are_not_validated_again(
        app: Flask, reader_home: ReaderHome, monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuses:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"validated again ({name})")

    for model in (ItemOut, ItemPage):
        monkeypatch.setattr(model, "__pydantic_validator__", Refuses())
    household, item = reader_home.ids["household_id"], reader_home.ids["item_id"]
    client = app.test_client()
    listed = client.get(f"/api/households/{household}/items", headers=reader_home.headers)
    one = client.get(f"/api/households/{household}/items/{item}", headers=reader_home.headers)
    assert listed.status_code == 200 and one.status_code == 200
    assert json_object(listed)["items"] == [one.get_json()]
    assert json_object(one)["notes"] == "wool"


def test_the_response_schema_still_strips_undeclared_columns(
        app: Flask, reader_home: ReaderHome) -> None:
    household, item = reader_home.ids["household_id"], reader_home.ids["item_id"]
    client = app.test_client()
    declared = {field.alias or name for name, field in ItemOut.model_fields.items()}
    one = client.get(f"/api/households/{household}/items/{item}", headers=reader_home.headers)
    assert set(one.get_json()) == declared  # the table also has household_id, created_by, …
    members = client.get(f"/api/households/{household}/members", headers=reader_home.headers)
    assert [set(m) for m in json_object(members)["items"]] == 2 * [
        {field.alias or name for name, field in MemberOut.model_fields.items()}]
    # A trusted answer carrying more than the schema declares, at every level.
    row = {"id": "itm_1", "name": "n", "category": None, "size": None, "color": None,
           "notes": None, "created_at": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5),
           "household_id": "hh_other", "created_by": "usr_secret"}
    body = json.loads(serialize(ItemPage, Trusted({"items": [row], "next_cursor": None,
                                                   "password_hash": "x"})))
    assert body == {"items": [{"id": "itm_1", "name": "n", "category": None, "size": None,
                               "color": None, "notes": None, "createdAt": "2026-01-02T03:04:05Z"}],
                    "nextCursor": None}


def test_every_response_schema_has_a_mirror_with_the_same_fields(app: Flask) -> None:
    """Each contract's response schema that a trusted answer could use: its mirror writes the
    same fields under the same names as the model itself."""
    seen = set()
    for view in app.view_functions.values():
        contract = contract_of(view)
        if contract is None or contract.response is None or contract.response in seen:
            continue
        seen.add(contract.response)
        model = contract.response
        if model.__pydantic_decorators__.model_serializers or model.model_computed_fields:
            continue
        schema: Any = row_serializer(model).core_schema
        while schema["type"] == "definitions":
            schema = schema["schema"]
        assert schema["type"] == "typed-dict"
        assert {field.get("serialization_alias", name) for name, field in schema["fields"].items()
                } == {f.serialization_alias or f.alias or n for n, f in model.model_fields.items()}
    assert MemberPage in seen and ItemPage in seen


def test_a_column_decoder_applies_to_every_read_of_that_column(
        app: Flask, reader_home: ReaderHome, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DECODERS`` is where a stored form (ciphertext, say) becomes the value: its entry is
    called once per read, and the decoder it gives is given the table, column, row id and stored
    value of each row; only that column changes."""
    seen: list[tuple[str, str, Any, Any]] = []
    reads: list[int] = []
    stored = fastread.DECODERS[("items", "notes")]  # the encrypted column's own decoder

    def decoder() -> fastread.ValueDecoder:
        reads.append(1)
        opened = stored()

        def decode(table: str, column: str, row_id: Any, value: Any) -> Any:
            seen.append((table, column, row_id, value))
            plain = opened(table, column, row_id, value)
            return None if plain is None else plain.upper()

        return decode

    household, item = reader_home.ids["household_id"], reader_home.ids["item_id"]
    client = app.test_client()
    second = json_object(client.post(f"/api/households/{household}/items", headers=reader_home.headers,
                                     json={"name": "Scarf", "notes": "silk"}))["id"]
    before = client.get(f"/api/households/{household}/items", headers=reader_home.headers).get_json()
    # Decoders are resolved when a read is compiled: compile again with the decoder in place.
    monkeypatch.setitem(fastread.DECODERS, ("items", "notes"), decoder)
    fastread.forget_compiled()
    listed = client.get(f"/api/households/{household}/items", headers=reader_home.headers)
    one = client.get(f"/api/households/{household}/items/{item}", headers=reader_home.headers)
    monkeypatch.setitem(fastread.DECODERS, ("items", "notes"), stored)
    fastread.forget_compiled()
    assert [i["notes"] for i in before["items"]] == ["wool", "silk"]
    assert [i["notes"] for i in json_object(listed)["items"]] == ["WOOL", "SILK"]
    assert json_object(one)["notes"] == "WOOL"
    # The decoder is given the stored form (ciphertext), with the row's table, column and id;
    # the entry is called once per read (the list, the detail), not once per row.
    assert [(t, c, i) for t, c, i, _ in seen] == [
        ("items", "notes", item), ("items", "notes", second), ("items", "notes", item)]
    assert len(reads) == 2
    assert all(value.startswith("v1:") and "wool" not in value for *_, value in seen)
    assert {k: v for k, v in json_object(listed)["items"][0].items() if k != "notes"} == {
        k: v for k, v in before["items"][0].items() if k != "notes"}


def test_columns_that_share_a_decoder_factory_share_its_decoder_within_a_read(
        app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login session's user agent and IP are both encrypted: the sessions list decodes them
    with one decoder per read (the key ring looked up once), and both come back as plaintext."""
    user = auth.user("devices@example.test")
    for agent in ("Browser A", "Browser B"):
        with app.test_request_context(headers={"User-Agent": agent},
                                      environ_base={"REMOTE_ADDR": "192.0.2.7"}), in_flow("oidc"):
            sessions.start_session(user, "oidc", {"sub": "devices"})
            Database().session.commit()
    made: list[int] = []

    def factory() -> fastread.ValueDecoder:
        made.append(1)
        return read_decoder()

    for column in ("user_agent", "ip"):
        monkeypatch.setitem(fastread.DECODERS, ("auth_sessions", column), factory)
    fastread.forget_compiled()
    try:
        listed = app.test_client().get("/api/auth/sessions", headers=auth.headers(user))
    finally:
        monkeypatch.undo()
        fastread.forget_compiled()
    items = json_object(listed)["items"]
    assert sorted(s["userAgent"] for s in items) == ["Browser A", "Browser B"]
    assert {s["ip"] for s in items} == {"192.0.2.7"}
    assert made == [1]


def test_a_request_has_one_connection_and_transaction(app: Flask) -> None:
    """Reads before the session exists run on a plain connection; a session opened later in
    the same request joins its transaction (so per-transaction settings cover both). A request
    that may write begins it as its session would: on SQLite with the write lock, which its
    adopted connection keeps for any transaction it begins later."""
    import sqlite3

    from app.db import db
    from app.rawtransaction import WRITE_LOCK, RequestTransaction

    with app.test_request_context():
        db.read_only_request()
        first = db.connection()
        assert first.in_transaction()
        session_connection = db.session.connection()
        assert session_connection.connection.driver_connection is (
            first.connection.driver_connection)
        assert db.connection() is first
        db.commit()
        assert not first.in_transaction()
    engine = Database.engine(app)

    def write_locked() -> bool:
        other = sqlite3.connect(str(engine.url.database), timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        finally:
            other.close()
        return False

    sqlite = engine.dialect.name == "sqlite"
    with app.test_request_context():  # a request that may write
        first = db.connection()
        assert isinstance(first, RequestTransaction) and first.writes and first.in_transaction()
        assert write_locked() if sqlite else True
        session_connection = db.session.connection()
        assert session_connection.connection.driver_connection is (
            first.connection.driver_connection)
        assert session_connection.get_execution_options().get(WRITE_LOCK)
        assert db.connection() is first
        db.session.rollback()  # the transaction ends; the session's next one takes the lock too
        assert not first.in_transaction()
        assert not write_locked() if sqlite else True
        assert db.session.connection() is session_connection and first.in_transaction()
        assert write_locked() if sqlite else True
        db.commit()
        assert not first.in_transaction()
