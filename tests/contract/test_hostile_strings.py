"""Strings that cannot be stored and served again (lone surrogates, NUL), numbers that JSON does not
have, and forged cursors: refused with 400 in one place of the request path, before anything is
stored; and a row that already holds such a string is still served (U+FFFD in its place).

The property-based sweep over every operation is tests/contract/test_hostile_sweep.py.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.models import IntentEvent, WebhookEvent
from testkit.builders.families import INTERNAL_CONFIG, ORCHESTRATOR_TOKEN, Family
from testkit.builders.households import json_object, snapshot
from testkit.builders.webhooks import SECRET, signed

EVENTS = "/api/internal/events"
WEBHOOK = "/api/webhooks/hyperbeam"
INTERNAL = {"X-Internal-Token": ORCHESTRATOR_TOKEN, "Content-Type": "application/json"}

# Raw JSON texts of free-form ``data`` objects that hold an unstorable string somewhere.
UNSTORABLE_DATA = {
    "lone high surrogate": '{"k": "\\ud800"}',
    "lone low surrogate": '{"k": "a\\udfffb"}',
    "reversed pair": '{"k": "\\ude00\\ud83d"}',
    "NUL": '{"k": "a\\u0000b"}',
    "in a key": '{"\\ud800": 1}',
    "NUL in a key": '{"a\\u0000": 1}',
    "nested in a list": '{"k": [1, {"deep": ["ok", "\\udbff"]}]}',
}
# Not JSON (Python's extensions) or beyond any float: refused as malformed.
NON_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


pytestmark = pytest.mark.settings(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET],
                                  HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True, **INTERNAL_CONFIG)


def purchasing(family: Family) -> tuple[str, str]:
    request_id = family.approved()
    return request_id, family.intent(request_id)["intentId"]


def intent_view(family: Family, request_id: str, intent_id: str) -> TestResponse:
    return family.get(family.owner, f"/{request_id}/purchase-intents/{intent_id}")


def assert_validation_error(response: TestResponse, field: str | None = None) -> None:
    assert response.status_code == 400, response.get_data()
    body = json_object(response)
    assert body["error"] == "ValidationError", body
    if field is not None:
        assert [d["field"] for d in body["details"]] == [field], body


@pytest.mark.parametrize("data", list(UNSTORABLE_DATA.values()), ids=list(UNSTORABLE_DATA))
def test_an_internal_event_with_an_unstorable_string_is_400_and_reads_still_work(
    family: Family, data: str
) -> None:
    request_id, intent_id = purchasing(family)
    before = snapshot(family.app)
    raw = f'{{"intentId": "{intent_id}", "type": "page.loaded", "data": {data}}}'
    r = family.client.post(EVENTS, data=raw, headers=INTERNAL)
    assert_validation_error(r)
    assert json_object(r)["details"][0]["field"].startswith("data")
    assert snapshot(family.app) == before
    view = intent_view(family, request_id, intent_id)
    assert view.status_code == 200 and json_object(view)["events"] == []


@pytest.mark.parametrize("data", list(UNSTORABLE_DATA.values()), ids=list(UNSTORABLE_DATA))
def test_a_signed_webhook_with_an_unstorable_string_is_400_and_stores_nothing(
    family: Family, data: str
) -> None:
    request_id, intent_id = purchasing(family)
    before = snapshot(family.app)
    raw = f'{{"type": "session.started", "intentId": "{intent_id}", "data": {data}}}'.encode()
    r = family.client.post(WEBHOOK, data=raw, headers=signed(raw))
    assert_validation_error(r)
    assert snapshot(family.app) == before
    assert intent_view(family, request_id, intent_id).status_code == 200


def test_an_unsigned_webhook_with_an_unstorable_string_is_401_first(family: Family) -> None:
    """The signature is checked on the raw bytes before anything parses them."""
    before = snapshot(family.app)
    raw = b'{"type": "x", "data": {"k": "\\ud800"}}'
    headers = {**signed(raw), "webhook-signature": "v1,AAAA"}
    r = family.client.post(WEBHOOK, data=raw, headers=headers)
    assert r.status_code == 401
    assert snapshot(family.app) == before


@pytest.mark.parametrize("token", NON_JSON_NUMBERS)
def test_numbers_that_json_does_not_have_are_400_in_free_form_objects(
    family: Family, token: str
) -> None:
    request_id, intent_id = purchasing(family)
    before = snapshot(family.app)
    raw = f'{{"intentId": "{intent_id}", "type": "x", "data": {{"n": {token}}}}}'
    r = family.client.post(EVENTS, data=raw, headers=INTERNAL)
    assert r.status_code == 400 and json_object(r)["error"] == "BadRequest", r.get_data()
    assert snapshot(family.app) == before
    signed_raw = f'{{"type": "x", "intentId": "{intent_id}", "data": {{"n": {token}}}}}'.encode()
    r = family.client.post(WEBHOOK, data=signed_raw, headers=signed(signed_raw))
    assert r.status_code == 400 and json_object(r)["error"] == "BadRequest", r.get_data()
    assert snapshot(family.app) == before
    assert intent_view(family, request_id, intent_id).status_code == 200


@pytest.mark.parametrize("value", ["\\ud800", "a\\u0000"])
def test_typed_body_fields_and_unknown_keys_are_checked_too(family: Family, value: str) -> None:
    before = snapshot(family.app)
    headers = {**family.headers(family.owner), "Content-Type": "application/json"}
    r = family.client.post("/api/households", data=f'{{"name": "{value}"}}', headers=headers)
    assert_validation_error(r, "name")
    # An unknown field is dropped, but it is still part of the body that was sent.
    r = family.client.post("/api/households", data=f'{{"name": "Home", "x{value}": 1}}',
                           headers=headers)
    assert_validation_error(r, "(name)")
    assert snapshot(family.app) == before


@pytest.mark.parametrize("query", [
    "limit=1%00", "status=%00", "unknown=a%00b", "a%00=1", "cursor=%00",
])
def test_nul_in_any_query_parameter_is_400(family: Family, query: str) -> None:
    r = family.client.get(family.url(f"?{query}"), headers=family.headers(family.owner))
    assert_validation_error(r)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


FORGED_CURSORS = {
    "lone surrogate id": _b64('["2026-01-01T00:00:00","\\ud800"]'),
    "NUL id": _b64('["2026-01-01T00:00:00","a\\u0000"]'),
    "number id": _b64('["2026-01-01T00:00:00",123]'),
    "huge number id": _b64('["2026-01-01T00:00:00",1e400]'),
    "NaN id": _b64('["2026-01-01T00:00:00",NaN]'),
    "time zone": _b64('["9999-12-31T23:59:59+14:00","x"]'),
    "date only": _b64('["2026-01-01","x"]'),
    "spaces": _b64('["2026-01-01T00:00:00", "x"]'),
    "three values": _b64('["2026-01-01T00:00:00","x",1]'),
    "object": _b64('{"a":1}'),
    "raw surrogate bytes": _b64('["2026-01-01T00:00:00","\ud800"]'),
    "not base64": "%%%",
    "padding": _b64('["2026-01-01T00:00:00","x"]') + "==",
}
FORGED_SEQ_CURSORS = {
    "beyond BIGINT": _b64("audit:99999999999999999999"),
    "BIGINT + 1": _b64(f"audit:{2**63}"),
    "zero": _b64("audit:0"),
    "negative": _b64("audit:-1"),
    "plus sign": _b64("audit:+5"),
    "leading zero": _b64("audit:05"),
    "other digits": _b64("audit:\u0663"),
    "underscore": _b64("audit:1_0"),
    "space": _b64("audit: 5"),
    "NUL": _b64("audit:5\x00"),
    "lone surrogate": _b64("audit:\ud800"),
    "no prefix": _b64("5"),
}
LISTS = ["/api/households", "{household}/members", "{household}/items", "{household}/outfits",
         "{household}/requests", "{household}/audit"]


@pytest.mark.parametrize("cursor", [*FORGED_CURSORS.values(), *FORGED_SEQ_CURSORS.values()],
                         ids=[*FORGED_CURSORS, *(f"seq {k}" for k in FORGED_SEQ_CURSORS)])
def test_forged_cursors_are_400_on_every_list(family: Family, cursor: str) -> None:
    household = f"/api/households/{family.household_id}"
    for path in LISTS:
        r = family.client.get(path.format(household=household), query_string={"cursor": cursor},
                              headers=family.headers(family.owner))
        assert_validation_error(r, "cursor")


def test_issued_cursors_still_page_through_every_list(family: Family) -> None:
    """The strict decoding accepts exactly what the lists issue."""
    household = f"/api/households/{family.household_id}"
    for n in range(3):
        family.submit()
        item = family.add_item()
        r = family.client.post(f"{household}/outfits", json={"name": f"O{n}", "itemIds": [item]},
                               headers=family.headers(family.owner))
        assert r.status_code == 201, r.get_json()
    for path in LISTS:
        url, seen, cursor = path.format(household=household), [], None
        for _ in range(20):
            query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            r = family.client.get(url, query_string=query, headers=family.headers(family.owner))
            assert r.status_code == 200, (url, r.get_json())
            page = json_object(r)
            seen += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        whole = json_object(family.client.get(url, query_string={"limit": 100},
                                              headers=family.headers(family.owner)))["items"]
        assert seen == whole and len(whole) >= 1, url


def test_a_stored_lone_surrogate_is_served_as_the_replacement_character(family: Family) -> None:
    """Rows written before input was checked: the read serves U+FFFD instead of failing."""
    request_id, intent_id = purchasing(family)
    with SESSIONS.get(family.app)() as session:
        session.add(IntentEvent(household_id=family.household_id, intent_id=intent_id,
                                type="page.loaded", data={"k\ud800": ["a\udfffb", {"n": 1}]}))
        session.commit()
    r = intent_view(family, request_id, intent_id)
    assert r.status_code == 200, r.get_data()
    assert r.content_type == "application/json"
    [event] = json_object(r)["events"]
    [(key, value)] = event["data"].items()
    assert value == ["a\ufffdb", {"n": 1}]
    assert key[0] == "k" and set(key[1:]) == {"\ufffd"}  # keys: one U+FFFD per byte
    r.get_data().decode("utf-8")  # strict UTF-8 on the wire


HARMLESS = ["\u202eevil\u202c", "a\u200bb\u200dc\ufeff", "\u0430dmin", "\U0001f600 \\ud83d\\ude00",
            "\u00e9 e\u0301", "\u2028x\u2029", "\\u0001\\u007f\\u009f"]


@pytest.mark.parametrize("value", HARMLESS)
def test_valid_but_unusual_strings_are_stored_and_read_back_intact(
    family: Family, value: str
) -> None:
    """Bidi controls, zero-width characters, confusables, surrogate pairs (escaped and raw),
    combining marks, line separators and other control characters are valid Unicode: kept
    (keys lose surrounding whitespace, as every string of a body does)."""
    expected = json.loads(f'"{value}"')
    request_id, intent_id = purchasing(family)
    raw = f'{{"intentId": "{intent_id}", "type": "x", "data": {{"{value}": "{value}"}}}}'
    assert family.client.post(EVENTS, data=raw.encode(), headers=INTERNAL).status_code == 202
    [event] = json_object(intent_view(family, request_id, intent_id))["events"]
    assert event["data"] == {expected.strip(): expected}
    with SESSIONS.get(family.app)() as session:
        [stored] = session.scalars(select(IntentEvent)).all()  # the model opens the sealed data
        assert stored.data == {expected.strip(): expected}
        assert session.scalars(select(WebhookEvent)).all() == []


@pytest.mark.parametrize("path", ["/api/households//items", "/api/households/x//items",
                                  "/api//households", "/api/households/x/requests/a%2F%2Fb"])
def test_an_empty_path_segment_is_a_json_404_not_an_html_redirect(family: Family, path: str) -> None:
    """werkzeug would answer "//" with a 308 (HTML) to the merged path, another resource."""
    r = family.client.get(path, headers=family.headers(family.owner))
    assert r.status_code == 404 and json_object(r)["error"] == "NotFound", r.get_data()[:80]
    assert "Location" not in r.headers


@pytest.mark.parametrize("space", ["\x85", "\ufeff", "\u00a0", "\u2028", " "])
def test_artifact_uris_with_whitespace_of_either_regex_dialect_are_400(
    family: Family, space: str
) -> None:
    """The OpenAPI pattern is read as ECMA-262 (its \\s has U+FEFF, lacks U+0085), the server's as
    Unicode White_Space: the pattern names both, so a client and the server agree on validity."""
    _, intent_id = purchasing(family)
    before = snapshot(family.app)
    body = {"intentId": intent_id, "kind": "receipt", "uri": f"s3://bucket/a{space}b",
            "sha256": "a" * 64}
    r = family.client.post("/api/internal/artifacts", json=body, headers=INTERNAL)
    assert_validation_error(r, "uri")
    assert snapshot(family.app) == before


def test_the_openapi_document_says_no_body_string_holds_nul(family: Family) -> None:
    """Unknown fields and free-form objects are ``JsonValue``: a client generating from the
    document (schemathesis among them) never calls a NUL-holding body valid."""
    schemas = json_object(family.client.get("/api/openapi.json"))["components"]["schemas"]
    nul_free = {"pattern": "^[^\\x00]*$"}
    json_value = {"$ref": "#/components/schemas/JsonValue"}
    branches = schemas["JsonValue"]["anyOf"]
    assert {"type": "string", **nul_free} in branches
    assert {"type": "object", "propertyNames": nul_free,
            "additionalProperties": json_value} in branches
    for name in ("EventIn-Input", "HyperbeamEventIn-Input", "HouseholdIn-Input"):
        schema = schemas[name]
        assert schema["propertyNames"] == nul_free and schema["additionalProperties"] == json_value
    data = schemas["EventIn-Input"]["properties"]["data"]
    assert data["propertyNames"] == nul_free
    assert all(v == json_value for v in data["patternProperties"].values())
