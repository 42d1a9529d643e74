"""WSGI module for the gunicorn rate-limit tests: the real factory, configured from the
environment, plus the test routes. ``LIMIT_TEST_OWN`` is the routes' own limit."""

from __future__ import annotations

import os

from flask import Response

from app import create_app
from testkit.apps.limits import bp

app = create_app({"LIMIT_TEST_OWN": os.environ.get("LIMIT_TEST_OWN", "20/minute")})
app.register_blueprint(bp)


@app.after_request
def tell_worker(response: Response) -> Response:
    """Which worker answered, so a test can show that requests spread over all of them."""
    response.headers["X-Test-Worker"] = str(os.getpid())
    return response
