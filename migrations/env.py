"""Alembic environment: the engine comes from the application (``flask db …``)."""

from __future__ import annotations

from alembic import context

import app.models  # noqa: F401  - registers every table on the metadata
from app.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from app import create_app
        from app.db import Database

        engine = Database.engine(create_app())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `flask db upgrade`")
run_migrations_online()
