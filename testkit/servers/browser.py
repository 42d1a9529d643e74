"""Real components of the browser test: the API under gunicorn, the demo SPA on a static server
of its own origin, and the system Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit import ROOT
from testkit.servers.processes import free_port, gunicorn_process, missing, stop, wait_for_port

DEMO = ROOT / "demo"
ARTIFACTS = ROOT / "test-artifacts"
# TESTING.md: without the background-networking flags Chromium keeps calling home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The Debian ``chromium`` binary; fails in CI and skips elsewhere when it is missing."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("Chromium is not installed (Debian package chromium)")
    raise AssertionError("unreachable")


def require_playwright() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the Python package playwright is not installed (pip install .[dev])")


@dataclass(frozen=True)
class ApiServer:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def api_server(database_url: str, jwt_secret: str, cors_origins: list[str],
               log: Path) -> Iterator[ApiServer]:
    """``wsgi:app`` under gunicorn (2 workers × 2 threads) with local accounts, the demo helpers
    and ``CORS_ORIGINS``; its stdout and stderr go to ``log``."""
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2",
        "HEARTHGATE_ENV": "development", "DATABASE_URL": database_url,
        "AUTH_JWT_SECRET": jwt_secret, "SECRET_STORE_URL": "memory://",
        "AUTH_LOCAL_ACCOUNTS_ENABLED": "true", "DEMO_HELPERS_ENABLED": "true",
        "CORS_ORIGINS": " ".join(cors_origins), "LOG_LEVEL": "INFO",
        "GUNICORN_ACCESS_LOG": "1",  # the OPTIONS lines prove the preflights happened
        # Generous limits: the flow is a handful of calls plus their preflights.
        "RATELIMIT_ENABLED": "true", "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_AUTHENTICATED": "1000/minute", "RATELIMIT_ANONYMOUS": "1000/minute",
        "AUTH_LOGIN_FAILURES_PER_ACCOUNT": "100/minute", "AUTH_LOGIN_FAILURES_PER_IP": "100/minute",
    }
    with gunicorn_process("wsgi:app", env, log):
        yield ApiServer(url=f"http://127.0.0.1:{port}", log=log)


@contextmanager
def static_server(directory: Path = DEMO) -> Iterator[str]:
    """``python -m http.server`` for ``directory`` on its own port, i.e. its own origin."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
