"""The buy-flow's one transition table (app/buyflow/states.py): every transition the code performs
is in it, every move in it is one the code performs, a move outside it is refused before any SQL,
and the OpenAPI document describes exactly the table."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from enum import StrEnum
from typing import Any, get_args

import pytest

from app.buyflow import clock, states, transitions
from app.db import utcnow
from app.households.schemas import Role
from app.models import HouseholdRole, IntentStatus, PurchaseIntent, PurchaseRequest, RequestStatus
from testkit import ROOT
from testkit.builders.families import INTERNAL_CONFIG, Family, build_family

TTL = 900
Edge = tuple[str, str, str]  # table, from, to
APP = ROOT / "app"


def table_edges() -> set[Edge]:
    return {(model.__tablename__, str(source), str(target))
            for model, table in states.TABLES.items()
            for source, targets in table.items() for target in targets}


def drive_every_flow(family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way through the buy-flow, through HTTP: each decision, both callbacks from each
    state they leave, expiry from each active state, cancellation from each cancellable one and
    the retry of a failed purchase."""
    start = utcnow()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id, intent = family.cart_ready_intent()  # approve, start, cart ready
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 200, r.get_json()
    assert family.post(family.adult, f"/{family.submit()}/reject").status_code == 200
    assert family.post(family.child, f"/{family.submit()}/cancel").status_code == 200
    assert family.post(family.adult, f"/{family.approved()}/cancel").status_code == 200
    request_id = family.approved()
    assert family.failed(family.intent(request_id)["intentId"]).status_code == 200  # PURCHASING
    assert family.post(family.adult, f"/{request_id}/cancel").status_code == 200  # FAILED
    request_id, intent = family.cart_ready_intent()
    assert family.failed(intent["intentId"]).status_code == 200  # from CART_READY
    retried = family.intent(request_id)  # FAILED → PURCHASING
    stale = family.approved()
    stale_intent = family.intent(stale)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL + 1))
    assert family.cart_ready(retried["intentId"]).status_code == 410  # PURCHASING → EXPIRED
    r = family.confirm(stale, stale_intent["intentId"], stale_intent["confirmationToken"])
    assert r.status_code == 410  # not yet cart ready either: also PURCHASING → EXPIRED
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=2 * TTL + 2))
    request_id, intent = family.cart_ready_intent()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=3 * TTL + 3))
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 410  # CART_READY → EXPIRED


def test_every_transition_the_code_performs_is_in_the_table_and_each_is_performed(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    performed: set[Edge] = set()
    check = states.refuse_unlisted

    def recording(table: states.Table, expected: Any, new_status: str) -> None:
        name = next(m.__tablename__ for m, t in states.TABLES.items() if t is table)
        performed.update((name, str(source), str(new_status)) for source in expected)
        check(table, expected, new_status)

    monkeypatch.setattr(transitions, "refuse_unlisted", recording)
    drive_every_flow(build_family(make_app(**INTERNAL_CONFIG)), monkeypatch)
    assert performed - table_edges() == set()  # nothing outside the table
    assert table_edges() - performed == set()  # and the table lists nothing the code never does


@pytest.mark.parametrize("model", [PurchaseRequest, PurchaseIntent])
def test_a_move_outside_the_table_is_refused_before_any_sql(make_app: Any, model: Any) -> None:
    app = make_app()
    table = states.TABLES[model]
    outside = [(source, target) for source in table for target in table
               if target not in table[source]]
    assert outside  # the final states at least
    with app.app_context():
        for source, target in outside:
            with pytest.raises(ValueError, match="not in the state table"):
                transitions.transition(model, "no-such-row", (source,), target)
        for source, targets in table.items():
            for target in targets:
                states.refuse_unlisted(table, (source,), target)  # listed: no refusal


def test_no_bare_state_or_role_string_is_left_in_the_buyflow_or_household_code() -> None:
    roles = {str(role) for role in HouseholdRole}
    buyflow_states = {str(state) for state in (*RequestStatus, *IntentStatus)}
    found = []
    for folder, names in (("buyflow", roles | buyflow_states), ("households", roles),
                          ("wardrobe", roles)):
        for path in sorted((APP / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{folder}/{path.name}:{node.lineno} {node.value}")
    # The wire Literal of roles is checked against the enum below.
    line = _role_literal_line()
    assert sorted(found) == sorted(f"households/schemas.py:{line} {r}" for r in roles)


def _role_literal_line() -> int:
    text = (APP / "households" / "schemas.py").read_text().splitlines()
    return next(i for i, line in enumerate(text, 1) if line.startswith("Role = Literal["))


def test_the_wire_roles_are_the_household_roles() -> None:
    assert get_args(Role) == tuple(HouseholdRole)


def _described(description: str) -> tuple[str, set[tuple[str, str]], list[str]]:
    match = re.fullmatch(r"Starts (\w+)\. Allowed transitions: (.*)\. Final: (.*)\.", description)
    assert match is not None, description
    edges = {(source, target)
             for move in match.group(2).split("; ")
             for source, targets in [move.split(" → ")]
             for target in targets.split(" | ")}
    return match.group(1), edges, match.group(3).split(", ")


@pytest.mark.parametrize(("schema", "model", "enum"), [
    ("RequestOut", PurchaseRequest, RequestStatus),
    ("IntentOut", PurchaseIntent, IntentStatus),
    ("IntentStatusOut", PurchaseIntent, IntentStatus),
    ("CheckoutOut", PurchaseIntent, IntentStatus),
])
def test_the_openapi_status_lists_exactly_the_table(
    make_app: Any, schema: str, model: Any, enum: type[StrEnum]
) -> None:
    document = make_app().test_client().get("/api/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    table = states.TABLES[model]
    status = schemas[f"{schema}-Output"]["properties"]["status"]
    assert schemas[status["$ref"].rsplit("/", 1)[1]]["enum"] == [str(s) for s in enum]
    initial, edges, final = _described(status["description"])
    assert initial == states.INITIAL[model]
    assert edges == {(s, t) for s, targets in table.items() for t in targets}
    assert final == [s for s, targets in table.items() if not targets]
