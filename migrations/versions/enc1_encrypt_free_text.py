"""encryption at rest: the encrypted columns become TEXT (a sealed value is longer than the
plaintext, and JSON columns now hold sealed JSON text); existing values are encrypted under the
current key when the migration runs with the app's keys (`flask db upgrade`), else
`flask data rotate` encrypts them.

Revision ID: enc1
Revises: h10id
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = "enc1"
down_revision = "h10id"
branch_labels = None
depends_on = None

# (table, column, type before this revision, nullable)
CHANGED = (
    ("purchase_requests", "url", sa.String(length=2048), True),
    ("intent_events", "data", sa.JSON(), False),
    ("intent_artifacts", "uri", sa.String(length=2048), False),
    ("webhook_events", "payload", sa.JSON(), False),
    ("login_flows", "claims", sa.JSON(), True),
    ("refresh_tokens", "login_claims", sa.JSON(), True),
    ("auth_sessions", "user_agent", sa.String(length=256), True),
    ("auth_sessions", "ip", sa.String(length=64), True),
)
log = logging.getLogger("alembic.runtime.migration")


def _keyring():  # type: ignore[no-untyped-def]
    """The app's key ring when the migration runs inside the app (``flask db upgrade``)."""
    from flask import has_app_context

    from app.crypto.keys import KEYRING

    if not has_app_context():
        return None
    return KEYRING.find()


def upgrade() -> None:
    for table, column, old, nullable in CHANGED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=old, type_=sa.Text(),
                               existing_nullable=nullable, postgresql_using=f"{column}::text")
    ring = _keyring()
    if ring is not None:
        from app.crypto.rotate import seal_all

        written = seal_all(op.get_bind(), ring)
        log.info("encrypted %d stored values under key %s", written, ring.current)
    else:
        log.warning("no data encryption keys here: run `flask data rotate` to encrypt the values "
                    "stored before this revision (until then they are refused when read)")


def downgrade() -> None:
    ring = _keyring()
    if ring is not None:
        from app.crypto.rotate import open_all

        open_all(op.get_bind(), ring)
    for table, column, old, nullable in CHANGED:
        using = f"{column}::json" if isinstance(old, sa.JSON) else None
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.Text(), type_=old,
                               existing_nullable=nullable, postgresql_using=using)
