"""The service keeps no Flask session: its session interface never reads a cookie nor sets one.

Callers authenticate with bearer tokens only (a cookie the browser sends by itself is what a
cross-site request forges), and the one cookie of the OpenID browser flow is read by that flow
itself (``plugins.oidc``). Flask's default interface would still look for a session cookie and
build an empty session on every request; this one hands every request the same null session,
which refuses to be written.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import NullSession, SessionInterface

_NONE = NullSession()


class NoSession(SessionInterface):
    def open_session(self, app: Flask, request: Any) -> NullSession:
        return _NONE

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None  # never called: a null session is not saved


def init_no_session(app: Flask) -> None:
    app.session_interface = NoSession()
