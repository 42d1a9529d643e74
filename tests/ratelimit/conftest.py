"""Rate limits in one process and on shared storage, and the budgets of failed authentication.
``limited_app`` builds apps with limiting on and the test routes of ``testkit.apps.limits``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.ratelimit.setup import rate_limit_storage
from testkit.apps import limits as limit_routes
from testkit.typing import LimitedApp, MakeApp


@pytest.fixture
def limited_app(make_app: MakeApp) -> Iterator[LimitedApp]:
    """An app with rate limiting on, the test routes, and the given limits."""

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_ANONYMOUS": "1000/minute",
            "RATELIMIT_AUTHENTICATED": "1000/minute",
            "LIMIT_TEST_OWN": "1000/minute",
            **overrides,
        }
        app = make_app(**config)
        app.register_blueprint(limit_routes.bp)
        built.append(app)
        return app

    built: list[Flask] = []
    yield build
    for app in built:
        rate_limit_storage(app).close()
