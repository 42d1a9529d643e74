"""The store inside the application: a request that needs a secret while the backend is down gets
the API's 503 (naming the component, not the secret's value); a household's secrets are reached
through its tenant view."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from app.gateway.contracts import endpoint
from app.gateway.schemas import Schema
from app.secrets import SECRET_STORE, BackendUnavailable
from testkit.builders.households import json_object, snapshot
from testkit.checks.log_leaks import remember

HOUSEHOLD_KEY = "app-household-key-value-19fe"
remember(HOUSEHOLD_KEY)


class ProbeOut(Schema):
    length: int


def app_with_probe(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(SECRET_STORE_URL="memory://")

    @app.get("/probe/<household_id>")
    @endpoint(auth="public", response=ProbeOut)
    def probe(household_id: str) -> dict[str, int]:
        store = SECRET_STORE.get(app)
        value = store.for_tenant(household_id).get("provider_key")["provider_key"]
        return {"length": len(value)}

    return app


def test_a_household_secret_is_read_through_its_tenant_view(make_app: Callable[..., Flask]) -> None:
    app = app_with_probe(make_app)
    SECRET_STORE.get(app).for_tenant("hh_a").set("provider_key", HOUSEHOLD_KEY)
    response = app.test_client().get("/probe/hh_a")
    assert response.status_code == 200 and response.json == {"length": len(HOUSEHOLD_KEY)}
    missing = app.test_client().get("/probe/hh_b")  # hh_b has no provider_key
    assert missing.status_code == 503 and json_object(missing)["component"] == "secrets"
    assert "provider_key" not in missing.get_data(as_text=True)


def test_a_secret_backend_outage_is_a_503_without_values(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_with_probe(make_app)
    store = SECRET_STORE.get(app)
    store.for_tenant("hh_a").set("provider_key", HOUSEHOLD_KEY)

    def down(names: list[str]) -> dict[str, str]:
        raise BackendUnavailable(store.name, "simulated")

    monkeypatch.setattr(store, "backend_fetch", down)
    before = snapshot(app)
    response = app.test_client().get("/probe/hh_a")
    assert response.status_code == 503
    assert json_object(response)["error"] == "ServiceUnavailable"
    assert json_object(response)["component"] == "secrets"
    assert HOUSEHOLD_KEY not in response.get_data(as_text=True)
    assert snapshot(app) == before
