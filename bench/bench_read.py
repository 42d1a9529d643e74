"""Secured household read vs a bare Flask endpoint returning the same body, same gunicorn config.

    .venv/bin/python bench/bench_read.py [--seconds 10] [--workers 2] [--db postgresql]

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

from bench.harness import database, gunicorn, report, scratch_dir, wrk  # noqa: E402


def prepare(database_url: str, body_file: Path) -> tuple[dict[str, str], str, str, str]:
    """A migrated database with one household of 20 items, the read's body in ``body_file`` (the
    bare baseline serves it); returns env, path, token and the user's id."""
    from sqlalchemy import event

    from app import create_app
    from app.db import Database
    from tests.conftest import migrate
    from tests.helpers import AuthActions

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
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        database_url = database(args.db, directory, stack)
        env, path, token, user = prepare(database_url, directory / "body.json")
        with gunicorn("bench.bare_app:app", {"BENCH_BODY_FILE": str(directory / "body.json")},
                      args.workers) as url:
            baseline = wrk(url + "/bare", seconds=args.seconds, connections=args.connections)
        household = path.split("/")[3]
        with gunicorn("bench.bare_read_app:app", env, args.workers) as url:
            floor = wrk(f"{url}/bare-read/{household}/{user}", seconds=args.seconds,
                        connections=args.connections)
            assert floor.non_2xx == 0, "the bare read answered with errors"
        with gunicorn("wsgi:app", env, args.workers) as url:
            # The same app's /healthz: every hook and header, no authentication, no database.
            middleware = wrk(url + "/healthz", seconds=args.seconds, connections=args.connections)
            secured = wrk(url + path, seconds=args.seconds, connections=args.connections,
                          headers={"Authorization": f"Bearer {token}"})
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
