"""Routes of the auth blueprint."""

from app.auth import bp  # noqa: F401
