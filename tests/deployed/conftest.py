"""As deployed: gunicorn with the repository's configuration against raw sockets, real Redis and
PostgreSQL under load and faults, and the SPA in the system Chromium (``browser``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testkit.servers.browser import CHROMIUM_ARGS, chromium_path, require_playwright


@pytest.fixture
def browser() -> Iterator[Any]:
    """The system Chromium, headless, through Playwright."""
    require_playwright()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
