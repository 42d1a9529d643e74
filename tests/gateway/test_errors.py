"""Every error is the JSON of API.md, with correlationId equal to X-Request-ID."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from testkit.apps import sample as sample_routes
from testkit.builders.households import json_object
from testkit.typing import MakeApp

pytestmark = [pytest.mark.settings(MAX_CONTENT_LENGTH=4096), pytest.mark.blueprints(sample_routes.bp)]


def assert_error(r: TestResponse, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.data
    assert r.mimetype == "application/json"
    body = json_object(r)
    assert body["error"] == error
    assert body["correlationId"] == r.headers["X-Request-ID"]
    assert body["timestamp"].endswith("Z") and body["message"]
    return body


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "NotFound")
    assert_error(client.get("/not-api"), 404, "NotFound")


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    r = client.delete("/api/sample/echo")
    assert_error(r, 405, "MethodNotAllowed")
    assert "POST" in r.headers["Allow"]


def test_body_too_large_is_413(client: FlaskClient) -> None:
    r = client.post("/api/sample/echo", data=b'{"name":"' + b"a" * 5000 + b'"}',
                    content_type="application/json")
    assert_error(r, 413, "PayloadTooLarge")


@pytest.mark.parametrize(
    "data",
    [b"{", b'{"name": }', b"[" * 100000, b"[" * 33 + b"]" * 33, b'{"a":' * 40 + b"1" + b"}" * 40,
     b"\xff\xfe{}", b'{"name": "\xc3\x28"}', b"NaN?"],
)
def test_malformed_json_is_400_never_500(client: FlaskClient, make_app: MakeApp, data: bytes) -> None:
    client = make_app().test_client()
    client.application.register_blueprint(sample_routes.bp)
    r = client.post("/api/sample/echo", data=data, content_type="application/json")
    assert_error(r, 400, "BadRequest")


def test_deep_nesting_inside_strings_is_fine(client: FlaskClient) -> None:
    r = client.post("/api/sample/echo", json={"name": "[" * 40, "amountMinor": 1})
    assert r.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_415(client: FlaskClient, content_type: str) -> None:
    r = client.post("/api/sample/echo", data=b'{"name":"a","amountMinor":1}', content_type=content_type)
    assert_error(r, 415, "UnsupportedMediaType")


def test_missing_body_is_400(client: FlaskClient) -> None:
    assert_error(client.post("/api/sample/echo"), 400, "BadRequest")


def test_request_id_is_echoed_when_sane_and_replaced_when_not(client: FlaskClient) -> None:
    r = client.get("/api/nothing", headers={"X-Request-ID": "client-req-0001"})
    assert r.headers["X-Request-ID"] == "client-req-0001"
    assert json_object(r)["correlationId"] == "client-req-0001"
    r = client.get("/api/nothing", headers={"X-Request-ID": "bad id <script>" + "x" * 200})
    assert r.headers["X-Request-ID"].startswith("cor_")


def test_debugger_is_never_reachable(make_app: MakeApp) -> None:
    app = make_app(DEBUG=True)
    app.register_blueprint(sample_routes.bp)
    r = app.test_client().get("/api/sample/boom")
    assert r.status_code == 500 and b"Traceback" not in r.data and b"Werkzeug Debugger" not in r.data


@pytest.mark.parametrize("rolled_back", ["DeadlockDetected", "SerializationFailure"])
def test_a_transaction_the_database_rolled_back_is_a_conflict_not_an_outage(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture, rolled_back: str
) -> None:
    """A deadlock victim or a serialization failure lost to a concurrent write: 409 like any
    other loser (API.md: concurrent writes never give a 5xx), logged as what it is, without the
    statement's parameters; the database is up."""
    import psycopg.errors
    from flask import Blueprint
    from sqlalchemy.exc import OperationalError

    from app.gateway.contracts import endpoint

    bp = Blueprint("rolled_back", __name__, url_prefix="/api/rolled-back")

    @bp.post("")
    @endpoint(auth="public", status=204)
    def fail() -> None:
        error = getattr(psycopg.errors, rolled_back)("the database rolled this back")
        raise OperationalError("UPDATE t SET v = %(v)s", {"v": "parameter-value"}, error)

    app = make_app()
    app.register_blueprint(bp)
    r = app.test_client().post("/api/rolled-back")
    assert_error(r, 409, "Conflict")
    assert "database unavailable" not in caplog.text
    assert "rolled back by the database" in caplog.text
    assert "parameter-value" not in caplog.text
