"""The application under gunicorn (gthread workers) on the test database, and calls raced at it
together (a barrier releases them)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeAlias

import requests

from testkit.builders.families import BUYFLOW_TOKEN, ORCHESTRATOR_TOKEN
from testkit.servers.processes import free_port, gunicorn_process


@contextmanager
def gunicorn_server(database_url: str, jwt_secret: str, *, workers: int | None = 4,
                    threads: int | None = 4, log_path: Path | None = None, ready_calls: int = 16,
                    settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """``wsgi:app`` under gunicorn on the given database, with ``settings`` added to the
    environment (they win over the defaults here) and its output in ``log_path``; yields its base
    URL once ``ready_calls`` calls of ``/readyz`` have each answered 200, so that every worker has
    booted and connected before the caller's races. ``workers`` and ``threads`` set
    WEB_CONCURRENCY and GUNICORN_THREADS; ``None`` leaves them unset (gunicorn.conf.py's
    defaults: 2 sync workers)."""
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1", "PORT": str(port), "HEARTHGATE_ENV": "test",
        "DATABASE_URL": database_url, "DATABASE_POOL_SIZE": "8",
        "AUTH_JWT_SECRET": jwt_secret, "SECRET_STORE_URL": "memory://",
        "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
        "BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN, "REQUIRE_BUYFLOW_INTERNAL_TOKEN": "true",
        "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN, "REQUIRE_INTERNAL_EVENT_TOKEN": "true",
        **(settings or {}),
    }
    for name, count in (("WEB_CONCURRENCY", workers), ("GUNICORN_THREADS", threads)):
        if count is None:
            env.pop(name, None)  # also when this process's own environment has it
        else:
            env[name] = str(count)
    base = f"http://127.0.0.1:{port}"
    with gunicorn_process("wsgi:app", env, log_path):
        for _ in range(ready_calls):
            ready = requests.get(f"{base}/readyz", timeout=30)
            assert ready.status_code == 200, (ready.status_code, ready.text)
        yield base


Call: TypeAlias = Callable[[requests.Session], requests.Response]
"""One raced call: a request sent on the session it is given."""


def race_responses(calls: list[Call]) -> list[requests.Response]:
    """Run every call at once, each on its own session in its own thread (a barrier releases
    them together); the answers in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=60)
            return call(session)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def race(calls: list[Call]) -> list[tuple[int, int]]:
    """``race_responses``, as (index, status) per call in call order."""
    return [(index, answer.status_code) for index, answer in enumerate(race_responses(calls))]
