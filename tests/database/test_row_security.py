"""PostgreSQL row-level security, the wall behind the gateway (API.md, "Defense in depth at the
database"; the policies: migrations/versions/r1_row_level_security.py).

PostgreSQL only (``postgres_only``: deselected on SQLite, which has no row-level security; the
second wall exists on PostgreSQL alone). The suite runs as ``APP_ROLE``, the tables' owner and not
a superuser, so every PostgreSQL test runs with the policies in force.

Two households, each with a row in every table, are written outside any request (the ``system``
scope); then queries with no filter at all run through the app's own sessions and connections.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from flask import Flask, g
from psycopg import pq
from sqlalchemy import CursorResult, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from app import fastread
from app.config import ConfigurationRefused
from app.context import Principal
from app.db import SESSIONS, Base, Database, _row_security, build_engine, db, utcnow
from app.models import (
    AuditCheckpoint,
    AuditEvent,
    AuthSession,
    Household,
    IdempotencyKey,
    IntentArtifact,
    IntentEvent,
    Invitation,
    Item,
    LoginFlow,
    Member,
    Outfit,
    OutfitItem,
    PurchaseIntent,
    PurchaseRequest,
    RefreshToken,
    User,
    WebhookEvent,
)
from app.rowsecurity import BypassingRole, refuse_bypassing_role
from migrations.versions.r1_row_level_security import TABLES
from testkit.builders.households import AuthActions, json_object
from testkit.config import APP_ROLE
from testkit.servers.postgres import Postgres
from testkit.typing import MakeApp

pytestmark = pytest.mark.postgres_only

# Rows a signed-in user never sees, even their own: an OIDC login flow is the anonymous flow's.
FLOW_ONLY = {"login_flows"}


def _seed(session: Session, tag: str) -> tuple[str, str]:
    """A user and their household with one row in every table; (user id, household id)."""
    now = utcnow()
    user = User(email=f"{tag}@example.test", name=tag, issuer="local", subject=tag,
                email_verified_at=now)
    session.add(user)
    session.flush()
    household = Household(name=f"House {tag}", created_by=user.id)
    session.add(household)
    session.flush()
    hh = household.id
    session.add(Member(household_id=hh, user_id=user.id, role="owner"))
    session.add(RefreshToken(user_id=user.id, family_id=f"fam_{tag}",
                             token_hash=hashlib.sha256(tag.encode()).hexdigest(),
                             expires_at=now + timedelta(days=1)))
    session.add(AuthSession(id=f"fam_{tag}", user_id=user.id, method="password", auth_time=now,
                            expires_at=now + timedelta(days=1)))
    session.add(LoginFlow(state_hash=hashlib.sha256(b"s" + tag.encode()).hexdigest(),
                          browser_hash="b", nonce="n", code_verifier="v",
                          redirect_uri="https://example.test/cb", expires_at=now, user_id=user.id))
    item = Item(household_id=hh, name=f"Item {tag}", created_by=user.id)
    outfit = Outfit(household_id=hh, name=f"Outfit {tag}", created_by=user.id)
    session.add_all([item, outfit])
    session.flush()
    session.add(OutfitItem(outfit_id=outfit.id, item_id=item.id, household_id=hh))
    session.add(Invitation(household_id=hh, email=f"guest-{tag}@example.test", role="adult",
                           invited_by=user.id, expires_at=now + timedelta(days=1)))
    request = PurchaseRequest(household_id=hh, requested_by=user.id, title=f"Shoes {tag}",
                              amount_minor=100, currency="EUR", item_id=item.id)
    session.add(request)
    session.flush()
    intent = PurchaseIntent(household_id=hh, request_id=request.id, actor_user_id=user.id,
                            token_hash="0" * 64, expires_at=now + timedelta(hours=1))
    session.add(intent)
    session.flush()
    session.add_all([
        IntentEvent(household_id=hh, intent_id=intent.id, type="cart.updated", data={}),
        IntentArtifact(household_id=hh, intent_id=intent.id, kind="receipt",
                       uri=f"https://files.example.test/{tag}", sha256="1" * 64),
        WebhookEvent(webhook_id=f"wh_{tag}", household_id=hh, intent_id=intent.id,
                     type="session.ended", payload={}),
        IdempotencyKey(user_id=user.id, household_id=hh, key=f"key-{tag}", fingerprint="2" * 64,
                       status_code=201),
    ])
    for chain, household_id in ((hh, hh), (user.id, None)):
        session.add(AuditEvent(chain=chain, seq=1, household_id=household_id,
                               principal_id=user.id, action="test.seeded", details={},
                               prev_hash="0" * 64, hash=hashlib.sha256(chain.encode()).hexdigest()))
        session.add(AuditCheckpoint(chain=chain, seq=1, head_hash="3" * 64, key_id="k",
                                    signature="sig"))
    session.commit()
    return user.id, hh


@pytest.fixture
def households(app: Flask) -> tuple[tuple[str, str], tuple[str, str]]:
    """Households A and B (written outside any request: the ``system`` scope)."""
    with SESSIONS.get(app)() as session:
        return _seed(session, "alice"), _seed(session, "bob")


def _tables() -> list[str]:
    return [table.name for table in Base.metadata.sorted_tables]


def _as(user_id: str) -> Principal:
    return Principal(user_id=user_id, email=None, name=None)


def _everything(app: Flask, principal: Principal | None) -> Iterator[tuple[str, list[Any]]]:
    """Every table read with no filter at all, in a request of ``principal`` (or of nobody),
    through the request's session."""
    for table in _tables():
        with app.test_request_context("/api/anything"):
            if principal is not None:
                g.principal = principal
            every_row = text(f"SELECT * FROM {table}")  # noqa: S608 - names from our own metadata
            yield table, [tuple(row) for row in db.session.execute(every_row)]


def test_every_table_has_forced_row_level_security_and_policies(app: Flask) -> None:
    """A new table without policies fails here (the sweep reads the models' metadata)."""
    with Database.engine(app).connect() as connection:
        rows = connection.execute(text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")).all()
    state = {name: (enabled, forced, count > 0) for name, enabled, forced, count in rows}
    assert set(_tables()) == set(TABLES)
    assert {t: state[t] for t in _tables()} == {t: (True, True, True) for t in _tables()}
    assert state["alembic_version"] == (False, False, False)


def test_unfiltered_queries_of_a_member_return_none_of_another_household(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    (alice, alice_hh), (bob, bob_hh) = households
    seen = dict(_everything(app, _as(alice)))
    assert set(seen) == set(TABLES)
    for table, rows in seen.items():
        flat = " ".join(str(value) for row in rows for value in row)
        assert bob not in flat and bob_hh not in flat, table
        if table in FLOW_ONLY:
            assert rows == [], table
        else:
            assert rows, f"{table}: Alice sees her own rows"
    # Bob, in turn, sees his and not hers: the policies follow the principal, not the data.
    for table, rows in _everything(app, _as(bob)):
        flat = " ".join(str(value) for row in rows for value in row)
        assert alice not in flat and alice_hh not in flat, table


def test_without_any_identity_every_table_is_empty(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    assert dict(_everything(app, None)) == {table: [] for table in _tables()}
    # A raw connection of the engine, in the request, goes through the same start.
    with app.test_request_context("/api/anything"), Database.engine(app).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 0


def test_a_member_cannot_write_into_another_household(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    (alice, _), (_, bob_hh) = households
    ids = {"alice": alice, "bob_hh": bob_hh}
    refused = (
        "INSERT INTO items (id, household_id, name, created_at, updated_at) "
        "VALUES ('itm_x', :bob_hh, 'planted', now(), now())",
        "INSERT INTO members (household_id, user_id, role, joined_at) "
        "VALUES (:bob_hh, :alice, 'owner', now())",
    )
    for statement in refused:
        with app.test_request_context("/api/anything"):
            g.principal = _as(alice)
            with pytest.raises(ProgrammingError, match="row-level security"):
                db.session.execute(text(statement), ids)
            db.session.rollback()
    unfiltered = (
        "UPDATE items SET name = 'x' WHERE household_id = :bob_hh",
        "DELETE FROM outfit_items WHERE household_id = :bob_hh",
        "DELETE FROM households WHERE id = :bob_hh",
        "UPDATE members SET role = 'child' WHERE household_id = :bob_hh",
    )
    for statement in unfiltered:
        with app.test_request_context("/api/anything"):
            g.principal = _as(alice)
            result = db.session.execute(text(statement), ids)
            assert isinstance(result, CursorResult) and result.rowcount == 0, statement
            db.session.commit()
    with SESSIONS.get(app)() as session:  # system scope: Bob's rows are unchanged
        unchanged = session.execute(text(
            "SELECT (SELECT count(*) FROM outfit_items WHERE household_id = :bob_hh), "
            "(SELECT name FROM items WHERE household_id = :bob_hh), "
            "(SELECT role FROM members WHERE household_id = :bob_hh), "
            "(SELECT count(*) FROM households WHERE id = :bob_hh)"), ids).one()
    assert tuple(unchanged) == (1, "Item bob", "owner", 1)


def test_a_pooled_connection_carries_no_identity_into_the_next_request(
    make_app: Any, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    app = make_app(DATABASE_POOL_SIZE=1)
    (alice, alice_hh), _ = households
    probe = text("SELECT pg_backend_pid(), current_setting('hearthgate.user_id', true), "
                 "current_setting('hearthgate.households', true), (SELECT count(*) FROM items)")
    with app.test_request_context("/api/anything"):
        g.principal = _as(alice)
        first = db.session.execute(probe).one()
        db.session.commit()
        # A second transaction of the same request starts again from the principal.
        again = db.session.execute(probe).one()
    with app.test_request_context("/api/anything"):
        after = db.session.execute(probe).one()
    assert first[1:] == (alice, alice_hh, 1) and again == first
    assert after[0] == first[0], "the same pooled connection served the next request"
    assert after[1:] in {("", "", 0), (None, None, 0)}


def test_the_app_role_sees_nothing_in_a_direct_session_without_the_setting(
    postgres: Postgres, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    (alice, _), _ = households
    dsn = f"host=127.0.0.1 port={postgres.port} user={APP_ROLE} dbname=hearthgate"
    with psycopg.connect(dsn) as connection:
        assert connection.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False, False)
        assert connection.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'items'").fetchone() == (APP_ROLE,)
        counts = {table: connection.execute(
                      f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - metadata's
                  for table in _tables()}
        assert counts == {table: (0,) for table in _tables()}
        connection.execute("SELECT set_config('hearthgate.user_id', %s, true)", (alice,))
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_production_refuses_a_role_that_bypasses_row_level_security(postgres: Postgres) -> None:
    superuser = f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    with psycopg.connect(superuser) as connection, pytest.raises(BypassingRole):
        refuse_bypassing_role(connection)
    with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user={APP_ROLE} "
                         "dbname=hearthgate") as connection:
        refuse_bypassing_role(connection)  # the owner, bound by FORCE: accepted
    production = Flask(__name__)
    production.config.update(HEARTHGATE_ENV="production", DATABASE_ROW_SECURITY=True)
    engine = build_engine(postgres.url("postgres"))
    try:
        with pytest.raises(BypassingRole):
            _row_security(production, engine)
    finally:
        engine.dispose()


def test_the_factory_refuses_a_bypassing_role_as_a_configuration_problem(
    make_app: MakeApp, postgres: Postgres,
) -> None:
    """A production start as a superuser is refused like every other unsafe setting
    (``ConfigurationRefused``, naming ``DATABASE_URL``): gunicorn halts, and ``flask security
    check`` reports it without a traceback."""
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(HEARTHGATE_ENV="production", DATABASE_URL=postgres.url("hearthgate"))
    assert refused.value.problems == [
        "DATABASE_URL: the database role is a superuser or has BYPASSRLS: row-level security "
        "would not apply; production refuses it (connect as the tables' owner or a lesser role)"]


def test_reading_under_the_policies_gives_the_transaction_no_id(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    """No policy asks for the transaction's id in a way that assigns one: a read stays a read
    (no transaction id, no commit record to flush)."""
    (alice, _), _ = households
    for table in _tables():
        with app.test_request_context("/api/anything"):
            g.principal = _as(alice)
            db.session.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - metadata's
            assigned = db.session.scalar(text("SELECT pg_current_xact_id_if_assigned()"))
            assert assigned is None, table


def test_the_audit_chain_functions_run_under_the_policies(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    """``audit_chain_head`` and ``audit_append`` (migration a3) run as the invoker: Alice reads
    no head of Bob's household chain (whose seeded entry the system scope does see) and cannot
    append to it; her own household's chain links to its seeded entry."""
    from app import audit

    (alice, alice_hh), (_, bob_hh) = households
    head = text("SELECT head_seq FROM audit_chain_head(:chain, 1)")
    with SESSIONS.get(app)() as session:
        assert session.execute(head, {"chain": bob_hh}).scalars().all() == [1]
    with app.test_request_context("/api/anything"):
        g.principal = _as(alice)
        assert db.session.execute(head, {"chain": bob_hh}).scalars().all() == []
        db.session.rollback()
        with pytest.raises(ProgrammingError, match="row-level security"):
            audit.record("test.planted", household_id=bob_hh)
        db.session.rollback()
        own = audit.record("test.own", household_id=alice_hh)
        db.session.commit()
    assert (own.chain, own.seq, own.prev_hash) == (alice_hh, 2, hashlib.sha256(
        alice_hh.encode()).hexdigest())
    with SESSIONS.get(app)() as session:
        chains = session.execute(text(
            "SELECT chain, count(*) FROM audit_events GROUP BY chain ORDER BY chain")).all()
    assert sorted(map(tuple, chains)) == sorted([(alice_hh, 2), (bob_hh, 1), (alice, 1), (
        households[1][0], 1)])


class _Recording:
    """A psycopg connection that records what goes through its ``execute``."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.executed: list[Any] = []

    def execute(self, *args: Any) -> Any:
        self.executed.append(args)
        return self.connection.execute(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


def test_the_scope_begins_its_transaction_in_the_same_round_trip_and_quotes_its_values(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    """On an idle connection the scope goes out with ``BEGIN``, as one simple query (not
    through psycopg's ``execute``, which would send its own ``BEGIN`` first); the values are
    quoted, whatever they hold; the settings end with the transaction. Inside a transaction the
    scope is one statement of it."""
    from app.rowsecurity import Scope, apply_scope

    (alice, _), _ = households
    probe = ("SELECT current_setting('hearthgate.user_id', true), "
             "current_setting('hearthgate.flow', true), (SELECT count(*) FROM items)")
    raw = Database.engine(app).raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        awkward = ("o'brien", "back\\slash'); SET ROLE postgres; --", "é東 \"x\"", alice)
        for scope in [Scope(user_id=value) for value in awkward] + [Scope(flow="it's")]:
            recording = _Recording(driver)
            assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
            apply_scope(recording, scope)
            assert recording.executed == []
            assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS
            user, flow, items = driver.execute(probe).fetchone()
            assert (user or "", flow or "") == (scope.user_id, scope.flow)
            assert items == (1 if scope.user_id == alice else 0)
            driver.rollback()
            assert [value or "" for value in driver.execute(probe).fetchone()] == ["", "", ""]
            driver.rollback()
        driver.execute("SELECT 1")  # a transaction already open: the scope is one statement
        recording = _Recording(driver)
        apply_scope(recording, Scope(user_id=alice))
        assert len(recording.executed) == 1
        assert [value or "" for value in driver.execute(probe).fetchone()] == [alice, "", 1]
        driver.rollback()
    finally:
        raw.close()


def test_with_row_security_off_a_read_runs_in_one_transaction_without_a_scope(
    make_app: MakeApp, postgres: Postgres,
) -> None:
    """``DATABASE_ROW_SECURITY=false`` (only to measure what the scope costs, bench/bench_rls.py,
    with a role the policies do not bind): a read-only request states no scope, its statements
    still share one transaction (the driver's own ``BEGIN``, the first statement's)."""
    app = make_app(DATABASE_URL=postgres.url("hearthgate"), DATABASE_ROW_SECURITY=False)
    auth = AuthActions(app)
    owner = auth.user("off@example.test")
    headers, client = auth.headers(owner), app.test_client()
    household = json_object(client.post("/api/households", json={"name": "Off"},
                                        headers=headers))["id"]
    assert client.post(f"/api/households/{household}/items", json={"name": "Coat"},
                       headers=headers).status_code == 201
    reads: list[tuple[Any, ...]] = []
    probe = "SELECT current_setting('hearthgate.user_id', true), transaction_timestamp()"

    real_execute = fastread._execute

    def execute(connection: Any, compiled: Any, params: Any) -> Any:
        driver = connection.connection.driver_connection
        scope, began = driver.execute(probe).fetchone()
        reads.append((scope or "", began, driver.pgconn.transaction_status))
        return real_execute(connection, compiled, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastread, "_execute", execute)
        listed = client.get(f"/api/households/{household}/items", headers=headers)
    assert listed.status_code == 200
    assert [i["name"] for i in json_object(listed)["items"]] == ["Coat"]
    assert len(reads) == 2  # membership, page
    assert {(scope, status) for scope, _, status in reads} == {("", pq.TransactionStatus.INTRANS)}
    assert reads[0][1] == reads[1][1]  # the same transaction


def _policies(connection: Any) -> set[tuple[Any, ...]]:
    return {tuple(tuple(v) if isinstance(v, list) else v for v in row)  # roles: an array
            for row in connection.execute(text(
        "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check "
        "FROM pg_policies WHERE schemaname = 'public'"))}


def test_migration_r2_renames_policies_only_and_its_downgrade_restores_r1(
    postgres: Postgres,
) -> None:
    """What every policy admits is r1's: at r2 each policy has r1's table, command, kind and
    expressions (as PostgreSQL stores them), only ``hg_a_…`` is ``hg_z_…``; the downgrade gives
    r1's policies back and drops the scope function."""
    from alembic import command

    from app.cli import alembic_config
    from migrations.versions.r2_row_security_cost import RENAMED

    postgres.psql("CREATE DATABASE policies_r2")
    engine = build_engine(postgres.url("policies_r2"))
    config: Any = alembic_config(engine)
    function = text("SELECT count(*) FROM pg_proc WHERE proname = 'row_security_user_scope'")
    try:
        command.upgrade(config, "a3")
        with engine.connect() as connection:
            before, before_function = _policies(connection), connection.scalar(function)
        command.upgrade(config, "r2")
        with engine.connect() as connection:
            after, after_function = _policies(connection), connection.scalar(function)
        command.downgrade(config, "a3")
        with engine.connect() as connection:
            again, again_function = _policies(connection), connection.scalar(function)
    finally:
        engine.dispose()
    renamed = {(table, name.replace("hg_a_", "hg_z_"))
               for name, tables in RENAMED.items() for table in tables}
    assert {(t, n) for t, n, *_ in after if n.startswith("hg_z_")} == renamed
    assert {(t, n) for t, n, *_ in before if n.startswith("hg_a_")} == {
        (t, n.replace("hg_z_", "hg_a_")) for t, n in renamed}
    assert {(t, n.replace("hg_z_", "hg_a_"), *rest) for t, n, *rest in after} == before
    assert len(after) == len(before) > 60
    assert again == before
    assert (before_function, after_function, again_function) == (0, 1, 0)


def _sub_plans(node: dict[str, Any], inside: bool = False) -> list[tuple[str, int]]:
    """(node type, loops) of every node of an EXPLAIN ANALYZE plan under a sub-plan."""
    inside = inside or node.get("Parent Relationship") == "SubPlan"
    found = [(str(node["Node Type"]), int(node["Actual Loops"]))] if inside else []
    for child in node.get("Plans", []):
        found += _sub_plans(child, inside)
    return found


# Each table's rows of Alice, by the column that names her or her household.
_ALICE_ROWS = {
    "users": "id = :alice", "refresh_tokens": "user_id = :alice",
    "auth_sessions": "user_id = :alice", "idempotency_keys": "user_id = :alice",
    "households": "id = :hh", "audit_checkpoints": "chain = :hh",
}


def test_a_members_own_rows_are_admitted_without_running_a_sub_plan(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    """PostgreSQL tests a table's permissive policies in descending order of their names: the
    policy that admits a member's rows (``hg_z_…``, migration r2) is tested first, so every
    table's read of Alice's own rows, the read that checks her membership and the scope's read of
    her user row run none of the other policies' sub-plans (``invitations``, ``members``)."""
    (alice, alice_hh), _ = households
    reads = {table: f"SELECT * FROM {table} WHERE "  # noqa: S608 - names from our own metadata
             + _ALICE_ROWS.get(table, "household_id = :hh")
             for table in _tables() if table not in FLOW_ONLY}
    reads["membership"] = ("SELECT households.id, members.role FROM households JOIN members ON "
                           "members.household_id = households.id "
                           "WHERE households.id = :hh AND members.user_id = :alice")
    with_sub_plans = set()
    for name, sql in reads.items():
        with app.test_request_context("/api/anything"):
            g.principal = _as(alice)
            rows = db.session.execute(text(sql), {"alice": alice, "hh": alice_hh}).all()
            plan = db.session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"),
                                      {"alice": alice, "hh": alice_hh}).scalar_one()
            db.session.rollback()
        assert rows, f"{name}: Alice reads her own rows"
        sub_plans = _sub_plans(plan[0]["Plan"])
        with_sub_plans |= {name} if sub_plans else set()
        assert [(node, loops) for node, loops in sub_plans if loops] == [], name
    # The policies do bring sub-plans (not run) where the claim has something to prove.
    assert {"users", "households", "items", "membership", "audit_events"} <= with_sub_plans


def test_the_scope_of_a_user_is_their_households_and_address(
    app: Flask, households: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    """``row_security_user_scope`` (migration r2) sets the user, their households (every one,
    however many) and their address with whether it is proved; for an unknown user, no
    household and no address; every value quoted (the id goes in as a literal)."""
    from app.rowsecurity import Scope, apply_scope

    (alice, alice_hh), (bob, bob_hh) = households
    with SESSIONS.get(app)() as session:  # the system scope
        carol = User(email="carol@example.test", name="carol", issuer="local", subject="carol")
        dave = User(email=None, name="dave", issuer="local", subject="dave")
        session.add_all([carol, dave])
        session.flush()
        session.add(Member(household_id=bob_hh, user_id=alice, role="adult"))
        session.add(Member(household_id=alice_hh, user_id=carol.id, role="child"))
        session.commit()
        carol_id, dave_id = carol.id, dave.id
    expected = {
        alice: ({alice_hh, bob_hh}, "valice@example.test"),
        bob: ({bob_hh}, "vbob@example.test"),
        carol_id: ({alice_hh}, "ucarol@example.test"),
        dave_id: (set(), "u"),
        "usr_unknown": (set(), ""),
        "o'brien\\'); SET ROLE postgres; --": (set(), ""),
    }
    probe = ("SELECT current_setting('hearthgate.user_id', true), "
             "current_setting('hearthgate.households', true), "
             "current_setting('hearthgate.email', true), current_user")
    raw = Database.engine(app).raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        seen = {}
        for user_id in expected:
            apply_scope(driver, Scope(user_id=user_id))
            user, listed, email, role = driver.execute(probe).fetchone()
            driver.rollback()
            assert (user, role) == (user_id, APP_ROLE)
            seen[user_id] = (set(listed.split(",")) - {""}, email)
    finally:
        raw.close()
    assert seen == expected
