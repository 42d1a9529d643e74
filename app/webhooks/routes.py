"""Routes of the webhooks blueprint."""

from app.webhooks import bp  # noqa: F401
