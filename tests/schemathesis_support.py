"""What the schemathesis runs share: the app's internal tokens, the schema as loaded and
configured, the credentials each operation gets, and the one-line report at the end of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import Case, GenerationMode

BUYFLOW_TOKEN = "buyflow-internal-token-for-schemathesis-0123456789"
ORCHESTRATOR_TOKEN = "orchestrator-internal-token-for-schemathesis-0123"
INTERNAL_TOKENS = {"/api/internal/purchase-intents": BUYFLOW_TOKEN, "/api/internal/": ORCHESTRATOR_TOKEN}


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


def headers_for(case: Case, bearer: dict[str, str]) -> dict[str, str]:
    """Genuine credentials for the case's operation: ``bearer`` (a household owner's token
    headers) on bearer routes, the configured internal token on internal routes."""
    security = case.operation.definition.raw.get("security") or []
    if {"bearer": []} in security:
        return dict(bearer)
    if {"internalToken": []} in security:
        token = next(v for prefix, v in INTERNAL_TOKENS.items() if case.path.startswith(prefix))
        return {"X-Internal-Token": token}
    return {}


def drop_invented_cursor(case: Case, mode: GenerationMode) -> None:
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
