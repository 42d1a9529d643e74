"""the ID-token claims a login session was opened with (refresh tokens, code-flow logins)

Revision ID: j1
Revises: a1
"""
import sqlalchemy as sa
from alembic import op

revision = "j1"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("login_claims", sa.JSON(), nullable=True))
    op.add_column("login_flows", sa.Column("claims", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("login_flows", "claims")
    op.drop_column("refresh_tokens", "login_claims")
