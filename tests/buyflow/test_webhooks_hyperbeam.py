"""Hyperbeam webhooks, signed by an independent implementation (PyPI ``standardwebhooks``)."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import select

from app.db import SESSIONS
from app.models import WebhookEvent
from app.plugins import PLUGINS
from testkit.builders.families import INTERNAL_CONFIG, Family, build_family
from testkit.builders.households import json_object, snapshot
from testkit.builders.webhooks import SECRET, event_body, signed
from testkit.typing import MakeApp

NEXT_SECRET = "whsec_" + base64.b64encode(b"hyperbeam-next-key-fedcba987654321").decode()
RAW_SECRET = "raw-hyperbeam-secret-0123456789abcdef"
URL = "/api/webhooks/hyperbeam"

pytestmark = pytest.mark.settings(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET],
                                  HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True, **INTERNAL_CONFIG)


def events(family: Family) -> list[WebhookEvent]:
    with SESSIONS.get(family.app)() as session:
        return list(session.scalars(select(WebhookEvent)))


def test_a_valid_event_is_stored_against_its_intent_and_shown(family: Family) -> None:
    request_id = family.approved()
    intent_id = family.intent(request_id)["intentId"]
    body = event_body(intent_id, secretField="dropped? no: unknown fields are dropped")
    r = family.client.post(URL, data=body, headers=signed(body))
    assert r.status_code == 200 and json_object(r)["duplicate"] is False
    [stored] = events(family)
    assert stored.webhook_id == "msg_1" and stored.intent_id == intent_id
    assert stored.household_id == family.household_id
    assert "secretField" not in stored.payload
    view = json_object(family.get(family.owner, f"/{request_id}/purchase-intents/{intent_id}"))
    assert [(e["source"], e["type"], e["data"]) for e in view["events"]] == [
        ("hyperbeam", "session.started", {"sessionId": "hb_1"})]


def test_an_unknown_intent_is_stored_unattached(family: Family) -> None:
    body = event_body()
    assert family.client.post(URL, data=body, headers=signed(body)).status_code == 200
    [stored] = events(family)
    assert stored.intent_id is None and stored.household_id is None


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_401(family: Family, missing: str) -> None:
    body = event_body()
    headers = signed(body)
    del headers[missing]
    before = snapshot(family.app)
    r = family.client.post(URL, data=body, headers=headers)
    assert r.status_code == 401
    assert snapshot(family.app) == before


@pytest.mark.parametrize("tamper", ["wrong_secret", "altered_byte", "other_id", "garbage",
                                    "other_version", "no_v1_prefix"])
def test_wrong_signatures_are_401(family: Family, tamper: str) -> None:
    body = event_body()
    headers = signed(body)
    if tamper == "wrong_secret":
        headers = signed(body, secret=NEXT_SECRET)
    elif tamper == "altered_byte":
        headers = signed(body)
        body = body.replace(b"session.started", b"session.startee")
    elif tamper == "other_id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "garbage":
        headers["webhook-signature"] = "v1,@@@notbase64"
    elif tamper == "other_version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    else:
        headers["webhook-signature"] = headers["webhook-signature"].removeprefix("v1,")
    before = snapshot(family.app)
    r = family.client.post(URL, data=body, headers=headers)
    assert r.status_code == 401 and json_object(r)["error"] == "Unauthorized"
    assert snapshot(family.app) == before


@pytest.mark.parametrize("offset", [-301, 301, -3600, 10**6])
def test_stale_and_future_timestamps_are_401(family: Family, offset: int) -> None:
    body = event_body()
    before = snapshot(family.app)
    r = family.client.post(URL, data=body, headers=signed(body, at=int(time.time()) + offset))
    assert r.status_code == 401
    assert snapshot(family.app) == before


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamps_within_five_minutes_pass(family: Family, offset: int) -> None:
    body = event_body()
    r = family.client.post(URL, data=body, headers=signed(body, at=int(time.time()) + offset))
    assert r.status_code == 200


def test_a_replayed_webhook_id_is_acknowledged_without_effect(family: Family) -> None:
    body = event_body()
    first = family.client.post(URL, data=body, headers=signed(body))
    before = snapshot(family.app)
    again = family.client.post(URL, data=body, headers=signed(body))
    assert again.status_code == 200 and json_object(again) == {"id": json_object(first)["id"],
                                                            "duplicate": True}
    other = event_body(type="session.ended")
    r = family.client.post(URL, data=other, headers=signed(other))  # same id, another body
    assert r.status_code == 200 and json_object(r)["duplicate"] is True
    assert snapshot(family.app) == before


def test_rotation_with_two_secrets(make_app: MakeApp) -> None:
    family = build_family(make_app(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET, NEXT_SECRET],
                                   HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True))
    body = event_body()
    assert family.client.post(URL, data=body, headers=signed(body, msg_id="a")).status_code == 200
    r = family.client.post(URL, data=body, headers=signed(body, NEXT_SECRET, msg_id="b"))
    assert r.status_code == 200
    # a sender mid-rotation signs with both: several signatures, space-separated
    both = signed(body, msg_id="c")
    both["webhook-signature"] += " " + signed(body, NEXT_SECRET, msg_id="c")["webhook-signature"]
    assert family.client.post(URL, data=body, headers=both).status_code == 200
    third = "whsec_" + base64.b64encode(b"retired-key-000000000000000000000").decode()
    assert family.client.post(URL, data=body,
                              headers=signed(body, third, msg_id="d")).status_code == 401
    assert len(events(family)) == 3


def test_raw_secrets_are_accepted(make_app: MakeApp) -> None:
    family = build_family(make_app(HYPERBEAM_EVENT_SIGNING_SECRET=[RAW_SECRET],
                                   HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True))
    body = event_body()
    r = family.client.post(URL, data=body, headers=signed(body, RAW_SECRET.encode()))
    assert r.status_code == 200


def test_verification_happens_before_parsing(family: Family) -> None:
    body = b'{"type": not json at all'
    headers = signed(body)
    headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    r = family.client.post(URL, data=body, headers=headers)
    assert r.status_code == 401  # not 400: nothing was parsed
    r = family.client.post(URL, data=body, headers=signed(body))
    assert r.status_code == 400  # authentic but malformed


def test_unenforced_accepts_unsigned_but_never_a_wrong_signature(make_app: MakeApp) -> None:
    family = build_family(make_app(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET]))
    body = event_body()
    r = family.client.post(URL, data=body, headers={"webhook-id": "u1",
                                                      "Content-Type": "application/json"})
    assert r.status_code == 200
    bad = signed(body, NEXT_SECRET, msg_id="u2")
    assert family.client.post(URL, data=body, headers=bad).status_code == 401
    assert len(events(family)) == 1


def test_enforced_without_secret_is_refused_in_production() -> None:
    from app.config import configuration_problems

    problems = configuration_problems({"HEARTHGATE_ENV": "production",
                                       "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": True})
    assert any("HYPERBEAM_EVENT_SIGNING_SECRET is unset" in p for p in problems)


def test_the_plugin_is_registered_through_the_hook(family: Family) -> None:
    from app.plugins import describe

    [info] = [i for i in describe(PLUGINS.get(family.app))
              if i.name == "plugins.hyperbeam"]
    assert info.hooks == ("startup_checks", "webhook_verifiers") and info.builtin


def test_a_malformed_secret_is_refused_at_start_and_does_not_block_good_ones(make_app: MakeApp) -> None:
    from app.config import ConfigurationRefused
    from testkit.config import production_config

    bad = "whsec_!!not-base64!!"
    with pytest.raises(ConfigurationRefused, match="HYPERBEAM_EVENT_SIGNING_SECRET"):
        make_app(**production_config(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET, bad]))
    # outside production the start is only warned about; deliveries signed with the good
    # secret still pass, and nothing else does
    family = build_family(make_app(HYPERBEAM_EVENT_SIGNING_SECRET=[SECRET, bad],
                                   HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True))
    body = event_body()
    assert family.client.post(URL, data=body, headers=signed(body, msg_id="g")).status_code == 200
    assert family.client.post(URL, data=body,
                              headers=signed(body, NEXT_SECRET, msg_id="h")).status_code == 401
    assert len(events(family)) == 1
