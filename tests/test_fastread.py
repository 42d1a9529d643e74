"""Every read goes through ``app.gateway.fastread``, and trusted rows are serialised by the
response schema without being validated again.

- The sweep calls every ``GET`` route with a contract (except those that declare ``writes``) as
  a member of a household that has one of everything, and fails if a single statement reached
  the database through SQLAlchemy's execution (the ORM or Core) instead of a ``Read``, or if the
  route read nothing through a ``Read``. ``NOT_YET_FAST`` names the reads that still go through
  the ORM; it may only shrink (a name that is no longer a route fails too).
- The response schema stays the contract: a trusted answer is written by a mirror of it, so a
  row's undeclared columns never leave, and its validator is never called.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from app.db import Database
from app.gateway import fastread
from app.gateway.contracts import contract_of
from app.gateway.schemas import Trusted, row_serializer, serialize
from app.households.schemas import ItemOut, ItemPage, MemberOut, MemberPage
from tests.helpers import AuthActions

# GET routes whose handlers still read through the ORM session (services not yet converted).
NOT_YET_FAST = {
    "GET /api/auth/me",
    "GET /api/auth/sessions",
    "GET /api/invitations",
    "GET /api/households/<household_id>/invitations",
    "GET /api/households/<household_id>/audit",
    "GET /api/households/<household_id>/audit/<event_id>/proof",
    "GET /api/households/<household_id>/requests",
    "GET /api/households/<household_id>/requests/<request_id>",
    "GET /api/households/<household_id>/requests/<request_id>/purchase-intents/<intent_id>",
}


def _get_routes(app: Flask) -> dict[str, str]:
    """``"GET rule"`` → rule, for every contracted GET that only reads."""
    routes = {}
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if "GET" in (rule.methods or ()) and contract is not None and not contract.writes:
            routes[f"GET {rule.rule}"] = rule.rule
    return routes


@pytest.fixture
def home(app: Flask, auth: AuthActions) -> dict[str, Any]:
    owner = auth.user("owner@example.test")
    headers = auth.headers(owner)
    client = app.test_client()
    household = client.post("/api/households", json={"name": "Home"}, headers=headers).get_json()["id"]
    item = client.post(f"/api/households/{household}/items", headers=headers,
                       json={"name": "Coat", "notes": "wool"}).get_json()["id"]
    outfit = client.post(f"/api/households/{household}/outfits", headers=headers,
                         json={"name": "O", "itemIds": [item]}).get_json()["id"]
    return {"headers": headers, "ids": {"household_id": household, "item_id": item,
                                        "outfit_id": outfit}}


def test_every_read_route_reads_only_through_fastread(
        app: Flask, home: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    routes = _get_routes(app)
    assert NOT_YET_FAST <= set(routes), "NOT_YET_FAST names a route that is gone"
    through_sqlalchemy: list[str] = []
    fast: list[str] = []
    execute = fastread._execute
    monkeypatch.setattr(fastread, "_execute",
                        lambda c, compiled, p: fast.append(compiled.sql) or execute(c, compiled, p))
    event.listen(Database.engine(app), "before_cursor_execute",
                 lambda *args: through_sqlalchemy.append(args[2]))
    client = app.test_client()
    checked = []
    for name, rule in sorted(routes.items()):
        if name in NOT_YET_FAST or not rule.startswith("/api/"):
            continue
        path = re.sub(r"<([a-z_]+)>", lambda m: home["ids"][m.group(1)], rule)
        through_sqlalchemy.clear()
        fast.clear()
        answer = client.get(path, headers=home["headers"])
        assert answer.status_code == 200, (name, answer.get_json())
        assert through_sqlalchemy == [], (name, through_sqlalchemy)
        assert fast, f"{name} read nothing through fastread"
        checked.append(name)
    assert len(checked) >= 7, checked  # households (2), members, items (2), outfits (2)


def test_trusted_rows_are_not_validated_again(
        app: Flask, home: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuses:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"validated again ({name})")

    for model in (ItemOut, ItemPage):
        monkeypatch.setattr(model, "__pydantic_validator__", Refuses())
    household, item = home["ids"]["household_id"], home["ids"]["item_id"]
    client = app.test_client()
    listed = client.get(f"/api/households/{household}/items", headers=home["headers"])
    one = client.get(f"/api/households/{household}/items/{item}", headers=home["headers"])
    assert listed.status_code == 200 and one.status_code == 200
    assert listed.get_json()["items"] == [one.get_json()]
    assert one.get_json()["notes"] == "wool"


def test_the_response_schema_still_strips_undeclared_columns(
        app: Flask, home: dict[str, Any]) -> None:
    household, item = home["ids"]["household_id"], home["ids"]["item_id"]
    client = app.test_client()
    declared = {field.alias or name for name, field in ItemOut.model_fields.items()}
    one = client.get(f"/api/households/{household}/items/{item}", headers=home["headers"])
    assert set(one.get_json()) == declared  # the table also has household_id, created_by, …
    members = client.get(f"/api/households/{household}/members", headers=home["headers"])
    assert [set(m) for m in members.get_json()["items"]] == [
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
