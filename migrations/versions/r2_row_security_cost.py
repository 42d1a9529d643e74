"""row_security_user_scope: a user's scope from a plan PL/pgSQL keeps; the common policy first

Revision ID: r2
Revises: a3

PostgreSQL only (SQLite has no row-level security). What every policy admits is unchanged: the
policies of revision r1 keep their expressions, only names change, and the function runs the very
statement ``app/rowsecurity.py`` sent before.

``row_security_user_scope(user_id)`` sets a signed-in user's three settings (r1's docstring):
``hearthgate.user_id``, then, under the policies that this admits, the user's households and
address. Sent as a statement with the values quoted into it (the scope goes out with ``BEGIN`` in
one simple query), PostgreSQL parsed, rewrote and planned it at every transaction's start: its
sub-selects read ``members`` and ``users``, whose policies bring sub-plans of their own
(``invitations``, ``members``): about 250 µs for ``BEGIN`` and the scope, of which 180-240 µs of
planning, where ``BEGIN`` alone takes 16 (``bench/explain_rls.py``). In a PL/pgSQL function the
statement is planned once per connection and kept, with the user as its parameter: 45 µs.
SECURITY INVOKER, as the audit functions (revision a3): the policies bind it as they bind the
caller's own statements.

The common policy first. PostgreSQL joins a table's permissive policies with OR in descending
order of their names (it reads them by name and builds the list in reverse) and evaluates OR from
the left, so r1's ``hg_a_…`` policies, meant to come first, came last: a member's read of their
household row ran the ``hg_invited`` sub-plan (an index scan of ``invitations``) before reaching
``hg_a_member``, and the scope's read of the user's own row ran ``hg_inviter`` and
``hg_co_member`` before ``hg_a_own``. Here they are named ``hg_z_…``, which sorts after every
other policy's name (``hg_system``, ``hg_webhook``, ...), so a member's own rows are admitted by
their first test. ``tests/database/test_row_security.py`` checks with EXPLAIN that a member's
reads run no sub-plan.
"""

from __future__ import annotations

from alembic import op

revision = "r2"
down_revision = "a3"
branch_labels = None
depends_on = None

# r1's policies named to come first, by table: the member's, the user's own, the readers'.
HOUSEHOLD_DATA = (
    "items", "outfits", "outfit_items", "invitations", "purchase_requests", "purchase_intents",
    "intent_events", "intent_artifacts", "webhook_events",
)
RENAMED: dict[str, tuple[str, ...]] = {
    "hg_a_member": ("households", *HOUSEHOLD_DATA),
    "hg_a_own": ("users", "refresh_tokens", "auth_sessions", "idempotency_keys"),
    "hg_a_read": ("members", "audit_events", "audit_checkpoints"),
}
FIRST = "hg_z_"  # sorts after every other policy name: PostgreSQL tests it first

# The statement app/rowsecurity.py sent until this revision, with the user as its parameter. The
# user id first: the sub-selects that follow are under the policies, which admit the user's own
# rows once it is set (the target list is evaluated in order, each sub-select when first reached).
USER_SCOPE = """
CREATE FUNCTION row_security_user_scope(p_user varchar) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('hearthgate.user_id', p_user, true),
        set_config('hearthgate.households', (SELECT coalesce(string_agg(household_id, ','), '')
                                            FROM members WHERE user_id = p_user), true),
        set_config('hearthgate.email', coalesce((SELECT CASE WHEN email_verified_at IS NULL
                                                      THEN 'u' ELSE 'v' END || coalesce(email, '')
                                                 FROM users WHERE id = p_user), ''), true);
END
$$
"""


def _rename(old_prefix: str, new_prefix: str) -> None:
    for name, tables in RENAMED.items():
        suffix = name.removeprefix("hg_a_")
        for table in tables:
            op.execute(f"ALTER POLICY {old_prefix}{suffix} ON {table} "
                       f"RENAME TO {new_prefix}{suffix}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(USER_SCOPE)
    _rename("hg_a_", FIRST)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rename(FIRST, "hg_a_")
    op.execute("DROP FUNCTION row_security_user_scope(varchar)")
