"""the SPA's S256 challenge that binds an authorization-code login's exchange to the SPA instance
that started it

Revision ID: h5a
Revises: j1
"""
import sqlalchemy as sa
from alembic import op

revision = "h5a"
down_revision = "j1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_flows", sa.Column("spa_challenge", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("login_flows", "spa_challenge")
