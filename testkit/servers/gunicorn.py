"""The application under gunicorn (gthread workers) on the test database, and calls raced at it
together (a barrier releases them)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from testkit.builders.families import BUYFLOW_TOKEN, ORCHESTRATOR_TOKEN
from testkit.servers.processes import free_port, gunicorn_process


@contextmanager
def gunicorn_server(database_url: str, jwt_secret: str, workers: int = 4, threads: int = 4,
                    log_path: Path | None = None, **settings: str) -> Iterator[str]:
    """``wsgi:app`` under gunicorn (gthread workers) on the given database, with ``settings``
    added to the environment and its output in ``log_path``; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads), "HEARTHGATE_ENV": "test",
        "DATABASE_URL": database_url, "DATABASE_POOL_SIZE": "8",
        "AUTH_JWT_SECRET": jwt_secret, "SECRET_STORE_URL": "memory://",
        "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
        "BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN, "REQUIRE_BUYFLOW_INTERNAL_TOKEN": "true",
        "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN, "REQUIRE_INTERNAL_EVENT_TOKEN": "true",
        **settings,
    }
    with gunicorn_process("wsgi:app", env, log_path):
        yield f"http://127.0.0.1:{port}"


def race(calls: list[Callable[[requests.Session], requests.Response]]) -> list[tuple[int, int]]:
    """Run every call at once (a barrier releases them together); (index, status) per call."""
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> tuple[int, int]:
        with requests.Session() as session:
            barrier.wait(timeout=60)
            return index, calls[index](session).status_code

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, range(len(calls))))
