"""Routes of the voice blueprint."""

from app.voice import bp  # noqa: F401
