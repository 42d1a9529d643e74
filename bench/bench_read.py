"""Secured household read vs a bare Flask endpoint returning the same body, same gunicorn config.

    .venv/bin/python bench/bench_read.py [--seconds 10] [--rounds 3] [--workers 2] [--db postgresql]

Measures GET /api/households/{id}/items?limit=20 (20 items, bearer token, membership check,
rate limiter on, response schema) against the bare endpoint; prints both, the ratio (target: at
least 55 %), the p99 ratio and the SQL statements per request. Also measured, to show where the
floor is: the same app's /healthz (all middleware, nothing else) and a bare Flask app running the
read's two SQL statements with no gateway at all (bench/bare_read_app.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import alternating, database, gunicorn, report, scratch_dir  # noqa: E402


def prepare(database_url: str, body_file: Path) -> tuple[dict[str, str], str, str, str]:
    """A migrated database with one household of 20 items, the read's body in ``body_file`` (the
    bare baseline serves it); returns env, path, token and the user's id."""
    from sqlalchemy import event

    from app import create_app
    from app.cli import migrate
    from app.db import Database
    from testkit.builders.households import AuthActions

    env = {
        "HEARTHGATE_ENV": "development",
        "DATABASE_URL": database_url,
        "AUTH_JWT_SECRET": "bench-secret-0123456789abcdef0123456789",
        "AUTH_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "RATELIMIT_AUTHENTICATED": "100000000/minute",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    migrate(env["DATABASE_URL"])
    app = create_app()
    auth = AuthActions(app)
    user = auth.user("bench@example.test")
    token = auth.token(user)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    household = client.post("/api/households", json={"name": "Bench"}, headers=headers).get_json()["id"]
    for n in range(20):
        client.post(f"/api/households/{household}/items",
                    json={"name": f"Item {n}", "category": "top", "color": "blue", "size": "M"},
                    headers=headers)
    path = f"/api/households/{household}/items?limit=20"
    statements: list[str] = []
    event.listen(Database.engine(app), "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    body = client.get(path, headers=headers)
    assert body.status_code == 200 and len(body.get_json()["items"]) == 20
    print(f"SQL statements per secured read: {len(statements)}")
    for statement in statements:
        print("   ", " ".join(statement.split())[:110])
    body_file.write_bytes(body.data)
    Database.engine(app).dispose()
    return env, path, token, user.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each kind runs once per round, in ABBA order; medians are reported")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        database_url = database(args.db, directory, stack)
        env, path, token, user = prepare(database_url, directory / "body.json")
        household = path.split("/")[3]
        # All three servers run side by side (an idle one costs nothing) so that the kinds
        # alternate: a machine that slows down for a while slows every kind, not just one.
        bare = stack.enter_context(gunicorn(
            "bench.bare_app:app", {"BENCH_BODY_FILE": str(directory / "body.json")}, args.workers))
        bare_read = stack.enter_context(gunicorn("bench.bare_read_app:app", env, args.workers))
        app = stack.enter_context(gunicorn("wsgi:app", env, args.workers))
        bearer = {"Authorization": f"Bearer {token}"}
        kinds: dict[str, tuple[str, dict[str, str]]] = {
            "baseline": (bare + "/bare", {}),
            # The same app's /healthz: every hook and header, no authentication, no database.
            "middleware": (app + "/healthz", {}),
            "floor": (f"{bare_read}/bare-read/{household}/{user}", {}),
            "secured": (app + path, bearer),
        }
        runs = alternating(kinds, args.rounds, seconds=args.seconds,
                           connections=args.connections)
        baseline, middleware, floor, secured = (
            runs["baseline"], runs["middleware"], runs["floor"], runs["secured"])
        assert floor.non_2xx == 0, "the bare read answered with errors"
        print(f"\nMedians of {args.rounds} rounds of {args.seconds}s per kind (ABBA order).")
        report("Hearthgate middleware only (GET /healthz of the same app)", baseline, middleware)
        report("Bare Flask doing the same two SQL statements and json.dumps (the data floor)",
               baseline, floor)
        report("Secured household read against that floor (what the gateway itself costs)",
               floor, secured)
        report(f"Secured household read (GET {path.split('?')[0].rsplit('/', 1)[0]}/…/items?limit=20,"
               f" {args.db}, {args.workers} workers, {args.connections} connections,"
               f" {args.seconds}s)",
               baseline, secured, target=0.55)


if __name__ == "__main__":
    main()
