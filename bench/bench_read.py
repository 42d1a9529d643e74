"""Secured household reads vs a bare Flask endpoint returning the same body, same gunicorn config.

    .venv/bin/python bench/bench_read.py [--seconds 10] [--rounds 3] [--workers 2] [--db postgresql]
        [--notes 200]

Measures GET /api/households/{id}/items?limit=20 (20 items, bearer token, membership check,
rate limiter on, response schema) against the bare endpoint; prints both, the ratio (target: at
least 55 %), the p99 ratio and the SQL statements per request. Also measured, to show where the
floors are: the same app's /healthz (all middleware, nothing else); the read's two SQL statements
on the raw driver, one connection per worker (bench/raw_read_app.py, the driver's floor); the same
two statements through SQLAlchemy Core (bench/bare_read_app.py); and three more secured reads of
the same household (members, outfits, the household itself), each against the bare endpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import alternating, database, gunicorn, report, scratch_dir  # noqa: E402

BENCH_DATA_KEY = "YmVuY2gtZGF0YS1lbmNyeXB0aW9uLWtleS0wMTIzNDU="  # 32 bytes, bench databases only


@dataclass(frozen=True)
class Prepared:
    env: dict[str, str]
    token: str
    user: str
    household: str
    read_paths: dict[str, str]  # name → path of a secured read; "items" is the one compared


def prepare(database_url: str, body_file: Path, notes: int = 0, plain: bool = False) -> Prepared:
    """A migrated database with one household of 20 items (each with ``notes`` characters of
    notes, an encrypted column), 5 members and 10 outfits, the items read's body in
    ``body_file`` (the bare baseline serves it). ``plain``: encryption replaced by the bench's
    passthrough (bench/plain_fields_app.py)."""
    from app import create_app
    from app.cli import migrate
    from app.db import Database
    from testkit.builders.households import AuthActions
    from testkit.database import statements_sent

    env = {
        "HEARTHGATE_ENV": "development",
        "DATABASE_URL": database_url,
        "AUTH_JWT_SECRET": "bench-secret-0123456789abcdef0123456789",
        "AUTH_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "RATELIMIT_AUTHENTICATED": "100000000/minute",
        "LOG_LEVEL": "WARNING",
        "DATA_ENCRYPTION_KEYS": BENCH_DATA_KEY,
    }
    os.environ.update(env)
    if plain:
        from bench.plain_fields_app import disable_encryption

        disable_encryption()
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
                    json={"name": f"Item {n}", "category": "top", "color": "blue", "size": "M",
                          **({"notes": (f"note {n} " * notes)[:notes]} if notes else {})},
                    headers=headers)
    for n in range(4):
        other = auth.user(f"member{n}@example.test")
        invitation = client.post(f"/api/households/{household}/members", headers=headers,
                                 json={"email": other.email, "role": "adult"}).get_json()
        client.post(f"/api/invitations/{invitation['id']}/accept",
                    headers={"Authorization": f"Bearer {auth.token(other)}"})
    items = client.get(f"/api/households/{household}/items?limit=20", headers=headers).get_json()
    for n in range(10):
        client.post(f"/api/households/{household}/outfits", headers=headers, json={
            "name": f"Outfit {n}", "itemIds": [i["id"] for i in items["items"][n:n + 3]]})
    path = f"/api/households/{household}/items?limit=20"
    read_paths = {
        "items": path,
        "members": f"/api/households/{household}/members?limit=20",
        "outfits": f"/api/households/{household}/outfits?limit=20",
        "household": f"/api/households/{household}",
    }
    for name, other_path in read_paths.items():
        answer = client.get(other_path, headers=headers)
        assert answer.status_code == 200, (name, answer.get_json())
    assert len(client.get(read_paths["members"], headers=headers).get_json()["items"]) == 5
    with statements_sent(app) as statements:  # through SQLAlchemy, and through app.fastread
        body = client.get(path, headers=headers)
    assert body.status_code == 200 and len(body.get_json()["items"]) == 20
    print(f"SQL statements per secured read: {len(statements)}")
    for statement in statements:
        print("   ", statement[:110])
    body_file.write_bytes(body.data)
    Database.engine(app).dispose()
    return Prepared(env, token, user.id, household, read_paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each kind runs once per round, in ABBA order; medians are reported")
    parser.add_argument("--notes", type=int, default=0,
                        help="characters of notes (an encrypted column) on every item")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        database_url = database(args.db, directory, stack)
        prepared = prepare(database_url, directory / "body.json", args.notes)
        env, household, user = prepared.env, prepared.household, prepared.user
        # All servers run side by side (an idle one costs nothing) so that the kinds
        # alternate: a machine that slows down for a while slows every kind, not just one.
        bare = stack.enter_context(gunicorn(
            "bench.bare_app:app", {"BENCH_BODY_FILE": str(directory / "body.json")}, args.workers))
        raw_read = stack.enter_context(gunicorn("bench.raw_read_app:app", env, args.workers))
        bare_read = stack.enter_context(gunicorn("bench.bare_read_app:app", env, args.workers))
        app = stack.enter_context(gunicorn("wsgi:app", env, args.workers))
        bearer = {"Authorization": f"Bearer {prepared.token}"}
        kinds: dict[str, tuple[str, dict[str, str]]] = {
            "baseline": (bare + "/bare", {}),
            # The same app's /healthz: every hook and header, no authentication, no database.
            "middleware": (app + "/healthz", {}),
            "raw floor": (f"{raw_read}/raw-read/{household}/{user}", {}),
            "core floor": (f"{bare_read}/bare-read/{household}/{user}", {}),
            **{f"secured {name}": (app + path, bearer)
               for name, path in prepared.read_paths.items()},
        }
        runs = alternating(kinds, args.rounds, seconds=args.seconds,
                           connections=args.connections)
        baseline, raw, core, secured = (
            runs["baseline"], runs["raw floor"], runs["core floor"], runs["secured items"])
        assert raw.non_2xx == 0 and core.non_2xx == 0, "a floor answered with errors"
        print(f"\nMedians of {args.rounds} rounds of {args.seconds}s per kind (ABBA order).")
        report("Hearthgate middleware only (GET /healthz of the same app)", baseline,
               runs["middleware"])
        report("Raw driver (sqlite3/psycopg), same two statements and json.dumps (the driver's "
               "floor)", baseline, raw)
        report("SQLAlchemy Core, same two statements and json.dumps (bench/bare_read_app.py)",
               baseline, core)
        report("Secured items read against the driver's floor (target ≥ 75 %)", raw, secured,
               target=0.75)
        report(f"Secured items read (GET /api/households/…/items?limit=20, {args.db}, "
               f"{args.workers} workers, {args.connections} connections, {args.seconds}s) "
               "against bare", baseline, secured, target=0.55)
        for name in prepared.read_paths:
            if name != "items":
                report(f"Secured {name} read (GET {prepared.read_paths[name].split(household)[1] or '/'}"
                       f" of a household) against bare", baseline, runs[f"secured {name}"])
        print("\nSummary (ratio to bare, p99 ratio to bare, server CPU per request):")
        for name, result in runs.items():
            cpu = f"{result.server_cpu_us:6.0f} µs" if result.server_cpu_us else "     -"
            print(f"  {name:18s} {result.requests_per_second / baseline.requests_per_second:7.1%}"
                  f"  p99 {result.p99_ms / baseline.p99_ms:5.2f}x  CPU {cpu}"
                  f"  non-2xx {result.non_2xx}")
        print(f"  secured items / raw floor: "
              f"{secured.requests_per_second / raw.requests_per_second:.1%}"
              + (f" (by server CPU per request: {raw.server_cpu_us / secured.server_cpu_us:.1%})"
                 if raw.server_cpu_us and secured.server_cpu_us else ""))


if __name__ == "__main__":
    main()
