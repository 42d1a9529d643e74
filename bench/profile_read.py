"""Where a secured read's time goes, in one process: the WSGI app called directly, N times.

    .venv/bin/python bench/profile_read.py [--db sqlite|postgresql] [--requests 5000] [--profile]
        [--route items|members|outfits|household] [--steps] [--not-found-every K]

Prepares the same database as ``bench/bench_read.py`` (one household of 20 items), then calls
the application's WSGI callable with a ready-made environ for each route measured, and prints
the mean CPU microseconds per request of each (this process's CPU time: on a shared machine, wall
time also counts the other processes; on PostgreSQL the database server's CPU is printed apart).
``--steps`` also prints, for each route measured, where its CPU goes step by step
(``bench/steps.py``: the gateway's steps clocked, each nested under the one that called it).
``--not-found-every K`` makes every K-th request one for an item that does not exist: a 404
after the membership read, whose transaction rolls back (the figures are then per request of
the mix). ``--profile`` runs the items list under
pyinstrument (a dev extra) and prints its call tree, to read where those microseconds go.
``--route`` measures one route only: under a sampling profiler (py-spy, a dev extra) its samples
are that route's alone, e.g.

    py-spy record -r 2000 -f raw -o items.txt -- .venv/bin/python bench/profile_read.py \
        --route items --requests 100000
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_read import prepare  # noqa: E402
from bench.harness import database, database_cpu_seconds, scratch_dir  # noqa: E402
from bench.steps import Steps  # noqa: E402

# A secured read's steps, in the order the gateway takes them (``Steps``: where each name is
# looked up). Every read route takes the same steps; the view's own reads run on ``fastread``.
READ_STEPS = (
    ("flask.app:Flask.__call__", "the WSGI application"),
    ("flask.app:Flask.preprocess_request", "Flask: before-request hooks (request id, CORS)"),
    ("app.gateway.contracts:_authenticate", "the bearer token"),
    ("app.ratelimit.policy:ContractLimiter.__call__", "the rate limit"),
    ("app.gateway.contracts:_validate_input", "the query: string checks, schema"),
    ("app.gateway.contracts:_check_permissions", "the permissions"),
    ("app.gateway.contracts:load_scope", "the membership"),
    ("app.db:Database.connection", "pool checkout, BEGIN (the row-security scope)"),
    ("app.fastread:_execute", "the statement, on the driver"),
    ("app.gateway.contracts:_check_role", "the role"),
    ("app.fastread:Read.rows", "a read (fastread.Read)"),
    ("app.gateway.contracts:_serialize", "the response schema"),
    ("app.db:Database.commit", "commit"),
    ("app.gateway.contracts:_respond", "the response"),
    ("flask.app:Flask.process_response", "Flask: after-request hooks (headers, log)"),
    ("flask.app:Flask.do_teardown_request", "Flask: teardown (back to the pool)"),
)


def caller(app: Any, path: str, token: str) -> Callable[[], int]:
    """One request to ``path`` through the whole WSGI stack; returns the status code."""
    route, _, query = path.partition("?")
    base = {
        "REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}", "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    status: list[str] = []

    def start_response(line: str, _headers: Any, _exc: Any = None) -> Any:
        status.append(line)
        return None

    def call() -> int:
        environ = dict(base, **{"wsgi.input": io.BytesIO()})
        body = app(environ, start_response)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
        return int(status.pop()[:3])

    return call


def mixed(found: Callable[[], int], missing: Callable[[], int], every: int
          ) -> Callable[[], int]:
    """``found``, except every ``every``-th call, which is ``missing`` (and must answer 404)."""
    count = 0

    def call() -> int:
        nonlocal count
        count += 1
        if count % every:
            return found()
        assert missing() == 404  # noqa: S101 - a bench's own check
        return 200

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--route", choices=("items", "members", "outfits", "household"))
    parser.add_argument("--steps", action="store_true",
                        help="print the CPU and wall time of each step of each route")
    parser.add_argument("--not-found-every", type=int, default=0, metavar="K",
                        help="every K-th request asks for an item that does not exist (404)")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        prepared = prepare(database(args.db, directory, stack), directory / "body.json")
        from app import create_app

        app = create_app()
        for name, path in prepared.read_paths.items():
            if args.route not in (None, name):
                continue
            call = caller(app, path, prepared.token)
            for _ in range(200):
                assert call() == 200, path
            if args.not_found_every:
                call = mixed(call, caller(app, prepared.read_paths["items"].split("?")[0]
                                          + "/itm_" + "0" * 26, prepared.token),
                             args.not_found_every)
            steps = Steps(READ_STEPS, calibrate=args.steps)
            with steps.installed() if args.steps else ExitStack():
                started, cpu = time.perf_counter(), time.process_time()
                server = database_cpu_seconds()
                for _ in range(args.requests):
                    call()
                elapsed, used = time.perf_counter() - started, time.process_time() - cpu
                server = (database_cpu_seconds() - server) / args.requests * 1e6
            print(f"{name:12s} {used / args.requests * 1e6:8.1f} µs CPU per request"
                  f" ({elapsed / args.requests * 1e6:.1f} µs wall"
                  + (f"; the database server: {server:.1f} µs of CPU" if server else "")
                  + f")  ({path})")
            if args.steps:
                print("\n".join(steps.report(args.requests)))
        if args.profile:
            from pyinstrument import Profiler

            call = caller(app, prepared.read_paths["items"], prepared.token)
            profiler = Profiler(interval=0.0001)
            profiler.start()
            for _ in range(args.requests):
                call()
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
