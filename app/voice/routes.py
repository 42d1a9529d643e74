"""Routes of the voice blueprint: public live voice sessions, limited per client IP."""

from __future__ import annotations

from flask import current_app

from app.gateway.contracts import endpoint
from app.gateway.errors import ServiceUnavailable
from app.gateway.schemas import Schema
from app.voice import bp, tokens

# Filled from the settings by the rate-limiting layer: str.format(**app.config), then parsed by
# `limits` ("12/60 seconds"), keyed by client IP like every anonymous limit.
VOICE_RATE_LIMIT = (
    "{VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS}/{VOICE_LIVE_PUBLIC_RATE_LIMIT_WINDOW_SECONDS} "
    "seconds"
)


class VoiceSessionOut(Schema):
    session_id: str
    token: str
    expires_in: int


@bp.post("/voice/live/public-session")
@endpoint(
    auth="public", response=VoiceSessionOut, status=201, rate_limit=VOICE_RATE_LIMIT,
    caller_bucket=False, sensitive=True, tags=("voice",),
    summary="A short-lived signed voice-session token (not an access token); limited per client "
            "IP to VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS per "
            "VOICE_LIVE_PUBLIC_RATE_LIMIT_WINDOW_SECONDS",
)
def public_session() -> VoiceSessionOut:
    config = dict(current_app.config)
    if not tokens.available(config):
        raise ServiceUnavailable("Voice sessions are not configured", component="voice")
    minted = tokens.mint(config)
    return VoiceSessionOut(session_id=minted.session_id, token=minted.token,
                           expires_in=minted.expires_in)
