"""Every string, everywhere: a property-based sweep of every operation of ``/api/openapi.json``.

For each operation of the live document, hypothesis draws requests whose strings come from a
hostile alphabet (lone surrogates, NUL, bidi controls, zero-width characters, confusables, very
long values past the schema's limits, JSON escapes and raw UTF-8) and whose numbers are written as
raw JSON tokens that a careless parser mishandles (``1e2``, ``-0``, ``1.0``, huge integers,
``NaN``, ``Infinity``, ``1e400``). The body is built from the operation's own schema, so that most
fields are valid and the hostile one travels as far as the handler and the database; free-form
objects get hostile keys and values at any depth. Path parameters are either real ids of a
"world" (testkit/builders/world.py) or hostile; queries get hostile values, forged cursors
and undeclared keys; declared headers get hostile values. Bearer routes carry a household owner's
genuine token, internal routes the configured ``X-Internal-Token``, and the webhook is signed
over its raw body with the configured secret, so each request reaches the check it aims at.

After every write that succeeded, every GET of the document is read back against the world
(household, members, items, outfits, requests, the intent with its events, the audit trail, the
caller). What must hold:

- no response is a 5xx, ever;
- every 4xx is the JSON error shape of API.md and names a status the operation documents;
- every response is strict UTF-8 and every JSON body parses;
- every stored row loads, and no stored string holds NUL or a lone surrogate;
- no token, secret or password reached a log line (the whole run is captured at DEBUG);
- every operation of the document was exercised (coverage).

Bounded (``MAX_EXAMPLES`` per operation) and derandomized; the case count, statuses and the
runtime are printed at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import SESSIONS, Base
from testkit.builders.households import AuthActions
from testkit.builders.world import (
    BUYFLOW_TOKEN,
    ORCHESTRATOR_TOKEN,
    World,
    headers_for_security,
    print_report,
)
from testkit.checks.log_leaks import CapturingHandler, leaks, remember, remembered

MAX_EXAMPLES = 40
WEBHOOK_KEY = b"hostile-sweep-webhook-signing-key-0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
PASSWORD = "correct horse battery staple 0123"
ERROR_KEYS = {"error", "message", "correlationId", "timestamp"}

# -- the hostile alphabet ---------------------------------------------------------------------

# Ordered: hypothesis's simplest draws come first in a derandomized run, so the pieces most likely
# to break something lead.
PIECES = [
    "\ud800", "\x00", "\udfff", "\u202e", "\ud83d\ude00", "\u200b",
    "\udbff", "\udc00",                               # lone surrogates
    "\U0001f600",                                      # a valid pair (escaped or raw)
    "\x01", "\x1f", "\x7f", "\x85", "\x9f",              # other controls
    "\u202d", "\u2066", "\u2069", "\u200f",             # bidi controls
    "\u200c", "\u200d", "\u2060", "\ufeff",             # zero-width
    "\u0430", "\u0455", "\uff41", "\u212a", "\u0391",  # confusables (Cyrillic, fullwidth, Kelvin)
    "e\u0301", "\u0300", "\ufffd", "\uffff", "\U0010ffff",
    "\u2028", "\u2029", "\u3000", "\u00a0", " ", "\t", "\n",
    "a", "Z", "0", "-", "_", ".", "/", "\\", "'", '"', "%", "%00", "%2F", "..", "<b>", "${x}",
    "' OR 1=1--", "\u0130", "\u00df", "\u017f",
]
LONG_SIZES = [101, 201, 256, 2001, 2049, 10_001, 70_000]

hostile_piece = st.sampled_from(PIECES)
short_hostile = st.lists(hostile_piece, min_size=1, max_size=6).map("".join)
long_hostile = st.tuples(st.sampled_from(["a", "\u202e", "\u00e9", "\U0001f600", "\ud800", " "]),
                         st.sampled_from(LONG_SIZES)).map(lambda t: t[0] * t[1])
hostile_text = st.one_of(short_hostile, short_hostile, long_hostile)


@dataclass(frozen=True)
class Raw:
    """A JSON token written verbatim (a number in a spelling ``json.dumps`` never produces)."""

    token: str


@dataclass(frozen=True)
class WorldId:
    """Replaced, when the request is sent, by the world's id of that name."""

    name: str


NUMBER_TOKENS = ["NaN", "1e400", "1e2", "-0", "0.0", "-0.0", "1.0", "1E0", "1e-400", "-1e400",
                 "Infinity", "-Infinity", "1" + "0" * 30, "9" * 400, "-1", "0.5", "10000000001",
                 "9223372036854775808", "-9223372036854775809", "5e3", "00", "+1", "0x10", "1_0"]
hostile_number = st.one_of(st.sampled_from(NUMBER_TOKENS).map(Raw), st.booleans(), short_hostile,
                           st.integers(min_value=-(2**70), max_value=2**70))

# Body fields that name a world row: the valid value is that row's id.
ID_FIELDS = {"intentId": "intentId", "itemId": "itemId", "actorUserId": "ownerId",
             "userId": "userId", "itemIds": "itemId"}
VALID_TEXT = st.sampled_from(["Boots", "Winter coat", "  padded  ", "\u00e9t\u00e9", "x"])


def _forged_cursor() -> st.SearchStrategy[str]:
    stamp = st.sampled_from(["2026-01-01T00:00:00", "9999-12-31T23:59:59+14:00", "0001-01-01",
                             "2026-01-01T00:00:00.000000", "\ud800", ""])
    ident = st.one_of(short_hostile, st.sampled_from(NUMBER_TOKENS).map(Raw),
                      st.just(WorldId("householdId")))
    shaped = st.tuples(stamp, ident).map(lambda t: "[" + _dump(t[0]) + "," + _dump(t[1]) + "]")
    seq = st.one_of(st.integers(min_value=-5, max_value=2**80).map(str), short_hostile)
    sequence = seq.map(lambda s: "audit:" + s)
    encoded = st.one_of(shaped, sequence, short_hostile).map(
        lambda text: base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass"))
        .decode().rstrip("="))
    return st.one_of(encoded, short_hostile)


# -- bodies from the operation's schema --------------------------------------------------------


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _free_form() -> st.SearchStrategy[Any]:
    """A free-form object: hostile keys, and hostile leaves at any depth."""
    leaf = st.one_of(hostile_text, hostile_number, st.none())
    tree = st.recursive(
        leaf,
        lambda inner: st.one_of(st.dictionaries(short_hostile, inner, min_size=1, max_size=3),
                                st.lists(inner, min_size=1, max_size=3)),
        max_leaves=6,
    )
    return st.dictionaries(short_hostile, tree, min_size=1, max_size=3)


def _generated_pattern(pattern: str) -> bool:
    """The NUL and trimmed-length patterns that openapi.py writes, not a field's own format."""
    return pattern == "^[^\\x00]*$" or pattern.startswith("^[\\t\\n")


def _valid(schema: dict[str, Any], name: str, components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value the field accepts: what lets a request travel to the handler and the database."""
    schema = _resolve(schema, components)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return st.one_of([_valid(s, name, components) for s in branches])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 10_000)
        return st.integers(min_value=low, max_value=min(high, low + 5_000))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum", 0), max_value=schema.get("maximum", 1e6),
                         allow_nan=False)
    if kind == "array":
        return st.lists(_valid(schema.get("items", {}), name, components),
                        min_size=max(schema.get("minItems", 0), 1),
                        max_size=max(min(schema.get("maxItems", 2), 2), 1))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if not properties:  # free-form: something benign, which a site may then replace
            return st.just({"step": "loaded", "n": 1})
        return st.fixed_dictionaries(
            {n: _valid(prop, n, components) for n, prop in properties.items()})
    if name in ID_FIELDS:
        return st.just(WorldId(ID_FIELDS[name]))
    if schema.get("format") == "email" or name == "email":
        return st.sampled_from(["sweep@example.test", "Sweep+1@Example.Test"])
    if name in ("password", "newPassword"):
        return st.just(PASSWORD)
    if name == "currency":
        return st.just("EUR")
    pattern = schema.get("pattern")
    if pattern and not _generated_pattern(pattern):
        return st.from_regex(pattern, fullmatch=True)
    return VALID_TEXT


def _hostile_for(value: Any) -> st.SearchStrategy[Any]:
    """Something hostile in place of a valid ``value`` (of its type first, then of another)."""
    if isinstance(value, dict):
        return st.one_of(_free_form(), hostile_text)
    if isinstance(value, list):
        return st.one_of(st.lists(hostile_text, min_size=1, max_size=3), _free_form())
    if isinstance(value, bool | int | float):
        return st.one_of(hostile_number, hostile_text)
    return st.one_of(hostile_text, hostile_number, _free_form())


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every place of a body a site can aim at: each value (containers included), and each
    object, for an added key."""
    yield "value", path
    if isinstance(value, dict):
        yield "key", path
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def _dump(value: Any, ascii_only: bool = True) -> str:
    """JSON text, with Raw tokens verbatim; strings escaped (``\\ud800``) or raw UTF-8."""
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, WorldId):
        return json.dumps(value.name)  # replaced before sending
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dump(str(k), ascii_only)}:{_dump(v, ascii_only)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, WorldId):
        return ids.get(value.name, value.name)
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    return value


def _quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@dataclass
class Drawn:
    path: dict[str, Any]
    query: list[tuple[str, Any]]
    headers: dict[str, str]
    body: Any
    raw_utf8: bool
    has_body: bool
    site: str = "none"


def _valid_request(operation: dict[str, Any], components: dict[str, Any]
                   ) -> st.SearchStrategy[Drawn]:
    parameters = operation.get("parameters", [])
    path = {p["name"]: st.just(WorldId(p["name"])) for p in parameters if p["in"] == "path"}
    query = st.tuples(*(
        st.one_of(st.none(), st.tuples(st.just(p["name"]), _valid(p["schema"], p["name"],
                                                                   components)))
        for p in parameters if p["in"] == "query" and p["name"] != "cursor"
    )).map(lambda pairs: [pair for pair in pairs if pair is not None])
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    body: st.SearchStrategy[Any] = (
        _valid(content["schema"], "(body)", components) if content else st.none())
    return st.builds(
        Drawn, path=st.fixed_dictionaries(path), query=query, headers=st.builds(dict), body=body,
        raw_utf8=st.booleans(), has_body=st.just(content is not None),
    )


def _aim(data: st.DataObject, drawn: Drawn, operation: dict[str, Any]) -> Drawn:
    """Make one place of a valid request hostile: a body value, a key added to a body object, a
    path parameter, a query parameter (a forged cursor), an undeclared query key or a declared
    header; or, for one case in ten, leave the request valid (so that state moves on)."""
    parameters = operation.get("parameters", [])
    sites: list[tuple[str, Any]] = []
    if drawn.has_body:
        sites += [(f"body-{kind}", path) for kind, path in _leaves(drawn.body)]
    sites += [("path", p["name"]) for p in parameters if p["in"] == "path"]
    sites += [("query", p["name"]) for p in parameters if p["in"] == "query"]
    sites += [("header", p["name"]) for p in parameters if p["in"] == "header"]
    if "Idempotency-Key" in operation.get("summary", ""):  # read by the handler, undeclared
        sites.append(("header", "Idempotency-Key"))
    sites += [("query-undeclared", None)]
    if data.draw(st.integers(min_value=0, max_value=9)) == 9:
        return drawn
    kind, where = data.draw(st.sampled_from(sites))
    drawn.site = kind
    if kind == "body-value":
        hostile = data.draw(_hostile_for(_at(drawn.body, where)))
        drawn.body = _replaced(drawn.body, where, hostile)
    elif kind == "body-key":
        key = data.draw(st.one_of(short_hostile, st.sampled_from(
            ["id", "status", "role", "householdId", "createdBy", "approvedBy", "permissions"])))
        target = dict(_at(drawn.body, where))
        target[key] = data.draw(st.one_of(hostile_text, hostile_number, _free_form()))
        drawn.body = _replaced(drawn.body, where, target)
    elif kind == "path":
        drawn.path[where] = data.draw(hostile_text)
    elif kind == "query":
        value = data.draw(_forged_cursor() if where == "cursor"
                          else st.one_of(hostile_text, hostile_number))
        drawn.query = [pair for pair in drawn.query if pair[0] != where] + [(where, value)]
    elif kind == "query-undeclared":
        drawn.query = [*drawn.query, (data.draw(short_hostile), data.draw(short_hostile))]
    else:
        drawn.headers[where] = data.draw(short_hostile)
    return drawn


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)  # 2xx by operation
    readbacks: int = 0
    sites: Counter[str] = field(default_factory=Counter)  # where the hostile value went
    seconds: dict[str, float] = field(default_factory=dict)  # CPU time by operation
    problems: list[str] = field(default_factory=list)

    def lines(self, elapsed: float) -> list[str]:
        return [
            f"hostile sweep: cases={sum(self.cases.values())} over {len(self.cases)} operations, "
            f"read-backs={self.readbacks}, {elapsed:.1f} s",
            "hostile sweep sites: " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.sites.items())),
            "hostile sweep responses: " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.statuses.items())),
            "hostile sweep 2xx by operation: " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.reached.items())),
            "hostile sweep slowest operations (CPU s): " + ", ".join(
                f"{k}={v:.1f}" for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])[:8]),
        ]


class Sweep:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.auth = AuthActions(app)
        self.sid = 0
        owner = self.auth.user("owner@sweep.example")
        adult = self.auth.user("adult@sweep.example")
        self.owner_user, self.adult_user = owner, adult
        self.world = World(client=self.client, owner={}, adult={}, adult_email=str(adult.email),
                           owner_id=owner.id)
        self.fresh_tokens()
        self.world.build()
        self.document = self.client.get("/api/openapi.json").get_json()
        self.components = self.document["components"]["schemas"]
        self.tally = Tally()
        self.webhook_n = 0

    def fresh_tokens(self) -> None:
        """Tokens of a session of their own: a logout that the sweep sends ends only that one."""
        self.sid += 1
        owner = self.auth.token(self.owner_user, sid=f"rtf_sweep{self.sid}")
        adult = self.auth.token(self.adult_user, sid=f"rtf_sweep{self.sid}")
        remember(owner, adult)
        self.world.owner = {"Authorization": f"Bearer {owner}"}
        self.world.adult = {"Authorization": f"Bearer {adult}"}

    def operations(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(path, method.upper(), op) for path, ops in self.document["paths"].items()
                for method, op in ops.items()]

    def ids(self, path: str) -> dict[str, str]:
        ids = dict(self.world.ids)
        flow = "purchase-intents" in path or "confirm-checkout" in path
        ids["requestId"] = ids["approvedRequestId" if flow else "submittedRequestId"]
        return ids

    def send(self, template: str, method: str, operation: dict[str, Any], drawn: Drawn) -> Any:
        ids = self.ids(template)
        url = template
        for name, value in drawn.path.items():
            value = _substitute(value, ids)
            url = url.replace("{" + name + "}", _quote(value) or "%20")
        query = "&".join(f"{_quote(k)}={_quote(str(_substitute(v, ids)) if not isinstance(v, Raw) else v.token)}"
                         for k, v in drawn.query)
        headers: dict[str, str] = dict(headers_for_security(operation, template, self.world.owner))
        data: bytes | None = None
        if drawn.has_body:
            text = _dump(_substitute(drawn.body, ids), ascii_only=not drawn.raw_utf8)
            data = text.encode("utf-8", "surrogatepass")
            headers["Content-Type"] = "application/json"
        for name, value in drawn.headers.items():
            # What HTTP can carry: latin-1, no line breaks (NUL and other controls stay).
            if value and all(ord(c) < 256 and c not in "\r\n" for c in value):
                headers[name] = value
        if template == "/api/webhooks/hyperbeam":
            headers.update(self.webhook_headers(data or b"", headers.get("webhook-id")))
        return self.client.open(url, method=method, query_string=query, data=data,
                                headers=headers)

    def webhook_headers(self, body: bytes, hostile_id: str | None) -> dict[str, str]:
        self.webhook_n += 1
        delivery = hostile_id if hostile_id is not None else f"msg_sweep_{self.webhook_n}"
        stamp = str(int(time.time()))
        signed = delivery.encode() + b"." + stamp.encode() + b"." + body
        signature = base64.b64encode(hmac.new(WEBHOOK_KEY, signed, hashlib.sha256).digest())
        return {"webhook-id": delivery, "webhook-timestamp": stamp,
                "webhook-signature": "v1," + signature.decode()}

    def check(self, label: str, operation: dict[str, Any], response: Any) -> None:
        status = response.status_code
        raw = response.get_data()
        try:
            text = raw.decode("utf-8")  # strict
            body = json.loads(text) if text else None
        except ValueError:
            self.tally.problems.append(f"{label}: {status} not strict UTF-8 JSON: {raw[:120]!r}")
            return
        if status >= 500:
            self.tally.problems.append(f"{label}: {status} {body}")
        elif status >= 400:
            if not isinstance(body, dict) or not ERROR_KEYS <= set(body):
                self.tally.problems.append(f"{label}: {status} is not the error shape: {body}")
            elif str(status) not in operation["responses"]:
                self.tally.problems.append(f"{label}: undocumented {status} {body['error']}")

    def read_back(self) -> None:
        """Every GET of the document, on the world's ids, as the owner."""
        for template, method, operation in self.operations():
            if method != "GET" or template == "/api/openapi.json":
                continue
            ids = self.ids(template)
            url = template
            for name in (p["name"] for p in operation.get("parameters", []) if p["in"] == "path"):
                url = url.replace("{" + name + "}", ids[name])
            response = self.client.get(url, query_string={"limit": 100} if "cursor" in str(
                operation.get("parameters")) else None, headers=self.world.owner)
            self.tally.readbacks += 1
            self.check(f"read-back GET {template}", operation, response)
            # A proof of an event newer than the chain's newest checkpoint is 409 until it exists.
            pending = response.status_code == 409 and "retryAfter" in (response.get_json() or {})
            if response.status_code not in (200, 404) and not pending:
                self.tally.problems.append(
                    f"read-back GET {template}: {response.status_code} {response.get_json()}")

    def stored_rows_load(self) -> None:
        """Every row of every mapped table loads; no stored string holds NUL or a surrogate."""
        with SESSIONS.get(self.app)() as session:
            for mapper in Base.registry.mappers:
                for row in session.scalars(select(mapper.class_)):
                    for column in mapper.columns:
                        value = getattr(row, column.key, None)
                        try:
                            text = json.dumps(value, default=str, ensure_ascii=False)
                            text.encode("utf-8")
                        except (ValueError, TypeError) as exc:
                            self.tally.problems.append(
                                f"stored {mapper.class_.__name__}.{column.key}: {exc}")
                            continue
                        if "\\u0000" in text or "\x00" in text:
                            self.tally.problems.append(
                                f"stored {mapper.class_.__name__}.{column.key}: NUL")

    def exercise(self, template: str, method: str, operation: dict[str, Any]) -> None:
        label = f"{method} {template}"

        valid = _valid_request(operation, self.components)

        @given(data=st.data())
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit,
                                                                   Phase.generate])
        def run(data: st.DataObject) -> None:
            drawn = _aim(data, data.draw(valid), operation)
            self.tally.cases[label] += 1
            self.tally.sites[drawn.site] += 1
            response = self.send(template, method, operation, drawn)
            self.tally.statuses[f"{response.status_code // 100}xx"] += 1
            self.check(label, operation, response)
            if response.status_code < 300:
                self.tally.reached[label] += 1
            if method != "GET" and response.status_code < 300:
                self.read_back()
                if template == "/api/auth/logout":
                    self.fresh_tokens()
                self.world.build()

        started = time.process_time()
        try:
            run()
        finally:
            self.stored_rows_load()
            self.tally.seconds[label] = time.process_time() - started


@pytest.fixture
def sweep_app(make_app: Any) -> Flask:
    remember(BUYFLOW_TOKEN, ORCHESTRATOR_TOKEN, WEBHOOK_SECRET, PASSWORD,
             base64.b64encode(WEBHOOK_KEY).decode())
    app: Flask = make_app(
        BUYFLOW_INTERNAL_TOKEN=[BUYFLOW_TOKEN], REQUIRE_BUYFLOW_INTERNAL_TOKEN=True,
        ORCHESTRATOR_INTERNAL_TOKEN=[ORCHESTRATOR_TOKEN], REQUIRE_INTERNAL_EVENT_TOKEN=True,
        HYPERBEAM_EVENT_SIGNING_SECRET=[WEBHOOK_SECRET], HYPERBEAM_ENFORCE_EVENT_SIGNATURES=True,
        AUTH_LOCAL_ACCOUNTS_ENABLED=True, DEMO_HELPERS_ENABLED=True, LOG_LEVEL="DEBUG",
    )
    remember(app.config["AUTH_JWT_SECRET"])
    return app


@pytest.fixture
def captured_logs(leak_check: CapturingHandler) -> Iterator[CapturingHandler]:
    """The lines logged during this test only (the session capture keeps them all)."""
    handler = CapturingHandler()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_operation_with_hostile_strings(
    sweep_app: Flask, captured_logs: CapturingHandler, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    sweep = Sweep(sweep_app)
    operations = sweep.operations()
    assert len(operations) > 30
    for template, method, operation in operations:
        try:
            sweep.exercise(template, method, operation)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one report for all
            sweep.tally.problems.append(f"{method} {template}: {type(exc).__name__}: {exc}")
    elapsed = time.monotonic() - started
    print_report(request, sweep.tally.lines(elapsed))

    # Coverage: every operation of the document was sent.
    missing = [f"{m} {t}" for t, m, _ in operations if sweep.tally.cases[f"{m} {t}"] == 0]
    assert not missing, f"operations not exercised: {missing}"
    assert not sweep.tally.problems, "\n".join(sorted(set(sweep.tally.problems))[:60])
    assert captured_logs.lines, "the log capture saw nothing"
    assert not leaks(captured_logs.lines, remembered()), leaks(captured_logs.lines, remembered())
    # Password hashes and SQL statements' bound parameters never reach a log line either.
    shapes = ("$argon2", "[parameters:", "[SQL parameters")
    assert not [(logger, shape) for logger, text in captured_logs.lines for shape in shapes
                if shape in text]
