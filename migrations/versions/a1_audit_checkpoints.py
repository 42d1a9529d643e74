"""audit checkpoints: signed chain heads

Revision ID: a1
Revises: i1
"""
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = "i1"  # chained after main's head (identity, after buy-flow); was 0001
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("chain", "seq", name=op.f("uq_audit_checkpoints_chain")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
