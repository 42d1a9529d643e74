"""row-level security on PostgreSQL: every table of household data and every user's own rows

Revision ID: r1
Revises: enc1

The second wall behind the gateway (API.md, "Defense in depth at the database"): a query that
forgets its household filter still returns no other household's rows. PostgreSQL only; on SQLite
this revision does nothing (SQLite has no row-level security).

Every table below is ENABLE + FORCE ROW LEVEL SECURITY, so the policies bind the table owner too
(Heroku's role owns the tables). Policies are permissive (a row passes when one of them admits it)
and read four transaction-local settings, set by ``app/rowsecurity.py`` at the start of every
transaction with ``set_config(..., true)``; when none is set nothing is visible:

``hearthgate.user_id``
    The verified principal (a bearer token's ``sub``). A household's rows are visible and
    writable when this user is a member of it; the user's own rows (user row, refresh tokens,
    auth sessions, idempotency keys, their audit chain) when they name this user.
``hearthgate.households``
    The user's households, comma-separated, computed in SQL from the user's own member rows in
    the same statement that sets ``hearthgate.user_id`` (never from the client). ``members``
    cannot ask ``members`` in its own policy (infinite recursion), so its policy reads this
    setting; every other table asks "this setting, or EXISTS a member row of this user" (the
    EXISTS admits a household this very transaction joined or created).
``hearthgate.email``
    The user's address, after ``v`` when it is proved and ``u`` when not, read in the same
    statement from the user's own row: an invitee reads the invitations to their address (and the household's and
    inviter's names), and decides them and joins only with a proved address. ``users`` and
    ``invitations`` ask each other otherwise (recursion).
``hearthgate.service``
    A machine caller the gateway verified, named by its token setting: ``BUYFLOW_INTERNAL_TOKEN``
    (cart-ready, failed), ``ORCHESTRATOR_INTERNAL_TOKEN`` (events, artifacts) and
    ``webhook:hyperbeam``. Each is admitted on the tables its routes touch only (below). The
    value ``system`` is code that runs outside any request: the command line and the process's
    own timers (checkpoints, anomaly scan, sinks); the app never sets it inside a request.
``hearthgate.flow``
    An anonymous identity flow, one value per public route family, each admitted on the identity
    tables it must touch and never on household data:

    - ``login`` (password login): users, refresh tokens, auth sessions, audit chains of no
      household;
    - ``refresh``: the same (it finds the token by its hash, rotates it, touches its session);
    - ``register``: users and audit chains of no household;
    - ``verify_email`` (address confirmation by mailed link or code): users, audit chains of no
      household;
    - ``reset`` (password reset request and confirm): users, refresh tokens and auth sessions
      (a reset ends every session), audit chains of no household;
    - ``oidc`` (authorize, callback, exchange): login flows, users, refresh tokens, auth
      sessions, audit chains of no household;
    - ``development`` (``DEVELOPMENT_AUTH_ENABLED``, refused in production): the development
      user's sign-in before its request has a principal: users, audit chains of no household.

    Within those tables a flow is not narrowed to one row: the flow's own code does that with the
    credential it was given (an email, a token hash, a state hash). Invitations are read by the
    signed-in invitee (their verified address), not by an anonymous token.

Any request may append to, and read, the system chain (anonymous failures and denials are
recorded there and its head must be read to link the next entry); it holds no household data.
"""

from __future__ import annotations

from alembic import op

revision = "r1"
down_revision = "enc1"
branch_labels = None
depends_on = None

UID = "current_setting('hearthgate.user_id', true)"
HOUSEHOLDS = "string_to_array(current_setting('hearthgate.households', true), ',')"
SERVICE = "current_setting('hearthgate.service', true)"
FLOW = "current_setting('hearthgate.flow', true)"
# 'v' (proved) or 'u' (not proved) followed by the address.
EMAIL = "substr(current_setting('hearthgate.email', true), 2)"
EMAIL_VERIFIED = "left(current_setting('hearthgate.email', true), 1)"

SYSTEM = f"{SERVICE} = 'system'"
BUYFLOW = "'BUYFLOW_INTERNAL_TOKEN'"
ORCHESTRATOR = "'ORCHESTRATOR_INTERNAL_TOKEN'"
WEBHOOK = "'webhook:hyperbeam'"
CALLBACKS = f"{SERVICE} IN ({BUYFLOW}, {ORCHESTRATOR}, {WEBHOOK})"
IDENTITY_FLOWS = "'login', 'refresh', 'register', 'verify_email', 'reset', 'oidc', 'development'"
SESSION_FLOWS = "'login', 'refresh', 'reset', 'oidc'"
# Own-transaction rows: a household this transaction inserted (its owner row is inserted next).
# ``_if_assigned``: a transaction that wrote has an id; asking never gives a reader one (which
# ``pg_current_xact_id()`` would: a transaction id and a commit record for every read).
CREATED_HERE = "xmin = pg_current_xact_id_if_assigned()::xid"


def member(column: str) -> str:
    """``column`` (table-qualified: inside the subquery a bare name would be the member row's)
    names a household of the caller."""
    return (f"({column} = ANY({HOUSEHOLDS}) OR EXISTS (SELECT 1 FROM members hg_m "
            f"WHERE hg_m.household_id = {column} AND hg_m.user_id = {UID}))")


def verified_address_of_caller() -> str:
    return f"(CASE WHEN {EMAIL_VERIFIED} = 'v' THEN {EMAIL} END)"


HOUSEHOLD_DATA = (
    "items", "outfits", "outfit_items", "invitations", "purchase_requests", "purchase_intents",
    "intent_events", "intent_artifacts", "webhook_events",
)
# Every table with a policy: the tests sweep the metadata against this list.
TABLES = (
    "users", "refresh_tokens", "auth_sessions", "login_flows", "households", "members",
    *HOUSEHOLD_DATA, "idempotency_keys", "audit_events", "audit_checkpoints",
)

# (table, policy, command, USING, WITH CHECK); None: the clause is absent. PostgreSQL joins a
# table's permissive policies with OR in descending order of their names and evaluates the OR
# from the left, so the common case's policy, named ``hg_a_…`` here, is tested last, after every
# other policy of its table; revision r2 renames these ``hg_z_…`` so that they are tested first.
Policy = tuple[str, str, str, str | None, str | None]


def policies() -> list[Policy]:
    rows: list[Policy] = [(t, "hg_system", "ALL", SYSTEM, SYSTEM) for t in TABLES]
    own_user = f"user_id = {UID}"
    rows += [
        ("users", "hg_a_own", "ALL", f"id = {UID}", f"id = {UID}"),
        ("users", "hg_co_member", "SELECT", f"EXISTS (SELECT 1 FROM members hg_m WHERE "
         f"hg_m.user_id = users.id AND hg_m.household_id = ANY({HOUSEHOLDS}))", None),
        ("users", "hg_inviter", "SELECT", "EXISTS (SELECT 1 FROM invitations hg_i WHERE "
         f"hg_i.invited_by = users.id AND hg_i.email = {EMAIL})", None),
        ("users", "hg_flow", "ALL", f"{FLOW} IN ({IDENTITY_FLOWS})", f"{FLOW} IN ({IDENTITY_FLOWS})"),
        ("refresh_tokens", "hg_a_own", "ALL", own_user, own_user),
        ("refresh_tokens", "hg_flow", "ALL", f"{FLOW} IN ({SESSION_FLOWS})",
         f"{FLOW} IN ({SESSION_FLOWS})"),
        ("auth_sessions", "hg_a_own", "ALL", own_user, own_user),
        ("auth_sessions", "hg_flow", "ALL", f"{FLOW} IN ({SESSION_FLOWS})",
         f"{FLOW} IN ({SESSION_FLOWS})"),
        ("login_flows", "hg_flow", "ALL", f"{FLOW} = 'oidc'", f"{FLOW} = 'oidc'"),
        # Households: members; the creator of a household inserted in this transaction.
        ("households", "hg_a_member", "ALL", member("households.id"), member("households.id")),
        ("households", "hg_create", "INSERT", None, f"created_by = {UID}"),
        ("households", "hg_created_here", "SELECT", f"created_by = {UID} AND {CREATED_HERE}", None),
        ("households", "hg_created_here_lock", "UPDATE", f"created_by = {UID} AND {CREATED_HERE}",
         f"created_by = {UID}"),
        # The invitee sees the household of an invitation to their verified address.
        ("households", "hg_invited", "SELECT", "EXISTS (SELECT 1 FROM invitations hg_i WHERE "
         f"hg_i.household_id = households.id AND hg_i.email = {verified_address_of_caller()})",
         None),
        # Callbacks lock the household of the intent (a row lock needs the UPDATE policy).
        ("households", "hg_callbacks", "SELECT", CALLBACKS, None),
        ("households", "hg_callbacks_lock", "UPDATE", CALLBACKS, CALLBACKS),
        # Members: no query of members here (recursion); the caller's households are a setting.
        ("members", "hg_a_read", "SELECT", f"user_id = {UID} OR household_id = ANY({HOUSEHOLDS})",
         None),
        ("members", "hg_change", "UPDATE", f"household_id = ANY({HOUSEHOLDS})",
         f"household_id = ANY({HOUSEHOLDS})"),
        ("members", "hg_remove", "DELETE", f"household_id = ANY({HOUSEHOLDS})", None),
        # Joining: one's own row, as the owner of a household created in this transaction, or
        # with the role of an invitation to one's verified address.
        ("members", "hg_join", "INSERT", None,
         f"user_id = {UID} AND ((role = 'owner' AND EXISTS (SELECT 1 FROM households hg_h "
         f"WHERE hg_h.id = members.household_id AND hg_h.created_by = {UID} "
         f"AND hg_h.{CREATED_HERE})) OR EXISTS (SELECT 1 FROM invitations hg_i WHERE "
         "hg_i.household_id = members.household_id AND hg_i.role = members.role AND "
         f"hg_i.email = {verified_address_of_caller()}))"),
        # The invitee (by address, verified or not: the route tells an unverified one why).
        ("invitations", "hg_invitee", "SELECT", f"email = {EMAIL}", None),
        ("invitations", "hg_invitee_decide", "UPDATE", f"email = {verified_address_of_caller()}",
         f"email = {verified_address_of_caller()}"),
        ("idempotency_keys", "hg_a_own", "ALL",
         f"{own_user} AND {member('idempotency_keys.household_id')}",
         f"{own_user} AND {member('idempotency_keys.household_id')}"),
    ]
    rows += [(t, "hg_a_member", "ALL", member(f"{t}.household_id"), member(f"{t}.household_id"))
             for t in HOUSEHOLD_DATA]
    for table in ("purchase_intents", "purchase_requests"):
        rows += [(table, "hg_callbacks", "SELECT", CALLBACKS, None),
                 (table, "hg_callbacks_update", "UPDATE", CALLBACKS, CALLBACKS)]
    for table in ("intent_events", "intent_artifacts"):
        rows += [(table, "hg_orchestrator", "SELECT", f"{SERVICE} = {ORCHESTRATOR}", None),
                 (table, "hg_orchestrator_add", "INSERT", None, f"{SERVICE} = {ORCHESTRATOR}")]
    rows += [("webhook_events", "hg_webhook", "SELECT", f"{SERVICE} = {WEBHOOK}", None),
             ("webhook_events", "hg_webhook_add", "INSERT", None, f"{SERVICE} = {WEBHOOK}")]
    rows += _audit_policies()
    return rows


def _invitee(column: str) -> str:
    """``column`` names a household that invited the caller's address, the invitation pending or
    decided by the caller in this very transaction: accepting, declining and a refusal (an
    unproved address) are recorded on the household's chain."""
    return (f"EXISTS (SELECT 1 FROM invitations hg_i WHERE hg_i.household_id = {column} "
            f"AND hg_i.email = {EMAIL} AND (hg_i.status = 'PENDING' OR "
            f"(hg_i.decided_by = {UID} AND hg_i.{CREATED_HERE})))")


def _audit_policies() -> list[Policy]:
    """Chains: a household's (its members; its invitee deciding; callbacks), a user's own (that
    user; identity flows) and the system chain (any request may read and append it)."""
    rows: list[Policy] = []
    for table, column, is_household in (
        ("audit_events", "audit_events.household_id", "household_id IS NOT NULL"),
        ("audit_checkpoints", "audit_checkpoints.chain", "chain LIKE 'hh\\_%'"),
    ):
        household = f"{is_household} AND {member(column)}"
        readable = (f"({household}) OR (NOT ({is_household}) AND chain IN ({UID}, 'system')) "
                    f"OR (NOT ({is_household}) AND {FLOW} IN ({IDENTITY_FLOWS})) "
                    f"OR ({is_household} AND {CALLBACKS}) "
                    f"OR ({is_household} AND {_invitee(column)})")
        rows += [(table, "hg_a_read", "SELECT", readable, None),
                 (table, "hg_append", "INSERT", None, readable),
                 # Erasure deletes a household's chain and its checkpoints (owners).
                 (table, "hg_erase", "DELETE", household, None)]
    return rows


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for table, name, command, using, check in policies():
        clauses = f" USING ({using})" if using else ""
        clauses += f" WITH CHECK ({check})" if check else ""
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command}{clauses}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, name, *_ in policies():
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
