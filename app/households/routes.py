"""Routes of the households blueprint."""

from app.households import bp  # noqa: F401
