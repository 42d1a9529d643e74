"""audit_append: a chain entry appended in one round trip; audit_chain_head: lock and head

Revision ID: a3
Revises: r1

PostgreSQL only (SQLite appends in a savepoint and retries, ``app/audit/writer.py``).

``audit_chain_head(chain, key)`` takes the chain's transaction-scoped advisory lock ``key``, then
reads the chain's head. ``audit_append(...)`` does the same, then links the entry to that head
and inserts it: the entry's hash is SHA-256 over its canonical serialization, which the writer
hands over as the bytes before the ``prevHash`` value and the bytes between it and the ``seq``
value (``app.audit.chain.hash_parts``), the only two fields the head decides. It returns the
entry's ``seq``, ``prev_hash`` and ``hash``, and the writer checks that hash against its own
(``app.audit.chain.entry_hash``) before the transaction goes on: the two can never disagree
unnoticed.

Both are VOLATILE: under READ COMMITTED each statement of a VOLATILE function takes a fresh
snapshot, so the SELECT that follows the lock sees every entry committed by the previous holder
(who released it at commit): the real head. Both run as the invoker (not SECURITY DEFINER), so
the row-level security policies of ``audit_events`` (revision r1) bind their SELECT and INSERT as
they bind the caller's own statements.
"""

from __future__ import annotations

from alembic import op

revision = "a3"
down_revision = "r1"
branch_labels = None
depends_on = None

CHAIN_HEAD = """
CREATE FUNCTION audit_chain_head(p_chain varchar, p_key bigint)
RETURNS TABLE (head_seq bigint, head_hash varchar)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_key);
    RETURN QUERY
        SELECT e.seq, e.hash::varchar FROM audit_events AS e
        WHERE e.chain = p_chain ORDER BY e.seq DESC LIMIT 1;
END
$$
"""

APPEND = """
CREATE FUNCTION audit_append(
    p_chain varchar, p_key bigint, p_household_id varchar, p_principal_id varchar,
    p_action varchar, p_resource varchar, p_decision varchar, p_correlation_id varchar,
    p_details json, p_created_at timestamp, p_before bytea, p_between bytea, p_genesis varchar)
RETURNS TABLE (new_seq bigint, new_prev_hash varchar, new_hash varchar)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    v_seq bigint;
    v_prev varchar;
    v_hash varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(p_key);
    SELECT e.seq, e.hash INTO v_seq, v_prev FROM audit_events AS e
        WHERE e.chain = p_chain ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := p_genesis;
    END IF;
    v_seq := v_seq + 1;
    -- prevHash is hex (a JSON string needs no escaping), seq a decimal integer, the last field.
    v_hash := encode(sha256(p_before || convert_to('"' || v_prev || '"', 'UTF8') || p_between
                            || convert_to(v_seq::text || '}', 'UTF8')), 'hex');
    INSERT INTO audit_events (chain, seq, household_id, principal_id, action, resource,
                              decision, correlation_id, details, created_at, prev_hash, hash)
        VALUES (p_chain, v_seq, p_household_id, p_principal_id, p_action, p_resource,
                p_decision, p_correlation_id, p_details, p_created_at, v_prev, v_hash);
    RETURN QUERY SELECT v_seq, v_prev, v_hash;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CHAIN_HEAD)
    op.execute(APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION audit_append(varchar, bigint, varchar, varchar, varchar, varchar, "
               "varchar, varchar, json, timestamp, bytea, bytea, varchar)")
    op.execute("DROP FUNCTION audit_chain_head(varchar, bigint)")
