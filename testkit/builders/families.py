"""Buy-flow builders: a household with its members and a client that speaks the buy-flow.
The concurrency tests serve it under gunicorn with ``testkit.servers.gunicorn``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.models import AuditEvent, Item, PurchaseIntent, PurchaseRequest, User
from testkit.builders.households import AuthActions, json_object, make_household
from testkit.typing import Json

BUYFLOW_TOKEN = "bf-internal-token-0123456789abcdef"
BUYFLOW_TOKEN_NEXT = "bf-internal-token-next-fedcba9876543210"
ORCHESTRATOR_TOKEN = "orchestrator-token-0123456789abcdef"
INTERNAL_CONFIG: dict[str, Any] = {
    "BUYFLOW_INTERNAL_TOKEN": [BUYFLOW_TOKEN, BUYFLOW_TOKEN_NEXT],
    "REQUIRE_BUYFLOW_INTERNAL_TOKEN": True,
    "ORCHESTRATOR_INTERNAL_TOKEN": [ORCHESTRATOR_TOKEN],
    "REQUIRE_INTERNAL_EVENT_TOKEN": True,
}
CART: dict[str, Json] = {"items": [{"name": "Rain boots", "quantity": 1, "amountMinor": 4500}],
                         "totalMinor": 4500, "currency": "EUR"}


@dataclass
class Family:
    """A household (owner, adult, child) and the buy-flow calls, through HTTP."""

    app: Flask
    client: FlaskClient
    auth: AuthActions
    household_id: str
    owner: User
    adult: User
    child: User
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: User, **extra: str) -> dict[str, str]:
        if user.id not in self.tokens:
            self.tokens[user.id] = self.auth.token(user)
        return {"Authorization": f"Bearer {self.tokens[user.id]}", **extra}

    def url(self, tail: str = "") -> str:
        return f"/api/households/{self.household_id}/requests{tail}"

    def post(self, user: User, tail: str, json: Json = None, **headers: str) -> TestResponse:
        return self.client.post(self.url(tail), json=json, headers=self.headers(user, **headers))

    def get(self, user: User, tail: str = "") -> TestResponse:
        return self.client.get(self.url(tail), headers=self.headers(user))

    def submit(self, user: User | None = None, **fields: Any) -> str:
        body = {"title": "Rain boots", "amountMinor": 4500, "currency": "EUR", **fields}
        r = self.post(user or self.child, "", body)
        assert r.status_code == 201, r.get_json()
        return str(json_object(r)["id"])

    def approved(self, by: User | None = None) -> str:
        request_id = self.submit()
        r = self.post(by or self.adult, f"/{request_id}/approve")
        assert r.status_code == 200, r.get_json()
        return request_id

    def intent(self, request_id: str, by: User | None = None) -> dict[str, Any]:
        r = self.post(by or self.adult, f"/{request_id}/purchase-intents")
        assert r.status_code == 201, r.get_json()
        return json_object(r)

    def cart_ready(self, intent_id: str, actor: User | None = None, cart: Json = None,
                   token: str = BUYFLOW_TOKEN) -> TestResponse:
        return self.client.post(
            f"/api/internal/purchase-intents/{intent_id}/cart-ready",
            json={"actorUserId": (actor or self.adult).id, "cart": CART if cart is None else cart},
            headers={"X-Internal-Token": token},
        )

    def failed(self, intent_id: str, actor: User | None = None,
               token: str = BUYFLOW_TOKEN) -> TestResponse:
        return self.client.post(
            f"/api/internal/purchase-intents/{intent_id}/failed",
            json={"actorUserId": (actor or self.adult).id, "reason": "out of stock"},
            headers={"X-Internal-Token": token},
        )

    def confirm(self, request_id: str, intent_id: str, token: str, by: User | None = None,
                **headers: str) -> TestResponse:
        return self.post(by or self.adult, f"/{request_id}/confirm-checkout",
                         {"intentId": intent_id, "confirmationToken": token}, **headers)

    def cart_ready_intent(self) -> tuple[str, dict[str, Any]]:
        request_id = self.approved()
        intent = self.intent(request_id)
        assert self.cart_ready(intent["intentId"]).status_code == 200
        return request_id, intent

    # -- direct reads ---------------------------------------------------------------------

    def request_row(self, request_id: str) -> PurchaseRequest:
        with SESSIONS.get(self.app)() as session:
            row: PurchaseRequest | None = session.get(PurchaseRequest, request_id)
            assert row is not None
            return row

    def intent_row(self, intent_id: str) -> PurchaseIntent:
        with SESSIONS.get(self.app)() as session:
            row: PurchaseIntent | None = session.get(PurchaseIntent, intent_id)
            assert row is not None
            return row

    def audit_actions(self) -> list[str]:
        with SESSIONS.get(self.app)() as session:
            return list(session.scalars(
                select(AuditEvent.action).where(AuditEvent.household_id == self.household_id)
                .order_by(AuditEvent.seq)
            ))

    def add_item(self, household_id: str | None = None) -> str:
        with SESSIONS.get(self.app)() as session:
            item = Item(household_id=household_id or self.household_id, name="Boots")
            session.add(item)
            session.commit()
            return item.id


def build_family(app: Flask, prefix: str = "") -> Family:
    auth = AuthActions(app)
    owner = auth.user(f"{prefix}owner@example.test")
    adult = auth.user(f"{prefix}adult@example.test")
    child = auth.user(f"{prefix}child@example.test")
    household_id = make_household(
        app, f"{prefix}Family", {owner.id: "owner", adult.id: "adult", child.id: "child"}
    )
    return Family(app=app, client=app.test_client(), auth=auth, household_id=household_id,
                  owner=owner, adult=adult, child=child)


def without(rows: dict[str, list[Any]], *tables: str) -> dict[str, list[Any]]:
    return {name: value for name, value in rows.items() if name not in tables}
