"""What the schemathesis runs and the hostile-string sweep share: the app's internal tokens, a
"world" of real rows to aim ids at, the schema as loaded and configured, the credentials each
operation gets, and the one-line report at the end of a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from schemathesis import Case, GenerationMode

from testkit.builders.households import json_object
from testkit.typing import Json

BUYFLOW_TOKEN = "buyflow-internal-token-for-schemathesis-0123456789"
ORCHESTRATOR_TOKEN = "orchestrator-internal-token-for-schemathesis-0123"
INTERNAL_TOKENS = {"/api/internal/purchase-intents": BUYFLOW_TOKEN, "/api/internal/": ORCHESTRATOR_TOKEN}


# A path parameter drawn as this placeholder is replaced by the world's id of that name.
PLACEHOLDER = "world-placeholder"


@dataclass
class World:
    """Real rows reached through the API: the owner's household and what hangs off it."""

    client: FlaskClient
    owner: dict[str, str]
    adult: dict[str, str]
    adult_email: str
    owner_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def build(self) -> None:
        def post(path: str, body: Json, as_user: dict[str, str], key: str = "id") -> str:
            """The id (``key``) of what ``body`` posted to ``path`` created (201, or the test
            fails)."""
            response = self.client.post(path, json=body, headers=as_user)
            assert response.status_code == 201, (path, response.get_json())
            created = json_object(response)[key]
            assert isinstance(created, str), (path, key, created)
            return created

        household = post("/api/households", {"name": "Schema home"}, self.owner)
        base = f"/api/households/{household}"
        invitation = post(base + "/members", {"email": self.adult_email, "role": "adult"},
                          self.owner)
        accepted = self.client.post(f"/api/invitations/{invitation}/accept", headers=self.adult)
        assert accepted.status_code == 200, accepted.get_json()
        adult = json_object(accepted)
        item = post(base + "/items", {"name": "Coat"}, self.owner)
        outfit = post(base + "/outfits", {"name": "Winter", "itemIds": [item]}, self.owner)
        new_request: dict[str, Json] = {"title": "Boots", "amountMinor": 5000, "currency": "EUR",
                                        "itemId": item}
        submitted = post(base + "/requests", new_request, self.adult)
        approved = post(base + "/requests", new_request, self.adult)
        decided = self.client.post(f"{base}/requests/{approved}/approve", headers=self.owner)
        assert decided.status_code == 200, decided.get_json()
        intent = post(f"{base}/requests/{approved}/purchase-intents", None, self.owner, "intentId")
        trail = self.client.get(f"{base}/audit", headers=self.owner)
        assert trail.status_code == 200, trail.get_json()
        first_event = json_object(trail)["items"][-1]["id"]
        self.ids = {
            "householdId": household, "itemId": item, "outfitId": outfit,
            "submittedRequestId": submitted, "approvedRequestId": approved,
            "intentId": intent, "userId": adult["userId"], "ownerId": self.owner_id,
            "eventId": first_event,
        }

    def resolve(self, case: Case[Any]) -> None:
        params = case.path_parameters or {}
        if not any(value == PLACEHOLDER for value in params.values()):
            return
        if not self.ids or case.method.upper() != "GET":
            self.build()
        for name, value in params.items():
            if value != PLACEHOLDER:
                continue
            if name == "requestId":
                flow = "purchase-intents" in case.path or "confirm-checkout" in case.path
                params[name] = self.ids["approvedRequestId" if flow else "submittedRequestId"]
            else:
                params[name] = self.ids[name]


def build_schema_app(make_app: Callable[..., Flask], **overrides: Any) -> Flask:
    """The app under test: internal tokens configured and required, quiet logs."""
    app: Flask = make_app(
        BUYFLOW_INTERNAL_TOKEN=[BUYFLOW_TOKEN], REQUIRE_BUYFLOW_INTERNAL_TOKEN=True,
        ORCHESTRATOR_INTERNAL_TOKEN=[ORCHESTRATOR_TOKEN], REQUIRE_INTERNAL_EVENT_TOKEN=True,
        LOG_LEVEL="CRITICAL", **overrides,
    )
    return app


def load_schema(app: Flask, max_examples: int) -> Any:
    """``/api/openapi.json`` in-process (WSGI), positive and negative, deterministic."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=max_examples,
        deterministic=True,
        # The bearer token or internal token is the test's to send (headers_for), not a fuzzed
        # header.
        with_security_parameters=False,
        # Unknown query keys and headers are ignored by design (DESIGN.md: unknown fields are
        # dropped), so an extra parameter is not an invalid request.
        allow_extra_parameters=False,
    )
    return schema


def headers_for(case: Case[Any], bearer: dict[str, str]) -> dict[str, str]:
    """Genuine credentials for the case's operation: ``bearer`` (a household owner's token
    headers) on bearer routes, the configured internal token on internal routes."""
    return headers_for_security(case.operation.definition.raw, case.path, bearer)


def headers_for_security(
    operation: dict[str, Any], path: str, bearer: dict[str, str]
) -> dict[str, str]:
    """``headers_for`` on an operation of the OpenAPI document and its path template."""
    security = operation.get("security") or []
    if {"bearer": []} in security:
        return dict(bearer)
    if {"internalToken": []} in security:
        token = next(v for prefix, v in INTERNAL_TOKENS.items() if path.startswith(prefix))
        return {"X-Internal-Token": token}
    return {}


def drop_invented_cursor(case: Case[Any], mode: GenerationMode) -> None:
    """A cursor is opaque (a nextCursor the server issued): the schema cannot describe a valid
    one, so a positive case never invents it. Forged cursors are negative cases here and in
    test_openapi_conformance.py."""
    if mode is GenerationMode.POSITIVE and case.query and "cursor" in case.query:
        del case.query["cursor"]


def print_report(request: pytest.FixtureRequest, lines: list[str]) -> None:
    """Print past pytest's capture, so that the figures show in a quiet (-q) run."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    assert capture is not None
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))
