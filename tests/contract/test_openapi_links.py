"""The OpenAPI links the stateful schemathesis run walks: every creating operation declares them,
and every link names an operation and parameters that exist."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from openapi_spec_validator import validate

# Creating operations (201) with nothing addressable by the id they return.
NOTHING_TO_FOLLOW = {"internal_artifact_post", "voice_public_session_post"}

EXPECTED = {
    "households_create_household_post": {
        "households_get_household_get", "households_rename_household_patch",
        "households_delete_household_delete", "households_invite_post",
        "households_create_item_post", "households_create_outfit_post",
        "buyflow_create_request_post",
    },
    "households_create_item_post": {
        "households_get_item_get", "households_update_item_patch", "households_delete_item_delete",
    },
    "households_create_outfit_post": {
        "households_get_outfit_get", "households_update_outfit_patch",
        "households_delete_outfit_delete",
    },
    # An invitation, not yet a member: it is followed into the invitation's own operations.
    "households_invite_post": {
        "households_revoke_invitation_delete", "households_accept_invitation_post",
        "households_decline_invitation_post",
    },
    "buyflow_create_request_post": {
        "buyflow_get_request_get", "buyflow_approve_request_post", "buyflow_reject_request_post",
        "buyflow_cancel_request_post", "buyflow_create_intent_post",
    },
    "buyflow_create_intent_post": {"buyflow_get_intent_get"},
}


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        op["operationId"]: (path, op)
        for path, item in document["paths"].items()
        for op in item.values()
    }


def _links(operation: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for response in operation["responses"].values():
        found.update(response.get("links", {}))
    return found


def test_every_creating_operation_declares_its_links(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    validate(document)
    operations = _operations(document)
    creating = {
        op_id for op_id, (_, op) in operations.items()
        if any(code == "201" for code in op["responses"])
    }
    assert creating == set(EXPECTED) | NOTHING_TO_FOLLOW, "a new creating operation: link it"
    for op_id in creating - NOTHING_TO_FOLLOW:
        links = operations[op_id][1]["responses"]["201"].get("links", {})
        targets = {link["operationId"] for link in links.values()}
        assert EXPECTED[op_id] <= targets, (op_id, EXPECTED[op_id] - targets)
    for op_id in NOTHING_TO_FOLLOW:
        assert not _links(operations[op_id][1]), op_id


def test_created_ids_are_read_from_the_response_body(client: FlaskClient) -> None:
    operations = _operations(client.get("/api/openapi.json").get_json())
    created = {
        op_id: {
            expression for link in _links(op).values() for expression in link["parameters"].values()
            if expression.startswith("$response.")
        }
        for op_id, (_, op) in operations.items() if op_id in EXPECTED
    }
    assert created == {
        "households_create_household_post": {"$response.body#/id"},
        "households_create_item_post": {"$response.body#/id"},
        "households_create_outfit_post": {"$response.body#/id"},
        "households_invite_post": {"$response.body#/id"},
        "buyflow_create_request_post": {"$response.body#/id"},
        "buyflow_create_intent_post": {"$response.body#/intentId"},
    }


def test_every_link_names_a_real_operation_and_its_parameters(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    operations = _operations(document)
    schemas = document["components"]["schemas"]
    count = 0
    for op_id, (_path, operation) in operations.items():
        for code, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                count += 1
                assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
                target_path, target = operations[link["operationId"]]
                target_parameters = {
                    (p["in"], p["name"]) for p in target.get("parameters", [])
                }
                source_parameters = {
                    (p["in"], p["name"]) for p in operation.get("parameters", [])
                }
                required = {
                    ("path", n) for n in re.findall(r"\{([^}]+)\}", target_path)
                }
                named = {tuple(key.split(".", 1)) for key in link["parameters"]}
                assert named <= target_parameters, (op_id, name, named - target_parameters)
                assert required <= named, (op_id, name, "leaves a path parameter unset")
                for expression in link["parameters"].values():
                    if expression.startswith("$request.path."):
                        source = ("path", expression.removeprefix("$request.path."))
                        assert source in source_parameters, (op_id, name, expression)
                    else:
                        field = expression.removeprefix("$response.body#/")
                        ref = response["content"]["application/json"]["schema"]["$ref"]
                        properties = schemas[ref.rsplit("/", 1)[1]]["properties"]
                        assert field in properties, (op_id, code, name, field)
                        assert field in schemas[ref.rsplit("/", 1)[1]].get("required", []), field
    assert count > 30
