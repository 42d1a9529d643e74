"""login flows of the authorization-code login

Revision ID: i1
Revises: b1
"""
import sqlalchemy as sa
from alembic import op

revision = "i1"
down_revision = "b1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_flows",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("callback_at", sa.DateTime(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("consumed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_flows_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_flows")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_login_flows_code_hash")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_login_flows_state_hash")),
    )


def downgrade() -> None:
    op.drop_table("login_flows")
