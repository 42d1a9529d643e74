"""Routes of the buyflow blueprint."""

from app.buyflow import bp  # noqa: F401
