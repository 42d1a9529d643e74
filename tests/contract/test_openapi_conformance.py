"""Regressions for what schemathesis found: each test fails on the code before its fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.gateway.openapi import trimmed_pattern
from testkit.builders.households import AuthActions, json_object, make_household, snapshot


def _document(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/openapi.json").get_json()
    return document


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_an_integral_float_is_an_integer(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    # JSON Schema's integer includes 5000.0; the strict int field refused it (400).
    owner = auth.user("owner@example.com")
    household = make_household(app, "Home", {owner.id: "owner"})
    created = client.post(
        f"/api/households/{household}/requests", headers=auth.headers(owner),
        json={"title": "Boots", "amountMinor": 5000.0, "currency": "EUR"},
    )
    assert created.status_code == 201, created.get_json()
    assert json_object(created)["amountMinor"] == 5000


def test_a_fractional_amount_is_still_refused(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = auth.user("owner@example.com")
    household = make_household(app, "Home", {owner.id: "owner"})
    before = snapshot(app)
    refused = client.post(
        f"/api/households/{household}/requests", headers=auth.headers(owner),
        json={"title": "Boots", "amountMinor": 5000.5, "currency": "EUR"},
    )
    assert refused.status_code == 400
    assert json_object(refused)["details"][0]["field"] == "amountMinor"
    assert snapshot(app) == before


def test_login_body_states_its_two_ways(client: FlaskClient) -> None:
    login = _schema(_document(client), "LoginIn-Input")
    required = sorted(tuple(branch["required"]) for branch in login["oneOf"])
    assert required == [("email", "password"), ("idToken",)]


def test_a_disabled_login_method_is_forbidden_not_malformed(app: Flask, client: FlaskClient) -> None:
    # Local accounts are off by default: a well-formed body is refused (403), never a 400.
    before = snapshot(app)
    refused = client.post("/api/auth/login", json={"email": "a@b.example", "password": "pw"})
    assert refused.status_code == 403
    assert json_object(refused)["error"] == "Forbidden"
    assert "403" in _document(client)["paths"]["/api/auth/login"]["post"]["responses"]
    assert snapshot(app) == before


def test_webhook_headers_are_documented(client: FlaskClient) -> None:
    operation = _document(client)["paths"]["/api/webhooks/hyperbeam"]["post"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["webhook-id"]["required"] is True
    assert headers["webhook-id"]["schema"]["maxLength"] == 255
    assert {"webhook-timestamp", "webhook-signature"} <= set(headers)


def test_request_url_is_documented_as_http(client: FlaskClient) -> None:
    url = _schema(_document(client), "RequestIn-Input")["properties"]["url"]
    assert url["pattern"] == "^[Hh][Tt][Tt][Pp][Ss]?://"


def test_body_string_lengths_count_the_trimmed_value(client: FlaskClient) -> None:
    # Bodies strip whitespace (U+0085 included) before checking lengths: the spec says so by a
    # pattern over the trimmed value instead of minLength/maxLength over the raw one.
    name = _schema(_document(client), "HouseholdIn-Input")["properties"]["name"]
    assert "minLength" not in name and "maxLength" not in name
    assert name["pattern"] == trimmed_pattern(1, 200)
    out = _schema(_document(client), "HouseholdOut-Output")["properties"]["name"]
    assert "pattern" not in out


@pytest.mark.parametrize("name", [
    " " + "a" * 200 + " ", "a" * 201, "\u0085ab\u0085", " ", "\ufeffab", "\u1680" + "b" * 200,
    "\ufeff" + "b" * 200, "a\x00", "\u3000",
])
def test_the_documented_pattern_and_the_server_agree(
    app: Flask, client: FlaskClient, auth: AuthActions, name: str
) -> None:
    pattern = _schema(_document(client), "HouseholdIn-Input")["properties"]["name"]["pattern"]
    owner = auth.user("owner@example.com")
    created = client.post("/api/households", headers=auth.headers(owner), json={"name": name})
    assert (created.status_code == 201) == bool(re.match(pattern, name)), created.get_json()


def test_blank_names_are_refused(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = auth.user("owner@example.com")
    before = snapshot(app)
    for blank in (" ", "\u0085", "\t\u00a0"):
        refused = client.post("/api/households", headers=auth.headers(owner), json={"name": blank})
        assert refused.status_code == 400, blank
    assert snapshot(app) == before


def test_member_email_refuses_control_characters(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = auth.user("owner@example.com")
    household = make_household(app, "Home", {owner.id: "owner"})
    before = snapshot(app)
    refused = client.post(
        f"/api/households/{household}/members", headers=auth.headers(owner),
        json={"email": "a\u001f@b.example", "role": "adult"},
    )
    assert refused.status_code == 400
    assert snapshot(app) == before


def test_cursor_is_documented_as_opaque_and_a_forged_one_is_400(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = auth.user("owner@example.com")
    parameters = _document(client)["paths"]["/api/households"]["get"]["parameters"]
    cursor = next(p for p in parameters if p["name"] == "cursor")
    assert "Opaque" in cursor["schema"]["description"]
    forged = client.get("/api/households?cursor=x-household-roles", headers=auth.headers(owner))
    assert forged.status_code == 400
    assert set(forged.get_json()) >= {"error", "message", "correlationId", "timestamp"}


def test_nul_is_refused_everywhere_not_a_server_error(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    # On PostgreSQL a NUL in a text value was a 500 (a text column cannot hold it).
    owner = auth.user("owner@example.com")
    household = make_household(app, "Home", {owner.id: "owner"})
    headers = auth.headers(owner)
    before = snapshot(app)
    body = client.post(f"/api/households/{household}/items", headers=headers, json={"name": "a\x00"})
    assert body.status_code == 400
    assert "NUL" in json_object(body)["details"][0]["message"]
    listed = client.get(f"/api/households/{household}/items?category=%00", headers=headers)
    assert listed.status_code == 400
    path = client.get("/api/households/hh_%00", headers=headers)
    assert path.status_code == 404
    assert json_object(path)["error"] == "NotFound"
    assert snapshot(app) == before


def test_the_spec_says_input_strings_hold_no_nul(client: FlaskClient) -> None:
    document = _document(client)
    notes = _schema(document, "ItemIn-Input")["properties"]["notes"]
    assert {"type": "string", "pattern": trimmed_pattern(0, 2000)} in notes["anyOf"]
    assert "[^\\x00]" in trimmed_pattern(0, 2000)
    parameters = document["paths"]["/api/households/{householdId}/items"]["get"]["parameters"]
    category = next(p for p in parameters if p["name"] == "category")
    assert any(s.get("pattern") == "^[^\\x00]*$" for s in category["schema"]["anyOf"])
