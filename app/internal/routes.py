"""Routes of the internal blueprint."""

from app.internal import bp  # noqa: F401
