"""Stateful schemathesis: sequences of calls chained by the OpenAPI links of /api/openapi.json.

``schema.as_state_machine()`` builds one rule per declared link (openapi.py derives them: a
creating operation's new id is followed into every operation that names it) plus root rules for
the creating operations. Each scenario starts from nothing and runs up to ``STEPS`` calls, in
positive and negative modes, with every check schemathesis has (those of the stateless run plus
the stateful ones: use after free, resource availability). Bearer routes get a genuine token of
the user who creates the households (so their owner); internal routes the configured internal
tokens (testkit/builders/world.py, shared with test_schemathesis.py).

Only the declared links drive the run: schemathesis's own link inference is switched off, so a
link dropped from the document shows here as linked calls that no longer happen. Owners may
approve their own requests (BUYFLOW_ALLOW_OWNER_SELF_APPROVAL): with one caller, that is the
only way along request → approve → purchase intent → intent; the refusal itself is covered by
the buy-flow tests and by the stateless run.

Bounded (``SCENARIOS`` × ``STEPS``) and deterministic (derandomized); the number of scenarios
and calls, the linked calls and the statuses are printed at the end of the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import ensure_resource_availability

from testkit.builders.households import AuthActions
from testkit.builders.world import (
    build_schema_app,
    drop_invented_cursor,
    headers_for,
    load_schema,
    print_report,
)

SCENARIOS = 80
STEPS = 25
CREATED_ID_FIELDS = ("id", "intentId", "userId")


@dataclass
class Tally:
    """What the run did: calls, statuses, and the calls that used an id made earlier on."""

    scenarios: int = 0
    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    linked: int = 0
    linked_ok: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)

    def lines(self, elapsed: float) -> list[str]:
        reached = ", ".join(f"{label}={n}" for label, n in sorted(self.linked_ok.items()))
        return [
            f"schemathesis stateful: scenarios={self.scenarios}, calls={self.calls} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(self.modes.items()))}), "
            f"{elapsed:.1f} s",
            "schemathesis stateful responses: "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())),
            f"schemathesis stateful linked calls (an id created earlier in the scenario): "
            f"{self.linked}, 2xx={sum(self.linked_ok.values())}",
            f"schemathesis stateful linked 2xx by operation: {reached}",
            "schemathesis stateful statuses by operation: "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.by_status.items())),
        ]


def _mode(case: Case[Any]) -> GenerationMode:
    return case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE


@dataclass
class People:
    """Who the calls are made as, and the one other user an owner may add."""

    owner_id: str
    bearer: dict[str, str]
    other_email: str


@dataclass
class Scenario:
    """What one scenario created: every id, items by household, intents by request."""

    ids: set[str] = field(default_factory=set)
    items: dict[str, list[str]] = field(default_factory=dict)
    intents: dict[str, dict[str, str]] = field(default_factory=dict)

    def learn(self, case: Case[Any], body: Any) -> None:
        if not isinstance(body, dict):
            return
        self.ids.update(str(body[k]) for k in CREATED_ID_FIELDS if k in body)
        path = case.path_parameters or {}
        if case.path.endswith("/items"):
            self.items.setdefault(path["householdId"], []).append(body["id"])
        elif case.path.endswith("/purchase-intents"):
            self.intents[path["requestId"]] = body

    def resolve(self, case: Case[Any], people: People) -> None:
        """Body references to rows of this scenario, as a client would send them. Positive cases
        only, and only swapping a valid value for another valid one: a case stays what it was
        generated as. The references that stay unknown are dangling (below)."""
        body, path = case.body, case.path_parameters or {}
        if _mode(case) is not GenerationMode.POSITIVE or not isinstance(body, dict):
            return
        items = self.items.get(path.get("householdId", ""), [])
        if isinstance(body.get("itemId"), str) and items:
            body["itemId"] = items[-1]
        item_ids = body.get("itemIds")
        if isinstance(item_ids, list):
            body["itemIds"] = list(items[: len(item_ids)])
        if case.path.endswith("/members") and "email" in body:
            body["email"] = people.other_email
        if "actorUserId" in body:
            body["actorUserId"] = people.owner_id
        intent = self.intents.get(path.get("requestId", ""))
        if case.path.endswith("/confirm-checkout") and intent is not None:
            body["intentId"] = intent["intentId"]
            body["confirmationToken"] = intent["confirmationToken"]

    def refers_elsewhere(self, case: Case[Any]) -> bool:
        """Whether the body names other rows (an item, an intent, a member's email): one that
        was never created, or was created and deleted earlier in the scenario, is a 404 by
        API.md, which "created resource not found" would take for the path's resource
        vanishing. The stateless run and the buy-flow tests cover those 404s."""
        body = case.body
        if not isinstance(body, dict):
            return False
        named = [body.get("itemId"), body.get("intentId")]
        item_ids = body.get("itemIds")
        if isinstance(item_ids, list):
            named.extend(item_ids)
        return any(value is not None for value in named) or (
            case.path.endswith("/members") and "email" in body
        )


def workflow(schema: Any, people: People, tally: Tally) -> Any:
    """The links' state machine, calling with genuine credentials and counting what it does."""
    base: Any = schema.as_state_machine()

    class Workflow(base):  # type: ignore[misc]  # schemathesis builds the base class at run time
        scenario: Scenario

        def setup(self) -> None:
            self.scenario = Scenario()
            tally.scenarios += 1

        def before_call(self, case: Case[Any]) -> None:
            drop_invented_cursor(case, _mode(case))
            self.scenario.resolve(case, people)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"headers": headers_for(case, people.bearer)}

        def validate_response(
            self, response: Any, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            # As case.call_and_validate does: the checks learn which headers the test sent, so
            # that "ignored auth" probes without them (and with forged ones) instead of taking
            # the genuine token for a generated one.
            excluded = []
            if response.status_code == 404 and self.scenario.refers_elsewhere(case):
                excluded.append(ensure_resource_availability)
            case.validate_response(
                response, additional_checks=additional_checks, excluded_checks=excluded,
                headers=kwargs.get("headers"), transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def after_call(self, response: Any, case: Case[Any]) -> None:
            super().after_call(response, case)  # the recorder the stateful checks read
            tally.calls += 1
            tally.modes[_mode(case).value] += 1
            tally.statuses[f"{response.status_code // 100}xx"] += 1
            tally.by_status[f"{case.operation.label} {response.status_code}"] += 1
            if {str(v) for v in (case.path_parameters or {}).values()} & self.scenario.ids:
                tally.linked += 1
                if 200 <= response.status_code < 300:
                    tally.linked_ok[case.operation.label] += 1
            if response.status_code == 201:
                self.scenario.learn(case, response.json())

    return Workflow


@pytest.fixture
def schema_app(make_app: Callable[..., Flask]) -> Flask:
    return build_schema_app(make_app, BUYFLOW_ALLOW_OWNER_SELF_APPROVAL=True)


def test_linked_sequences_conform(schema_app: Flask, request: pytest.FixtureRequest) -> None:
    auth = AuthActions(schema_app)
    owner = auth.user("owner@stateful.example")
    other = auth.user("adult@stateful.example")
    assert other.email is not None
    people = People(owner_id=owner.id, bearer=auth.headers(owner), other_email=other.email)
    schema = load_schema(schema_app, SCENARIOS)
    schema.config.phases.stateful.inference.algorithms = []  # the declared links only
    tally = Tally()
    machine = workflow(schema, people, tally)
    started = time.monotonic()
    try:
        machine.run(
            settings=settings(
                max_examples=SCENARIOS, stateful_step_count=STEPS, derandomize=True,
                deadline=None, database=None, suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
        )
    finally:
        print_report(request, tally.lines(time.monotonic() - started))
    assert tally.statuses["5xx"] == 0
    assert tally.linked_ok, "no linked call reached a resource created earlier in its scenario"
    # Links into many operations were followed to a 2xx. (Which ones, and how deep into the
    # buy-flow a run gets, depends on what hypothesis draws, which shifts with any change to the
    # API's answers: the buy-flow's own tests walk it to the end.)
    print("linked operations reached:", len(tally.linked_ok))
    assert len(tally.linked_ok) >= 10, tally.linked_ok
