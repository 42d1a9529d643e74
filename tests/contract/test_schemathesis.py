"""schemathesis over the whole generated OpenAPI document, in-process (WSGI), with real tokens.

Every operation of ``/api/openapi.json`` is fuzzed in positive and negative modes with every
check schemathesis has (server errors, status codes, content types, response schemas and
headers, positive-data acceptance, negative-data rejection, ignored auth, ...). Bearer routes get
a genuine access token of a household owner; internal routes the configured internal tokens.
Path identifiers are drawn either by schemathesis (unknown ids: the 404 paths) or from a real
"world" (a household with a second member, an item, an outfit, a submitted and an approved
request with a purchase intent), built through the API itself, so that household-scoped
operations reach their handlers. A case that may have changed the world gets a fresh one.

Bounded (``MAX_EXAMPLES`` per operation) and deterministic (derandomized); the number of
generated cases is printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckFunction, GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from testkit.builders.households import AuthActions
from testkit.builders.world import (
    PLACEHOLDER,
    World,
    build_schema_app,
    drop_invented_cursor,
    headers_for,
    load_schema,
    print_report,
)

MAX_EXAMPLES = 30

WORLD_PARAMETERS = ("householdId", "itemId", "outfitId", "requestId", "intentId", "userId")

GENERATED: dict[str, int] = {}
STATUSES: dict[str, int] = {}
NOT_NEGATABLE: list[str] = []


@pytest.fixture
def schema_app(make_app: Any) -> Flask:
    return build_schema_app(make_app)


@pytest.fixture
def world(schema_app: Flask) -> World:
    auth = AuthActions(schema_app)
    owner = auth.user("owner@schema.example")
    adult = auth.user("adult@schema.example")
    assert adult.email is not None
    built = World(
        client=schema_app.test_client(), owner=auth.headers(owner), adult=auth.headers(adult),
        adult_email=adult.email,
    )
    return built


@pytest.fixture
def api_schema(schema_app: Flask, world: World) -> Any:
    schema = load_schema(schema_app, MAX_EXAMPLES)

    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        # Either the generated id (unknown: 404) or a real one of the world, for each parameter.
        names = [name for name in path_parameters or {} if name in WORLD_PARAMETERS]
        if not names:
            return st.just(path_parameters)
        choices = st.fixed_dictionaries(
            {name: st.sampled_from([PLACEHOLDER, path_parameters[name]]) for name in names}
        )
        return choices.map(lambda picked: {**path_parameters, **picked})

    schema.hook(flatmap_path_parameters)
    return schema


@pytest.fixture(scope="module", autouse=True)
def report_generated(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    lines = [
        "schemathesis generated cases: " + ", ".join(f"{k}={v}" for k, v in sorted(GENERATED.items()))
        + f", total={sum(GENERATED.values())}",
        "schemathesis responses: " + ", ".join(f"{k}={v}" for k, v in sorted(STATUSES.items())),
        "schemathesis operations with nothing to negate: " + ", ".join(NOT_NEGATABLE),
    ]
    print_report(request, lines)


def unusable_address(case: Case[Any]) -> bool:
    """An invitation whose address the schema allows and the server refuses, as documented (422,
    field ``email``): its domain fails IDNA's rules or mixes scripts, which no JSON Schema
    pattern states. Every other check still applies to the answer."""
    from app.auth.emails import InvalidEmail, canonical_email

    body = case.body
    if case.method.upper() != "POST" or not case.path.endswith("/members"):
        return False
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str):
        return False
    try:
        canonical_email(email)
    except InvalidEmail:
        return True
    return False


def _exercise(operation: Any, mode: GenerationMode, world: World) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Case[Any]) -> None:
        world.resolve(case)
        drop_invented_cursor(case, mode)
        GENERATED[mode.value] = GENERATED.get(mode.value, 0) + 1
        excluded: list[CheckFunction] = [positive_data_acceptance] if unusable_address(case) else []
        response = case.call_and_validate(headers=headers_for(case, world.owner),
                                          excluded_checks=excluded)
        key = f"{response.status_code // 100}xx"
        STATUSES[key] = STATUSES.get(key, 0) + 1

    try:
        run()
    except Unsatisfiable:
        # Nothing to negate: no body, no query, only free-form string path ids (any string is a
        # valid id; an unknown one is the 404 the positive cases already cover).
        if mode is not GenerationMode.NEGATIVE:
            raise
        NOT_NEGATABLE.append(operation.label)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_conforms(api_schema: Any, world: World, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        try:
            _exercise(operation, mode, world)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one report for all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
