"""What Flask-Limiter's request hooks would cost this application: ``GET /healthz`` called
in-process (straight through the WSGI callable, no server, no network), per request, on

- ``bare``: a bare Flask app answering the same JSON;
- ``hearthgate``: this application (``RATELIMIT_ENABLED`` on; ``/healthz`` is not limited);
- ``+flask-limiter``: the same with Flask-Limiter's extension installed and no limit declared;
- ``+flask-limiter 1 limit``: the same with one default limit, counted on every request.

Each round is timed in this process's CPU time (``time.process_time``), not wall-clock time, so
that the other processes of a shared machine weigh little; the rounds interleave the four, so
that a drift falls on all alike. The median of the rounds is the result, and the differences
are what to read. Flask-Limiter is not a
dependency of this project: install it next to it for this measurement only.

    pip install 'flask-limiter>=4,<5'
    python bench/bench_flask_limiter.py [--requests 2000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask, jsonify  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def bare_app() -> Flask:
    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return app


def hearthgate_app(folder: str) -> Flask:
    from app import create_app

    return create_app({
        "HEARTHGATE_ENV": "test",
        "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
        "SECRET_STORE_URL": "memory://",
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOG_LEVEL": "WARNING",
        "AUDIT_CHECKPOINT_INTERVAL_SECONDS": 0,
        "AUDIT_ANOMALY_ENABLED": False,
    })


def with_flask_limiter(app: Flask, default_limits: list[str]) -> Flask:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    Limiter(get_remote_address, app=app, storage_uri="memory://", default_limits=default_limits)
    return app


def per_request_seconds(app: WsgiApp, environ: dict[str, Any], requests: int) -> float:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    started = time.process_time()
    for _ in range(requests):
        env = environ.copy()
        env["wsgi.input"] = io.BytesIO(b"")
        body = app(env, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    elapsed = time.process_time() - started
    if set(statuses) != {"200 OK"}:
        raise SystemExit(f"not every answer was 200: {sorted(set(statuses))}")
    return elapsed / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and app")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    try:
        import flask_limiter
    except ImportError:
        raise SystemExit("Flask-Limiter is not installed: pip install 'flask-limiter>=4,<5'") from None
    with tempfile.TemporaryDirectory() as folder:
        apps: dict[str, WsgiApp] = {
            "bare": bare_app(),
            "hearthgate": hearthgate_app(folder),
            "+flask-limiter": with_flask_limiter(hearthgate_app(folder), []),
            "+flask-limiter 1 limit": with_flask_limiter(
                hearthgate_app(folder), ["100000000/minute"]
            ),
        }
        environ = EnvironBuilder(path="/healthz").get_environ()
        for app in apps.values():
            per_request_seconds(app, environ, args.requests // 4)  # warm-up
        runs: dict[str, list[float]] = {label: [] for label in apps}
        labels = list(apps)
        for n in range(args.rounds):
            order = labels[n % len(labels):] + labels[: n % len(labels)]
            for label in order if n % 2 == 0 else reversed(order):
                runs[label].append(per_request_seconds(apps[label], environ, args.requests))
    version = getattr(flask_limiter, "__version__", "?")
    print(f"GET /healthz in-process, CPU time, {args.requests} requests x {args.rounds} rounds, "
          f"Flask-Limiter {version}, medians:")
    medians = {label: statistics.median(values) * 1e6 for label, values in runs.items()}
    base = medians["hearthgate"]
    for label, micros in medians.items():
        delta = "" if label in ("bare", "hearthgate") else f"  (+{micros - base:.0f} µs)"
        print(f"  {label:24} {micros:6.0f} µs/request{delta}")


if __name__ == "__main__":
    main()
