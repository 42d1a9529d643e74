"""identity: verified email addresses, login sessions (one per refresh family) and household
invitations

Revision ID: h10id
Revises: a2
"""
import sqlalchemy as sa
from alembic import op

revision = "h10id"
down_revision = "a2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("auth_time", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_auth_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index("ix_auth_sessions_user_page", "auth_sessions",
                    ["user_id", "created_at", "id"], unique=False)
    # Families opened before this revision: one session each, from their tokens.
    op.execute(
        "INSERT INTO auth_sessions (id, user_id, method, auth_time, created_at, last_used_at, "
        "expires_at, ended_at) "
        "SELECT family_id, MIN(user_id), 'unknown', MIN(created_at), MIN(created_at), "
        "MAX(created_at), MAX(expires_at), "
        "CASE WHEN COUNT(*) = COUNT(revoked_at) THEN MAX(revoked_at) END "
        "FROM refresh_tokens GROUP BY family_id"
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint("role IN ('owner', 'adult', 'child')", name=op.f("ck_invitations_role")),
        sa.CheckConstraint("status IN ('PENDING', 'ACCEPTED', 'DECLINED', 'REVOKED')",
                           name=op.f("ck_invitations_status")),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"],
                                name=op.f("fk_invitations_household_id_households"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"],
                                name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"],
                                name=op.f("fk_invitations_decided_by_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_household_page", "invitations",
                    ["household_id", "created_at", "id"], unique=False)
    op.create_index("ix_invitations_email", "invitations", ["email", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_invitations_email", table_name="invitations")
    op.drop_index("ix_invitations_household_page", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_auth_sessions_user_page", table_name="auth_sessions")
    op.drop_table("auth_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
