"""Types of the fixtures that tests annotate their parameters with."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask


class MakeApp(Protocol):
    """The ``make_app`` fixture: an app with the test settings plus ``overrides``."""

    def __call__(self, **overrides: Any) -> Flask: ...


LimitedApp = MakeApp
"""The ``limited_app`` fixture: an app with rate limiting on, the test routes and ``overrides``."""
