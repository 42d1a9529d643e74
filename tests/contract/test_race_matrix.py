"""Every write, raced: identical calls at every creating or transitioning route, and conflicting
pairs, fired together (a barrier releases them) at one gunicorn server with several workers.

Each case asserts that every answer is one its contract allows under a race (2xx, 404, 409, or
401 where a spent credential is refused), that the database holds exactly the effects the winners
answered for, and that every audit chain still verifies. PostgreSQL runs with ``log_lock_waits``
and ``deadlock_timeout=1ms``: a case fails on a deadlock, a lock or statement timeout, or a lock
wait over ``LOCK_WAIT_LIMIT_MS``. Shorter waits are how losers queue behind the winner's row or
chain lock; the module prints them per case (``-s``). Cases whose calls share no row and no
chain (``waitless``: creating items, outfits, households, events) must not wait at all. A write
route of the URL map or of the OpenAPI document without a case here fails
``test_every_write_route_is_raced``. The server's own output is read at the end: no password,
hash, token, secret or SQL parameter may appear in it.

One server and one database serve the whole module; each case builds its own household and users
(unique e-mail addresses), so nothing needs resetting between cases.

It runs on SQLite as well, with the same cases and the same server of several workers: SQLite
queues its write transactions (``BEGIN IMMEDIATE``, ``app/db.py``), so the answers must be the same
as on PostgreSQL. The PostgreSQL log checks apply to PostgreSQL only.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from app import create_app
from app.audit.signing import PublicKeys, generate_pem, signer
from app.audit.verify import verify_database
from app.db import SESSIONS, Base, Database
from app.gateway.contracts import contract_of
from app.models import (
    AuditEvent,
    AuthSession,
    Household,
    IdempotencyKey,
    IntentArtifact,
    IntentEvent,
    Invitation,
    Item,
    Member,
    Outfit,
    OutfitItem,
    PurchaseIntent,
    PurchaseRequest,
    RefreshToken,
    User,
    WebhookEvent,
)
from app.models.audit import SYSTEM_CHAIN
from testkit.builders.families import BUYFLOW_TOKEN, CART, ORCHESTRATOR_TOKEN, Family, build_family
from testkit.builders.households import json_object
from testkit.checks.log_leaks import leaks, remember
from testkit.config import BASE_CONFIG, DB_BACKEND, TEST_JWT_SECRET
from testkit.database import truncate_all
from testkit.servers.gunicorn import gunicorn_server, race
from testkit.servers.postgres import Postgres

# Identical calls per case (pairs: half of each); HEARTHGATE_RACE_CALLS for a heavier run.
CALLS = int(os.environ.get("HEARTHGATE_RACE_CALLS", "20"))
WORKERS, THREADS = 4, 4
PASSWORD = "race-password-0123456789"  # noqa: S105 - a test account's password
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"race-matrix-webhook-key-0123456789").decode()
AUDIT_KEY = generate_pem()

# The same settings for the server and for the in-process app that prepares and checks.
SETTINGS: dict[str, str] = {
    "AUTH_LOCAL_ACCOUNTS_ENABLED": "true",
    "DEMO_HELPERS_ENABLED": "true",
    "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": "true",
    "HYPERBEAM_EVENT_SIGNING_SECRET": WEBHOOK_SECRET,
    "AUDIT_SIGNING_KEY": AUDIT_KEY,
    "AUDIT_CHECKPOINT_EVERY": "7",  # checkpoints are signed inside the races too
    "LOG_LEVEL": "INFO",
    "BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN,
    "REQUIRE_BUYFLOW_INTERNAL_TOKEN": "true",
    "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN,
    "REQUIRE_INTERNAL_EVENT_TOKEN": "true",
    # The authorization-code routes exist (the provider is never reached: codes are planted).
    "AUTH_OIDC_ISSUER": "http://127.0.0.1:9/",
    "AUTH_OIDC_AUDIENCE": "hearthgate-races",
    "AUTH_OIDC_CALLBACK_URL": "http://127.0.0.1:9/api/auth/oidc/callback",
    "AUTH_OIDC_CLIENT_SECRET": "race-client-secret-0123456789abcdef",
    "AUTH_OIDC_REDIRECT_URIS": "http://127.0.0.1:9/app",
}

pytestmark = [pytest.mark.slow]

# What PostgreSQL logs when locks were taken in two orders, or a wait gave up.
PG_LOCK_FAILURES = re.compile(r"deadlock detected|lock timeout|canceling statement|"
                              r"could not serialize|could not obtain lock")

# -- the stage: one server and one database for the module ----------------------------------


@dataclass
class Stage:
    base: str
    app: Flask
    log: Path
    postgres: Postgres | None
    cases: int = 0
    verified: int = 0  # addresses confirmed so far by the races
    waits: dict[str, Counter[str]] = field(default_factory=dict)  # per case, per lock waited on

    def pg_log_offset(self) -> int:
        return (self.postgres.directory / "postgres.log").stat().st_size if self.postgres else 0

    def pg_log_since(self, offset: int) -> str:
        if self.postgres is None:
            return ""
        with open(self.postgres.directory / "postgres.log", "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def family(self) -> Family:
        self.cases += 1
        return build_family(self.app, prefix=f"race{self.cases}-")


def _app_config(url: str) -> dict[str, Any]:
    config: dict[str, Any] = {**BASE_CONFIG, "DATABASE_URL": url}
    for name, value in SETTINGS.items():
        config[name] = True if value == "true" else value
    config["AUDIT_CHECKPOINT_EVERY"] = int(SETTINGS["AUDIT_CHECKPOINT_EVERY"])
    for name in ("BUYFLOW_INTERNAL_TOKEN", "ORCHESTRATOR_INTERNAL_TOKEN",
                 "HYPERBEAM_EVENT_SIGNING_SECRET", "AUTH_OIDC_REDIRECT_URIS"):
        config[name] = [SETTINGS[name]]
    return config


@pytest.fixture(scope="module")
def stage(request: pytest.FixtureRequest, migrated_database: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    folder = tmp_path_factory.mktemp("races")
    postgres: Postgres | None = None
    url = migrated_database
    if DB_BACKEND == "postgresql":
        postgres = request.getfixturevalue("postgres")
        # Every lock wait over 1 ms is logged, and deadlocks are detected after 1 ms.
        postgres.psql("ALTER SYSTEM SET log_lock_waits = on")
        postgres.psql("ALTER SYSTEM SET deadlock_timeout = '1ms'")
        postgres.psql("SELECT pg_reload_conf()")
    else:
        copy = folder / "races.sqlite3"
        shutil.copyfile(migrated_database.removeprefix("sqlite:///"), copy)
        url = f"sqlite:///{copy}"
    remember(PASSWORD, WEBHOOK_SECRET, AUDIT_KEY, BUYFLOW_TOKEN, ORCHESTRATOR_TOKEN,
             TEST_JWT_SECRET, SETTINGS["AUTH_OIDC_CLIENT_SECRET"])
    app = create_app(_app_config(url))
    app.instance_path = str(folder / "instance")
    log = folder / "gunicorn.log"
    try:
        with gunicorn_server(url, TEST_JWT_SECRET, workers=WORKERS, threads=THREADS,
                             log_path=log, ready_calls=WORKERS * THREADS, settings=SETTINGS) as base:
            built = Stage(base=base, app=app, log=log, postgres=postgres)
            yield built
        print("\nlock waits over 1 ms per case (PostgreSQL log_lock_waits):")  # noqa: T201
        for name, waits in built.waits.items():
            print(f"  {name}: {dict(waits) or 'none'}")  # noqa: T201
    finally:
        Database.engine(app).dispose()
        if postgres is not None:
            truncate_all(url)  # the session's database is shared with the modules after this
            postgres.psql("ALTER SYSTEM RESET log_lock_waits")
            postgres.psql("ALTER SYSTEM RESET deadlock_timeout")
            postgres.psql("SELECT pg_reload_conf()")


# -- shots, the race and its checks ----------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One HTTP call of a race; ``kind`` groups the identical ones."""

    kind: str
    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None


Check = Callable[[dict[str, Counter[int]]], None]


@dataclass(frozen=True)
class Race:
    shots: list[Shot]
    allowed: dict[str, set[int]]  # per kind: every status a loser or a winner may get
    check: Check  # the effects in the database, from the statuses per kind
    # Calls that share no row and no chain never wait for one another: writes inside one
    # household share its row FOR KEY SHARE only (app.gateway.tenancy), so none may queue.
    waitless: bool = False


def fire(stage: Stage, shots: list[Shot]) -> dict[str, Counter[int]]:
    def call(shot: Shot) -> Callable[[requests.Session], requests.Response]:
        return lambda s: s.request(shot.method, stage.base + shot.path, json=shot.json,
                                   data=shot.data, headers=shot.headers, timeout=60)

    results = race([call(shot) for shot in shots])
    statuses: dict[str, Counter[int]] = {}
    for index, status in results:
        statuses.setdefault(shots[index].kind, Counter())[status] += 1
    return statuses


LOCK_WAIT = re.compile(r"still waiting for (\w+) on (advisory lock|transaction|tuple|relation)")
LOCK_ACQUIRED = re.compile(r"acquired \w+ on .* after ([0-9.]+) ms")
# Losers of a race queue behind the winner's row or chain lock (log_lock_waits shows them); a wait
# this long means a lock held across something slow, or two orders that nearly deadlocked.
LOCK_WAIT_LIMIT_MS = 5000.0


def run(stage: Stage, built: Race, name: str) -> dict[str, Counter[int]]:
    offset = stage.pg_log_offset()
    statuses = fire(stage, built.shots)
    for kind, counter in statuses.items():
        unexpected = set(counter) - built.allowed[kind]
        assert not unexpected, f"{kind}: {dict(counter)}"
    built.check(statuses)
    with stage.app.app_context(), SESSIONS.get(stage.app)() as session:
        report = verify_database(session, PublicKeys([signer(stage.app).public_key]))
    assert report.ok, report.problems
    logged = stage.pg_log_since(offset)
    stage.waits[name] = Counter(" on ".join(m.groups()) for m in LOCK_WAIT.finditer(logged))
    failures = [line for line in logged.splitlines() if PG_LOCK_FAILURES.search(line)]
    assert failures == [], "\n".join(failures)
    if built.waitless:
        assert stage.waits[name] == Counter(), stage.waits[name]
    longest = max((float(m.group(1)) for m in LOCK_ACQUIRED.finditer(logged)), default=0.0)
    assert longest < LOCK_WAIT_LIMIT_MS, f"a lock wait of {longest} ms"
    return statuses


def count(stage: Stage, model: type, *where: Any) -> int:
    with SESSIONS.get(stage.app)() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audited(stage: Stage, action: str, chain: str) -> int:
    return count(stage, AuditEvent, AuditEvent.action == action, AuditEvent.chain == chain)


def won(statuses: dict[str, Counter[int]], kind: str, status: int) -> int:
    return statuses.get(kind, Counter())[status]


def identical(kind: str, method: str, path: str, **kw: Any) -> list[Shot]:
    return [Shot(kind, method, path, **kw) for _ in range(CALLS)]


def halves(first: list[Shot], second: list[Shot]) -> list[Shot]:
    """Half of each, interleaved, so that neither side starts all its calls first."""
    mixed: list[Shot] = []
    for a, b in zip(first[: CALLS // 2], second[: CALLS // 2], strict=True):
        mixed += [a, b]
    return mixed


def household_rows(stage: Stage, household_id: str) -> dict[str, int]:
    """How many rows of each table still name the household."""
    left: dict[str, int] = {}
    with Database.engine(stage.app).connect() as connection:
        for table in Base.metadata.sorted_tables:
            if "household_id" in table.c:
                n = connection.execute(select(func.count()).select_from(table)
                                       .where(table.c.household_id == household_id)).scalar()
                if n:
                    left[table.name] = int(n)
    return left


def erased_once(stage: Stage, household_id: str) -> None:
    assert count(stage, Household, Household.id == household_id) == 0
    assert household_rows(stage, household_id) == {}
    with SESSIONS.get(stage.app)() as session:
        erased = session.scalars(select(AuditEvent.details).where(
            AuditEvent.chain == SYSTEM_CHAIN, AuditEvent.action == "household.erased")).all()
    assert sum(1 for d in erased if d.get("erasedHouseholdId") == household_id) == 1


# -- the world of one case ------------------------------------------------------------------


def sign_webhook(body: bytes, msg_id: str) -> dict[str, str]:
    timestamp = int(time.time())
    signature = Webhook(WEBHOOK_SECRET).sign(msg_id, datetime.fromtimestamp(timestamp, UTC),
                                             body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature, "Content-Type": "application/json"}


def hh(f: Family, tail: str = "") -> str:
    return f"/api/households/{f.household_id}{tail}"


def member(stage: Stage, f: Family, user_id: str) -> Member | None:
    with SESSIONS.get(stage.app)() as session:
        return session.get(Member, (f.household_id, user_id))


def local_account(stage: Stage, email: str) -> None:
    r = stage.app.test_client().post("/api/auth/register", json={
        "email": email, "password": PASSWORD, "name": "Racer"})
    assert r.status_code == 201, r.get_json()


def local_login(stage: Stage, email: str) -> dict[str, Any]:
    r = stage.app.test_client().post("/api/auth/login", json={"email": email,
                                                               "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    pair: dict[str, Any] = r.get_json()
    remember(pair["token"], pair["refreshToken"])
    return pair


# -- the cases -------------------------------------------------------------------------------

H = "/api/households/<household_id>"
R = H + "/requests/<request_id>"
CaseBuilder = Callable[[Stage], Race]


@dataclass(frozen=True)
class Case:
    name: str
    routes: tuple[str, ...]  # "METHOD rule" of every route the case fires
    build: CaseBuilder


CASES: list[Case] = []


def case(name: str, *routes: str) -> Callable[[CaseBuilder], CaseBuilder]:
    def register(build: CaseBuilder) -> CaseBuilder:
        CASES.append(Case(name, routes, build))
        return build

    return register


@case("create household", "POST /api/households")
def _create_household(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("create", "POST", "/api/households", json={"name": "Twin"},
                      headers=f.headers(f.adult))

    def check(statuses: dict[str, Counter[int]]) -> None:
        created = won(statuses, "create", 201)
        assert count(stage, Household, Household.created_by == f.adult.id) == created == CALLS
        assert count(stage, Member, Member.user_id == f.adult.id, Member.role == "owner") == CALLS

    return Race(shots, {"create": {201}}, check, waitless=True)


@case("rename household", "PATCH " + H)
def _rename_household(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("rename", "PATCH", hh(f), json={"name": "Renamed"},
                      headers=f.headers(f.owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            assert session.get_one(Household, f.household_id).name == "Renamed"
        assert audited(stage, "household.renamed", f.household_id) == CALLS

    return Race(shots, {"rename": {200}}, check)


@case("delete household", "DELETE " + H)
def _delete_household(stage: Stage) -> Race:
    f = stage.family()
    f.submit()
    shots = identical("delete", "DELETE", hh(f), headers=f.headers(f.owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS - 1}, statuses
        erased_once(stage, f.household_id)

    return Race(shots, {"delete": {204, 404}}, check)


def _invited(stage: Stage, f: Family) -> tuple[User, str]:
    """A verified newcomer and the id of their pending invitation into ``f``'s household."""
    newcomer = f.auth.user(f"race{stage.cases}-invited@example.test")
    created = f.client.post(hh(f, "/members"), json={"email": newcomer.email, "role": "adult"},
                            headers=f.headers(f.owner))
    assert created.status_code == 201, created.get_json()
    return newcomer, str(json_object(created)["id"])


@dataclass(frozen=True)
class OneInvitationStep:
    """Identical calls that take one step of an invitation's life: one wins, every other is
    409, and exactly one invitation row and one audit event result."""

    name: str
    route: str  # "METHOD rule", as test_every_write_route_is_raced reads it
    kind: str  # "invite", or the verb of /api/invitations/<id>/<verb>
    ok: int  # the winner's status
    state: str  # the invitation's status afterwards
    action: str  # the one audit event on the household's chain
    joins: bool  # whether the newcomer is a member afterwards


INVITATION_STEPS = (
    OneInvitationStep("invite one address", "POST " + H + "/members", "invite", 201, "PENDING",
                      "invitation.created", joins=False),
    OneInvitationStep("accept one invitation", "POST /api/invitations/<invitation_id>/accept",
                      "accept", 200, "ACCEPTED", "invitation.accepted", joins=True),
    OneInvitationStep("decline one invitation", "POST /api/invitations/<invitation_id>/decline",
                      "decline", 204, "DECLINED", "invitation.declined", joins=False),
)


def _invitation_step(step: OneInvitationStep, stage: Stage) -> Race:
    f = stage.family()
    if step.kind == "invite":
        newcomer = f.auth.user(f"race{stage.cases}-newcomer@example.test")
        shots = identical("invite", "POST", hh(f, "/members"),
                          json={"email": newcomer.email, "role": "child"},
                          headers=f.headers(f.owner))
    else:
        newcomer, invitation = _invited(stage, f)
        shots = identical(step.kind, "POST", f"/api/invitations/{invitation}/{step.kind}",
                          headers=f.headers(newcomer))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses[step.kind] == {step.ok: 1, 409: CALLS - 1}, statuses
        with SESSIONS.get(stage.app)() as session:
            states = session.scalars(select(Invitation.status).where(
                Invitation.household_id == f.household_id,
                Invitation.email == newcomer.email)).all()
        assert states == [step.state]
        assert (member(stage, f, newcomer.id) is not None) == step.joins
        assert audited(stage, step.action, f.household_id) == 1

    return Race(shots, {step.kind: {step.ok, 409}}, check)


for _step in INVITATION_STEPS:
    case(_step.name, _step.route)(functools.partial(_invitation_step, _step))


@case("accept against revoke", "DELETE " + H + "/invitations/<invitation_id>")
def _accept_vs_revoke(stage: Stage) -> Race:
    f = stage.family()
    newcomer, invitation = _invited(stage, f)
    shots = halves(
        identical("accept", "POST", f"/api/invitations/{invitation}/accept",
                  headers=f.headers(newcomer)),
        identical("revoke", "DELETE", hh(f, f"/invitations/{invitation}"),
                  headers=f.headers(f.owner)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        accepted, revoked = won(statuses, "accept", 200), won(statuses, "revoke", 204)
        assert accepted + revoked == 1, statuses  # one decision, whichever came first
        assert (member(stage, f, newcomer.id) is not None) == (accepted == 1)
        decided = audited(stage, "invitation.accepted", f.household_id) + audited(
            stage, "invitation.revoked", f.household_id)
        assert decided == 1

    return Race(shots, {"accept": {200, 409}, "revoke": {204, 404, 409}}, check)


@case("change a member's role", "PATCH " + H + "/members/<user_id>")
def _change_role(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("patch", "PATCH", hh(f, f"/members/{f.adult.id}"), json={"role": "child"},
                      headers=f.headers(f.owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        adult = member(stage, f, f.adult.id)
        assert adult is not None and adult.role == "child"
        assert audited(stage, "member.role_changed", f.household_id) == CALLS

    return Race(shots, {"patch": {200}}, check)


@case("two owners demote each other", "PATCH " + H + "/members/<user_id>")
def _demote_each_other(stage: Stage) -> Race:
    f = stage.family()
    with SESSIONS.get(stage.app)() as session:
        session.get_one(Member, (f.household_id, f.adult.id)).role = "owner"
        session.commit()
    shots = halves(
        identical("owner demotes adult", "PATCH", hh(f, f"/members/{f.adult.id}"),
                  json={"role": "adult"}, headers=f.headers(f.owner)),
        identical("adult demotes owner", "PATCH", hh(f, f"/members/{f.owner.id}"),
                  json={"role": "adult"}, headers=f.headers(f.adult)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        owners = count(stage, Member, Member.household_id == f.household_id,
                       Member.role == "owner")
        assert owners == 1, statuses

    return Race(shots, {"owner demotes adult": {200, 403, 409},
                        "adult demotes owner": {200, 403, 409}}, check)


@case("remove member", "DELETE " + H + "/members/<user_id>")
def _remove_member(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("remove", "DELETE", hh(f, f"/members/{f.child.id}"),
                      headers=f.headers(f.owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["remove"] == {204: 1, 404: CALLS - 1}, statuses
        assert member(stage, f, f.child.id) is None
        assert audited(stage, "member.removed", f.household_id) == 1

    return Race(shots, {"remove": {204, 404}}, check)


@case("remove a member while they act", "DELETE " + H + "/members/<user_id>",
      "POST " + H + "/items", "POST " + H + "/requests")
def _remove_member_while_acting(stage: Stage) -> Race:
    f = stage.family()
    child = f.headers(f.child)
    acts = [Shot("act", "POST", hh(f, "/items"), json={"name": "Cap"}, headers=child)
            if i % 2 else
            Shot("act", "POST", hh(f, "/requests"),
                 json={"title": "Cap", "amountMinor": 900, "currency": "EUR"}, headers=child)
            for i in range(CALLS)]
    shots = halves(identical("remove", "DELETE", hh(f, f"/members/{f.child.id}"),
                             headers=f.headers(f.owner)), acts)

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["remove"] == {204: 1, 404: CALLS // 2 - 1}, statuses
        assert member(stage, f, f.child.id) is None
        made = count(stage, Item, Item.household_id == f.household_id) + count(
            stage, PurchaseRequest, PurchaseRequest.household_id == f.household_id)
        assert made == won(statuses, "act", 201)

    return Race(shots, {"remove": {204, 404}, "act": {201, 404}}, check)


@case("change a member's role while removing them", "PATCH " + H + "/members/<user_id>",
      "DELETE " + H + "/members/<user_id>")
def _change_role_vs_remove(stage: Stage) -> Race:
    f = stage.family()
    path = hh(f, f"/members/{f.adult.id}")
    owner = f.headers(f.owner)
    shots = halves(identical("patch", "PATCH", path, json={"role": "child"}, headers=owner),
                   identical("remove", "DELETE", path, headers=owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["remove"][204] == 1, statuses
        assert member(stage, f, f.adult.id) is None
        assert audited(stage, "member.role_changed", f.household_id) == won(statuses, "patch", 200)

    return Race(shots, {"patch": {200, 404}, "remove": {204, 404}}, check)


@case("rename a household while deleting it", "PATCH " + H, "DELETE " + H)
def _rename_vs_delete(stage: Stage) -> Race:
    f = stage.family()
    owner = f.headers(f.owner)
    shots = halves(identical("rename", "PATCH", hh(f), json={"name": "Late"}, headers=owner),
                   identical("delete", "DELETE", hh(f), headers=owner))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"][204] == 1, statuses
        erased_once(stage, f.household_id)

    return Race(shots, {"rename": {200, 404}, "delete": {204, 404}}, check)


@case("create item", "POST " + H + "/items")
def _create_item(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("create", "POST", hh(f, "/items"), json={"name": "Scarf"},
                      headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, Item, Item.household_id == f.household_id) == CALLS

    return Race(shots, {"create": {201}}, check, waitless=True)


@case("change item", "PATCH " + H + "/items/<item_id>")
def _change_item(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    shots = identical("patch", "PATCH", hh(f, f"/items/{item}"), json={"color": "red"},
                      headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            assert session.get_one(Item, item).color == "red"

    return Race(shots, {"patch": {200}}, check)


@case("change an item while deleting it", "PATCH " + H + "/items/<item_id>",
      "DELETE " + H + "/items/<item_id>")
def _change_item_vs_delete(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    path = hh(f, f"/items/{item}")
    child = f.headers(f.child)
    shots = halves(identical("patch", "PATCH", path, json={"color": "blue"}, headers=child),
                   identical("delete", "DELETE", path, headers=child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS // 2 - 1}, statuses
        assert count(stage, Item, Item.id == item) == 0

    return Race(shots, {"patch": {200, 404}, "delete": {204, 404}}, check)


@case("delete item", "DELETE " + H + "/items/<item_id>")
def _delete_item(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    shots = identical("delete", "DELETE", hh(f, f"/items/{item}"), headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS - 1}, statuses
        assert count(stage, Item, Item.id == item) == 0

    return Race(shots, {"delete": {204, 404}}, check)


@case("delete an item while outfits and requests use it", "DELETE " + H + "/items/<item_id>",
      "POST " + H + "/outfits", "POST " + H + "/requests")
def _delete_item_while_used(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    child = f.headers(f.child)
    uses = [Shot("use", "POST", hh(f, "/outfits"), json={"name": "Set", "itemIds": [item]},
                 headers=child) if i % 2 else
            Shot("use", "POST", hh(f, "/requests"), json={
                "title": "Boots", "amountMinor": 900, "currency": "EUR", "itemId": item},
                headers=child)
            for i in range(CALLS)]
    shots = halves(identical("delete", "DELETE", hh(f, f"/items/{item}"), headers=child), uses)

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS // 2 - 1}, statuses
        assert count(stage, Item, Item.id == item) == 0
        assert count(stage, OutfitItem, OutfitItem.item_id == item) == 0
        made = count(stage, Outfit, Outfit.household_id == f.household_id) + count(
            stage, PurchaseRequest, PurchaseRequest.household_id == f.household_id)
        assert made == won(statuses, "use", 201)

    return Race(shots, {"delete": {204, 404}, "use": {201, 404}}, check)


@case("create outfit", "POST " + H + "/outfits")
def _create_outfit(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    shots = identical("create", "POST", hh(f, "/outfits"),
                      json={"name": "Set", "itemIds": [item]}, headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, Outfit, Outfit.household_id == f.household_id) == CALLS
        assert count(stage, OutfitItem, OutfitItem.item_id == item) == CALLS

    return Race(shots, {"create": {201}}, check, waitless=True)


@case("replace an outfit's items", "PATCH " + H + "/outfits/<outfit_id>")
def _change_outfit(stage: Stage) -> Race:
    f = stage.family()
    items = [f.add_item(), f.add_item(), f.add_item()]
    created = f.client.post(hh(f, "/outfits"), json={"name": "Set", "itemIds": items[:1]},
                            headers=f.headers(f.child))
    outfit = json_object(created)["id"]
    shots = identical("patch", "PATCH", hh(f, f"/outfits/{outfit}"),
                      json={"itemIds": items[1:]}, headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            linked = session.scalars(select(OutfitItem.item_id).where(
                OutfitItem.outfit_id == outfit).order_by(OutfitItem.position)).all()
        assert linked == items[1:]

    return Race(shots, {"patch": {200}}, check)


@case("replace an outfit's items while deleting it", "PATCH " + H + "/outfits/<outfit_id>",
      "DELETE " + H + "/outfits/<outfit_id>")
def _change_outfit_vs_delete(stage: Stage) -> Race:
    f = stage.family()
    items = [f.add_item(), f.add_item()]
    child = f.headers(f.child)
    outfit = json_object(f.client.post(hh(f, "/outfits"), json={"name": "Set", "itemIds": items[:1]},
                                       headers=child))["id"]
    path = hh(f, f"/outfits/{outfit}")
    shots = halves(identical("patch", "PATCH", path, json={"itemIds": items}, headers=child),
                   identical("delete", "DELETE", path, headers=child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"][204] == 1, statuses
        assert count(stage, Outfit, Outfit.id == outfit) == 0
        assert count(stage, OutfitItem, OutfitItem.outfit_id == outfit) == 0

    return Race(shots, {"patch": {200, 404}, "delete": {204, 404}}, check)


@case("delete outfit", "DELETE " + H + "/outfits/<outfit_id>")
def _delete_outfit(stage: Stage) -> Race:
    f = stage.family()
    item = f.add_item()
    created = f.client.post(hh(f, "/outfits"), json={"name": "Set", "itemIds": [item]},
                            headers=f.headers(f.child))
    outfit = json_object(created)["id"]
    shots = identical("delete", "DELETE", hh(f, f"/outfits/{outfit}"),
                      headers=f.headers(f.child))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS - 1}, statuses
        assert count(stage, Outfit, Outfit.id == outfit) == 0
        assert count(stage, OutfitItem, OutfitItem.outfit_id == outfit) == 0

    return Race(shots, {"delete": {204, 404}}, check)


@case("create request with one Idempotency-Key", "POST " + H + "/requests")
def _create_request(stage: Stage) -> Race:
    f = stage.family()
    shots = identical("create", "POST", hh(f, "/requests"),
                      json={"title": "Skates", "amountMinor": 9000, "currency": "EUR"},
                      headers=f.headers(f.child, **{"Idempotency-Key": "race-skates"}))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, PurchaseRequest, PurchaseRequest.household_id == f.household_id) == 1
        assert count(stage, IdempotencyKey, IdempotencyKey.household_id == f.household_id) == 1
        assert audited(stage, "request.created", f.household_id) == 1

    return Race(shots, {"create": {201}}, check)


@case("one Idempotency-Key with two bodies", "POST " + H + "/requests")
def _idempotency_two_bodies(stage: Stage) -> Race:
    f = stage.family()
    headers = f.headers(f.child, **{"Idempotency-Key": "race-two-bodies"})
    shots = halves(
        identical("skates", "POST", hh(f, "/requests"),
                  json={"title": "Skates", "amountMinor": 9000, "currency": "EUR"},
                  headers=headers),
        identical("gloves", "POST", hh(f, "/requests"),
                  json={"title": "Gloves", "amountMinor": 1000, "currency": "EUR"},
                  headers=headers))

    def check(statuses: dict[str, Counter[int]]) -> None:
        # the first body wins the key: its twins replay 201, the other body's calls get 422
        winners = [kind for kind in ("skates", "gloves") if won(statuses, kind, 201)]
        assert len(winners) == 1, statuses
        loser = "gloves" if winners == ["skates"] else "skates"
        assert statuses[loser] == {422: CALLS // 2}, statuses
        assert count(stage, PurchaseRequest, PurchaseRequest.household_id == f.household_id) == 1

    return Race(shots, {"skates": {201, 422}, "gloves": {201, 422}}, check)


def _decision(stage: Stage, verb: str, state: str, action: str,
              deciders: tuple[str, ...] = ("adult",)) -> Race:
    """Identical decisions on one submitted request, taken in turn by each of ``deciders``
    (members of the family): one wins, every other call is 409."""
    f = stage.family()
    request_id = f.submit()
    headers = [f.headers(getattr(f, who)) for who in deciders]
    shots = [Shot(verb, "POST", f.url(f"/{request_id}/{verb}"), headers=headers[n % len(headers)])
             for n in range(CALLS)]

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses[verb] == {200: 1, 409: CALLS - 1}, statuses
        assert f.request_row(request_id).status == state
        assert audited(stage, action, f.household_id) == 1

    return Race(shots, {verb: {200, 409}}, check)


@case("approve", "POST " + R + "/approve")
def _approve(stage: Stage) -> Race:
    # Two approvers at once: the request is still decided once.
    return _decision(stage, "approve", "APPROVED", "request.approved", ("owner", "adult"))


@case("reject", "POST " + R + "/reject")
def _reject(stage: Stage) -> Race:
    return _decision(stage, "reject", "REJECTED", "request.rejected")


@case("cancel", "POST " + R + "/cancel")
def _cancel(stage: Stage) -> Race:
    return _decision(stage, "cancel", "CANCELLED", "request.cancelled")


@case("approve against cancel", "POST " + R + "/approve", "POST " + R + "/cancel")
def _approve_vs_cancel(stage: Stage) -> Race:
    f = stage.family()
    request_id = f.submit()
    shots = halves(
        identical("approve", "POST", f.url(f"/{request_id}/approve"), headers=f.headers(f.adult)),
        identical("cancel", "POST", f.url(f"/{request_id}/cancel"), headers=f.headers(f.child)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "cancel", 200) == 1, statuses
        assert won(statuses, "approve", 200) in (0, 1), statuses
        assert f.request_row(request_id).status == "CANCELLED"
        assert audited(stage, "request.cancelled", f.household_id) == 1
        assert audited(stage, "request.approved", f.household_id) == won(statuses, "approve", 200)

    return Race(shots, {"approve": {200, 409}, "cancel": {200, 409}}, check)


@case("approve against reject", "POST " + R + "/approve", "POST " + R + "/reject")
def _approve_vs_reject(stage: Stage) -> Race:
    f = stage.family()
    request_id = f.submit()
    shots = halves(
        identical("approve", "POST", f.url(f"/{request_id}/approve"), headers=f.headers(f.adult)),
        identical("reject", "POST", f.url(f"/{request_id}/reject"), headers=f.headers(f.owner)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "approve", 200) + won(statuses, "reject", 200) == 1, statuses
        state = "APPROVED" if won(statuses, "approve", 200) else "REJECTED"
        assert f.request_row(request_id).status == state
        assert audited(stage, "request.approved", f.household_id) + audited(
            stage, "request.rejected", f.household_id) == 1

    return Race(shots, {"approve": {200, 409}, "reject": {200, 409}}, check)


@case("approve with one Idempotency-Key", "POST " + R + "/approve")
def _approve_idempotent(stage: Stage) -> Race:
    f = stage.family()
    request_id = f.submit()
    shots = identical("approve", "POST", f.url(f"/{request_id}/approve"),
                      headers=f.headers(f.adult, **{"Idempotency-Key": "race-approve"}))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["approve"] == {200: CALLS}, statuses  # one approval, the rest replays
        assert f.request_row(request_id).status == "APPROVED"
        assert audited(stage, "request.approved", f.household_id) == 1

    return Race(shots, {"approve": {200}}, check)


@case("start a purchase against cancel", "POST " + R + "/purchase-intents",
      "POST " + R + "/cancel")
def _start_vs_cancel(stage: Stage) -> Race:
    f = stage.family()
    request_id = f.approved()
    shots = halves(
        identical("start", "POST", f.url(f"/{request_id}/purchase-intents"),
                  headers=f.headers(f.adult)),
        identical("cancel", "POST", f.url(f"/{request_id}/cancel"), headers=f.headers(f.child)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "start", 201) + won(statuses, "cancel", 200) == 1, statuses
        intents = count(stage, PurchaseIntent, PurchaseIntent.request_id == request_id)
        assert intents == won(statuses, "start", 201)
        state = "PURCHASING" if intents else "CANCELLED"
        assert f.request_row(request_id).status == state

    return Race(shots, {"start": {201, 409}, "cancel": {200, 409}}, check)


@case("start a purchase", "POST " + R + "/purchase-intents")
def _start_purchase(stage: Stage) -> Race:
    f = stage.family()
    request_id = f.approved()
    shots = identical("start", "POST", f.url(f"/{request_id}/purchase-intents"),
                      headers=f.headers(f.adult))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["start"] == {201: 1, 409: CALLS - 1}, statuses
        assert count(stage, PurchaseIntent, PurchaseIntent.request_id == request_id) == 1
        assert f.request_row(request_id).status == "PURCHASING"
        assert audited(stage, "intent.created", f.household_id) == 1

    return Race(shots, {"start": {201, 409}}, check)


@case("confirm checkout", "POST " + R + "/confirm-checkout")
def _confirm(stage: Stage) -> Race:
    f = stage.family()
    request_id, intent = f.cart_ready_intent()
    remember(intent["confirmationToken"])
    shots = identical("confirm", "POST", f.url(f"/{request_id}/confirm-checkout"),
                      json={"intentId": intent["intentId"],
                            "confirmationToken": intent["confirmationToken"]},
                      headers=f.headers(f.adult))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["confirm"] == {200: 1, 409: CALLS - 1}, statuses
        assert f.intent_row(intent["intentId"]).status == "COMPLETED"
        assert audited(stage, "checkout.completed", f.household_id) == 1

    return Race(shots, {"confirm": {200, 409}}, check)


def _callback(stage: Stage, verb: str, body: Callable[[Family], dict[str, Any]], state: str,
              action: str, prefix: str = "/api/internal") -> Race:
    f = stage.family()
    request_id = f.approved()
    intent = f.intent(request_id)["intentId"]
    headers = ({"X-Internal-Token": BUYFLOW_TOKEN} if prefix == "/api/internal"
               else f.headers(f.adult))
    shots = identical(verb, "POST", f"{prefix}/purchase-intents/{intent}/{verb}", json=body(f),
                      headers=headers)

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses[verb] == {200: 1, 409: CALLS - 1}, statuses
        assert f.intent_row(intent).status == state
        assert f.request_row(request_id).status == state
        assert audited(stage, action, f.household_id) == 1

    return Race(shots, {verb: {200, 409}}, check)


@case("cart ready", "POST /api/internal/purchase-intents/<intent_id>/cart-ready")
def _cart_ready(stage: Stage) -> Race:
    return _callback(stage, "cart-ready", lambda f: {"actorUserId": f.adult.id, "cart": CART},
                     "CART_READY", "intent.cart_ready")


@case("cart ready (development helper)", "POST /api/dev/purchase-intents/<intent_id>/cart-ready")
def _dev_cart_ready(stage: Stage) -> Race:
    return _callback(stage, "cart-ready", lambda f: {}, "CART_READY", "intent.cart_ready",
                     prefix="/api/dev")


@case("purchase failed", "POST /api/internal/purchase-intents/<intent_id>/failed")
def _failed(stage: Stage) -> Race:
    return _callback(stage, "failed", lambda f: {"actorUserId": f.adult.id, "reason": "gone"},
                     "FAILED", "intent.failed")


@case("confirm against a failed report", "POST " + R + "/confirm-checkout",
      "POST /api/internal/purchase-intents/<intent_id>/failed")
def _confirm_vs_failed(stage: Stage) -> Race:
    f = stage.family()
    request_id, intent = f.cart_ready_intent()
    remember(intent["confirmationToken"])
    shots = halves(
        identical("confirm", "POST", f.url(f"/{request_id}/confirm-checkout"),
                  json={"intentId": intent["intentId"],
                        "confirmationToken": intent["confirmationToken"]},
                  headers=f.headers(f.adult)),
        identical("failed", "POST", f"/api/internal/purchase-intents/{intent['intentId']}/failed",
                  json={"actorUserId": f.adult.id, "reason": "gone"},
                  headers={"X-Internal-Token": BUYFLOW_TOKEN}))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "confirm", 200) + won(statuses, "failed", 200) == 1, statuses
        state = "COMPLETED" if won(statuses, "confirm", 200) else "FAILED"
        assert f.intent_row(intent["intentId"]).status == state
        assert f.request_row(request_id).status == state

    return Race(shots, {"confirm": {200, 409}, "failed": {200, 409}}, check)


@case("confirm checkout with one Idempotency-Key", "POST " + R + "/confirm-checkout")
def _confirm_idempotent(stage: Stage) -> Race:
    f = stage.family()
    request_id, intent = f.cart_ready_intent()
    remember(intent["confirmationToken"])
    shots = identical("confirm", "POST", f.url(f"/{request_id}/confirm-checkout"),
                      json={"intentId": intent["intentId"],
                            "confirmationToken": intent["confirmationToken"]},
                      headers=f.headers(f.adult, **{"Idempotency-Key": "race-confirm"}))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["confirm"] == {200: CALLS}, statuses  # completed once, replayed
        assert f.intent_row(intent["intentId"]).status == "COMPLETED"
        assert audited(stage, "checkout.completed", f.household_id) == 1

    return Race(shots, {"confirm": {200}}, check)


@case("cart ready against a failed report",
      "POST /api/internal/purchase-intents/<intent_id>/cart-ready",
      "POST /api/internal/purchase-intents/<intent_id>/failed")
def _cart_ready_vs_failed(stage: Stage) -> Race:
    f = stage.family()
    intent = f.intent(f.approved())["intentId"]
    internal = {"X-Internal-Token": BUYFLOW_TOKEN}
    shots = halves(
        identical("cart", "POST", f"/api/internal/purchase-intents/{intent}/cart-ready",
                  json={"actorUserId": f.adult.id, "cart": CART}, headers=internal),
        identical("failed", "POST", f"/api/internal/purchase-intents/{intent}/failed",
                  json={"actorUserId": f.adult.id, "reason": "gone"}, headers=internal))

    def check(statuses: dict[str, Counter[int]]) -> None:
        # failed is allowed from CART_READY too: at most one of each, and failed wins last
        assert won(statuses, "cart", 200) <= 1 and won(statuses, "failed", 200) == 1, statuses
        assert f.intent_row(intent).status == "FAILED"

    return Race(shots, {"cart": {200, 409}, "failed": {200, 409}}, check)


@case("orchestrator events", "POST /api/internal/events")
def _events(stage: Stage) -> Race:
    f = stage.family()
    intent = f.intent(f.approved())["intentId"]
    shots = identical("event", "POST", "/api/internal/events",
                      json={"intentId": intent, "type": "cobrowse.step", "data": {"n": 1}},
                      headers={"X-Internal-Token": ORCHESTRATOR_TOKEN})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, IntentEvent, IntentEvent.intent_id == intent) == CALLS

    return Race(shots, {"event": {202}}, check, waitless=True)


@case("artifacts", "POST /api/internal/artifacts")
def _artifacts(stage: Stage) -> Race:
    f = stage.family()
    intent = f.intent(f.approved())["intentId"]
    shots = identical("artifact", "POST", "/api/internal/artifacts",
                      json={"intentId": intent, "kind": "receipt", "uri": "s3://r/1.pdf",
                            "sha256": "a" * 64},
                      headers={"X-Internal-Token": ORCHESTRATOR_TOKEN})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, IntentArtifact, IntentArtifact.intent_id == intent) == CALLS
        assert audited(stage, "intent.artifact", f.household_id) == CALLS

    return Race(shots, {"artifact": {201}}, check)


@case("webhook delivered again and again", "POST /api/webhooks/hyperbeam")
def _webhook(stage: Stage) -> Race:
    f = stage.family()
    intent = f.intent(f.approved())["intentId"]
    msg_id = f"msg_race_{stage.cases}"
    body = json.dumps({"type": "session.started", "intentId": intent, "data": {}}).encode()
    shots = identical("deliver", "POST", "/api/webhooks/hyperbeam", data=body,
                      headers=sign_webhook(body, msg_id))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert count(stage, WebhookEvent, WebhookEvent.webhook_id == msg_id) == 1

    return Race(shots, {"deliver": {200}}, check)


@case("delete household against every child write", "DELETE " + H,
      "POST " + H + "/requests", "POST " + H + "/items", "POST " + H + "/members",
      "POST " + R + "/approve", "POST /api/internal/events", "POST /api/internal/artifacts",
      "POST /api/internal/purchase-intents/<intent_id>/cart-ready",
      "POST /api/webhooks/hyperbeam")
def _delete_against_children(stage: Stage) -> Race:
    f = stage.family()
    newcomer = f.auth.user(f"race{stage.cases}-newcomer@example.test")
    submitted = f.submit()
    intent = f.intent(f.approved())["intentId"]
    child, owner = f.headers(f.child), f.headers(f.owner)
    internal = {"X-Internal-Token": ORCHESTRATOR_TOKEN}
    body = json.dumps({"type": "session.started", "intentId": intent, "data": {}}).encode()
    writes = [
        Shot("request", "POST", hh(f, "/requests"),
             json={"title": "Cap", "amountMinor": 900, "currency": "EUR"}, headers=child),
        Shot("item", "POST", hh(f, "/items"), json={"name": "Cap"}, headers=child),
        Shot("member", "POST", hh(f, "/members"), json={"email": newcomer.email, "role": "child"},
             headers=owner),
        Shot("approve", "POST", f.url(f"/{submitted}/approve"), headers=owner),
        Shot("event", "POST", "/api/internal/events",
             json={"intentId": intent, "type": "cobrowse.step", "data": {}}, headers=internal),
        Shot("artifact", "POST", "/api/internal/artifacts",
             json={"intentId": intent, "kind": "receipt", "uri": "s3://r/1", "sha256": "b" * 64},
             headers=internal),
        Shot("cart", "POST", f"/api/internal/purchase-intents/{intent}/cart-ready",
             json={"actorUserId": f.adult.id, "cart": CART},
             headers={"X-Internal-Token": BUYFLOW_TOKEN}),
        Shot("webhook", "POST", "/api/webhooks/hyperbeam", data=body,
             headers=sign_webhook(body, f"msg_del_{stage.cases}")),
    ]
    children = [writes[i % len(writes)] for i in range(CALLS)]
    shots = halves(identical("delete", "DELETE", hh(f), headers=owner), children)

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS // 2 - 1}, statuses
        erased_once(stage, f.household_id)

    ok = {"request": 201, "item": 201, "member": 201, "approve": 200, "event": 202,
          "artifact": 201, "cart": 200, "webhook": 200}
    allowed = {kind: {status, 404, 409} for kind, status in ok.items()}
    return Race(shots, {"delete": {204, 404}, **allowed}, check)


@case("delete household against new requests", "DELETE " + H,
      "POST " + H + "/requests")
def _delete_against_requests(stage: Stage) -> Race:
    f = stage.family()
    shots = halves(
        identical("delete", "DELETE", hh(f), headers=f.headers(f.owner)),
        identical("request", "POST", hh(f, "/requests"),
                  json={"title": "Cap", "amountMinor": 900, "currency": "EUR"},
                  headers=f.headers(f.adult)))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["delete"] == {204: 1, 404: CALLS // 2 - 1}, statuses
        erased_once(stage, f.household_id)

    return Race(shots, {"delete": {204, 404}, "request": {201, 404}}, check)


@case("register one e-mail", "POST /api/auth/register")
def _register(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-new@example.test"
    shots = identical("register", "POST", "/api/auth/register",
                      json={"email": email, "password": PASSWORD, "name": "Twin"})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["register"] == {201: 1, 409: CALLS - 1}, statuses
        assert count(stage, User, User.email == email) == 1
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        assert count(stage, AuditEvent, AuditEvent.action == "users.register",
                     AuditEvent.principal_id == user_id) == 1

    return Race(shots, {"register": {201, 409}}, check)


@case("log in", "POST /api/auth/login")
def _login(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-login@example.test"
    local_account(stage, email)
    shots = identical("login", "POST", "/api/auth/login",
                      json={"email": email, "password": PASSWORD})

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        assert count(stage, RefreshToken, RefreshToken.user_id == user_id) == CALLS

    return Race(shots, {"login": {200}}, check)


@case("refresh one token", "POST /api/auth/refresh")
def _refresh(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-refresh@example.test"
    local_account(stage, email)
    pair = local_login(stage, email)
    shots = identical("refresh", "POST", "/api/auth/refresh",
                      json={"refreshToken": pair["refreshToken"]})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "refresh", 200) <= 1, statuses
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        # at most one successor; the login's token spent
        assert count(stage, RefreshToken, RefreshToken.user_id == user_id) <= 2
        assert count(stage, RefreshToken, RefreshToken.user_id == user_id,
                     RefreshToken.used_at.is_not(None)) == 1

    return Race(shots, {"refresh": {200, 401, 409}}, check)


@case("confirm one address", "POST /api/auth/verify-email")
def _verify_email(stage: Stage) -> Race:
    from plugins.passwords import email_verification_token

    stage.cases += 1
    email = f"race{stage.cases}-verify@example.test"
    local_account(stage, email)
    with stage.app.app_context(), SESSIONS.get(stage.app)() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        token = email_verification_token(user)
    remember(token)
    shots = identical("verify", "POST", "/api/auth/verify-email", json={"token": token})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["verify"] == {204: 1, 400: CALLS - 1}, statuses
        assert count(stage, User, User.email == email, User.email_verified_at.is_not(None)) == 1
        assert count(stage, AuditEvent, AuditEvent.action == "users.email_verified",
                     AuditEvent.decision == "allowed") == stage.verified + 1
        stage.verified += 1

    return Race(shots, {"verify": {204, 400}}, check)


@case("change one password", "POST /api/auth/password")
def _change_password(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-password@example.test"
    local_account(stage, email)
    pair = local_login(stage, email)
    new = PASSWORD + " changed"
    remember(new)
    shots = identical("change", "POST", "/api/auth/password",
                      json={"currentPassword": PASSWORD, "newPassword": new},
                      headers={"Authorization": f"Bearer {pair['token']}"})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "change", 204) == 1, statuses
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        assert audited(stage, "auth.password.change", user_id) >= 1  # the winner (and denials)
        assert count(stage, AuditEvent, AuditEvent.action == "auth.password.change",
                     AuditEvent.chain == user_id, AuditEvent.decision == "allowed") == 1
        # every session ended; the new password logs in
        assert count(stage, AuthSession, AuthSession.user_id == user_id,
                     AuthSession.ended_at.is_(None)) == 0
        login = stage.app.test_client().post("/api/auth/login",
                                              json={"email": email, "password": new})
        assert login.status_code == 200, login.get_json()
        remember(json_object(login)["token"], json_object(login)["refreshToken"])

    # The losers that verify after the winner hold a wrong current password: 403, and those count
    # as failed logins of the account, so past its budget they are 429.
    return Race(shots, {"change": {204, 403, 409, 429}}, check)


@case("end one session", "DELETE /api/auth/sessions/<session_id>")
def _end_session(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-devices@example.test"
    local_account(stage, email)
    phone, laptop = local_login(stage, email), local_login(stage, email)
    sessions = stage.app.test_client().get(
        "/api/auth/sessions", headers={"Authorization": f"Bearer {laptop['token']}"})
    other = next(s["id"] for s in json_object(sessions)["items"] if not s["current"])
    shots = identical("end", "DELETE", f"/api/auth/sessions/{other}",
                      headers={"Authorization": f"Bearer {laptop['token']}"})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["end"] == {204: 1, 404: CALLS - 1}, statuses
        assert count(stage, AuthSession, AuthSession.id == other,
                     AuthSession.ended_at.is_not(None)) == 1
        with SESSIONS.get(stage.app)() as session:
            ended = session.scalars(select(AuditEvent.details).where(
                AuditEvent.action == "auth.session.ended")).all()
        assert sum(1 for details in ended if details.get("sessionId") == other) == 1
        refused = stage.app.test_client().post("/api/auth/refresh",
                                               json={"refreshToken": phone["refreshToken"]})
        assert refused.status_code == 401

    return Race(shots, {"end": {204, 404}}, check)


@case("log out", "POST /api/auth/logout")
def _logout(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-logout@example.test"
    local_account(stage, email)
    pair = local_login(stage, email)
    shots = identical("logout", "POST", "/api/auth/logout", json={},
                      headers={"Authorization": f"Bearer {pair['token']}"})

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        assert count(stage, RefreshToken, RefreshToken.user_id == user_id,
                     RefreshToken.revoked_at.is_(None)) == 0

    return Race(shots, {"logout": {204}}, check)


@case("refresh while logging out everywhere", "POST /api/auth/refresh", "POST /api/auth/logout")
def _refresh_vs_logout(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-both@example.test"
    local_account(stage, email)
    first, second = local_login(stage, email), local_login(stage, email)
    shots = halves(
        identical("refresh", "POST", "/api/auth/refresh",
                  json={"refreshToken": first["refreshToken"]}),
        identical("logout", "POST", "/api/auth/logout", json={"all": True},
                  headers={"Authorization": f"Bearer {second['token']}"}))

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert won(statuses, "refresh", 200) <= 1, statuses
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        # the last logout revoked every family; a successor minted after it is the only one left
        alive = count(stage, RefreshToken, RefreshToken.user_id == user_id,
                      RefreshToken.revoked_at.is_(None))
        assert alive <= won(statuses, "refresh", 200)

    return Race(shots, {"refresh": {200, 401, 409}, "logout": {204}}, check)


@case("exchange one authorization code", "POST /api/auth/oidc/exchange")
def _exchange(stage: Stage) -> Race:
    import secrets
    from datetime import timedelta

    from app.auth.sessions import hash_token
    from app.db import utcnow
    from app.models import LoginFlow
    from plugins.oidc import s256

    f = stage.family()
    code, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    remember(code)
    remember(verifier)
    with SESSIONS.get(stage.app)() as session:
        session.add(LoginFlow(
            state_hash=hash_token(secrets.token_urlsafe(16)), browser_hash="0" * 64, nonce="n",
            code_verifier="v" * 43, redirect_uri=SETTINGS["AUTH_OIDC_REDIRECT_URIS"],
            expires_at=utcnow() + timedelta(minutes=10), callback_at=utcnow(),
            code_hash=hash_token(code), code_expires_at=utcnow() + timedelta(seconds=60),
            spa_challenge=s256(verifier), user_id=f.adult.id))
        session.commit()
    shots = identical("exchange", "POST", "/api/auth/oidc/exchange",
                      json={"code": code, "codeVerifier": verifier})

    def check(statuses: dict[str, Counter[int]]) -> None:
        # the SPA that started the flow exchanges its code once: one session, the rest 401
        assert won(statuses, "exchange", 200) == 1, statuses
        assert count(stage, RefreshToken, RefreshToken.user_id == f.adult.id) == won(
            statuses, "exchange", 200)

    return Race(shots, {"exchange": {200, 401}}, check)


@case("ask for a password reset", "POST /api/auth/reset-password")
def _reset(stage: Stage) -> Race:
    stage.cases += 1
    email = f"race{stage.cases}-reset@example.test"
    local_account(stage, email)
    shots = identical("reset", "POST", "/api/auth/reset-password", json={"email": email})

    def check(statuses: dict[str, Counter[int]]) -> None:
        with SESSIONS.get(stage.app)() as session:
            user_id = session.scalars(select(User.id).where(User.email == email)).one()
        assert count(stage, AuditEvent, AuditEvent.action == "auth.reset.request",
                     AuditEvent.principal_id == user_id) == CALLS

    return Race(shots, {"reset": {202}}, check)


@case("confirm one password reset", "POST /api/auth/reset-password/confirm")
def _reset_confirm(stage: Stage) -> Race:
    from plugins.passwords import _fingerprint, _serializer

    stage.cases += 1
    email = f"race{stage.cases}-confirm@example.test"
    local_account(stage, email)
    with SESSIONS.get(stage.app)() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
    with stage.app.app_context():
        token = _serializer().dumps({"u": user.id, "p": _fingerprint(user.password_hash)})
    remember(token)
    shots = identical("confirm", "POST", "/api/auth/reset-password/confirm",
                      json={"token": token, "password": PASSWORD + "-new"})

    def check(statuses: dict[str, Counter[int]]) -> None:
        assert statuses["confirm"] == {204: 1, 401: CALLS - 1}, statuses
        assert count(stage, AuditEvent, AuditEvent.action == "auth.reset.confirm",
                     AuditEvent.principal_id == user.id, AuditEvent.decision == "allowed") == 1

    return Race(shots, {"confirm": {204, 401}}, check)


@case("public voice sessions", "POST /api/voice/live/public-session")
def _voice(stage: Stage) -> Race:
    shots = identical("voice", "POST", "/api/voice/live/public-session")
    return Race(shots, {"voice": {201}}, lambda statuses: None)


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("raced", CASES, ids=lambda c: c.name)
def test_race(stage: Stage, raced: Case) -> None:
    run(stage, raced.build(stage), raced.name)


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes(app: Flask) -> set[str]:
    routes = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in (rule.methods or set()) & WRITES:
            if contract_of(view) is not None or rule.rule.startswith("/api"):
                routes.add(f"{method} {rule.rule}")
    return routes


def _openapi_writes(app: Flask) -> set[str]:
    document = app.test_client().get("/api/openapi.json").get_json()
    return {f"{method.upper()} {_PATH_PARAMETER.sub(_snake, path)}"
            for path, operations in document["paths"].items()
            for method in operations if method.upper() in WRITES}


_PATH_PARAMETER = re.compile(r"{(\w+)}")


def _snake(match: re.Match[str]) -> str:
    return "<" + re.sub(r"(?<!^)([A-Z])", r"_\1", match.group(1)).lower() + ">"


def test_every_write_route_is_raced(stage: Stage) -> None:
    raced = {route for c in CASES for route in c.routes}
    live = _write_routes(stage.app)
    documented = _openapi_writes(stage.app)
    assert documented <= live, documented - live
    assert live - raced == set(), f"write routes without a race case: {sorted(live - raced)}"
    assert raced - live == set(), f"race cases of routes that do not exist: {raced - live}"


def test_no_secret_reached_the_server_log(stage: Stage) -> None:
    """After the races: the server's own output holds no remembered value (passwords, tokens,
    secrets, keys), no password hash and no SQL statement parameters."""
    from testkit.checks.log_leaks import remembered

    lines = [("gunicorn", line) for line in stage.log.read_text(errors="replace").splitlines()]
    assert lines, "the server wrote nothing: the capture is not working"
    assert leaks(lines, remembered()) == []
    shapes = re.compile(r"\$argon2|\[parameters:|\[SQL:|Key \(.*\)=\(|Bearer ey|whsec_")
    assert [text for _, text in lines if shapes.search(text)] == []
