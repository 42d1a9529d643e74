"""audit checkpoints as signed notes: note text, Merkle root and frontier; event ids by hash

Revision ID: a2
Revises: h5a
"""
import sqlalchemy as sa
from alembic import op

revision = "a2"
down_revision = "h5a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("root_hash", sa.String(length=44), nullable=True))
        batch.add_column(sa.Column("frontier", sa.Text(), nullable=True))
    op.create_index(op.f("ix_audit_events_hash"), "audit_events", ["hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_hash"), table_name="audit_events")
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("frontier")
        batch.drop_column("root_hash")
        batch.drop_column("note")
