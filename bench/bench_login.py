"""OIDC logins per second with a cached JWKS vs a bare Flask endpoint, same gunicorn config.

    .venv/bin/python bench/bench_login.py [--seconds 5] [--rounds 3] [--workers 2] [--db sqlite]

Starts the test OpenID provider (tests/oidc_provider, needs ``npm ci`` there), gets one genuine
ID token and has wrk POST it to ``/api/auth/login`` again and again: every request verifies the
signature and claims against the cached key set, upserts the user, stores a refresh token and
appends an audit event (PostgreSQL by default). The bare endpoint and the logins alternate, once
each per round in ABBA order, and the medians are reported, so that a noisy moment of a shared
machine does not land on one side only. Printed first: the database round trips of one login
(measured in process on the same database). The JWKS fetches during the measured runs are
printed too: the cache is per worker process, so each worker fetches once on its first login,
during the warm-up (which lasts until every worker has fetched); the measured runs should show 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import alternating, database, gunicorn, report, scratch_dir, wrk  # noqa: E402
from testkit.servers.oidc import CLIENT_ID, start_provider  # noqa: E402


def lua_post(path: Path, body: str) -> str:
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    return str(path)


def statements_per_login(env: dict[str, str], body: str) -> None:
    """Print the database round trips of one repeated login, in process: the transactions, the
    row-security scope each begins with, and the statements sent (through SQLAlchemy, or
    compiled once and sent straight to the driver: ``app.fastread``)."""
    import importlib
    import os

    from app import create_app
    from app.db import Database
    from app.rowsecurity import Scope, apply_scope
    from testkit.database import statements_sent
    from testkit.spies import spy

    os.environ.update(env)
    application = create_app()
    client = application.test_client()
    for _ in range(2):  # the first login creates the user
        answer = client.post("/api/auth/login", data=body, content_type="application/json")
        assert answer.status_code == 200, answer.get_json()
    transactions: list[str] = []
    engine = Database.engine(application)
    # Every transaction, SQLAlchemy's or a RequestTransaction, commits through the dialect.
    do_commit = engine.dialect.do_commit
    engine.dialect.do_commit = spy(  # type: ignore[method-assign]
        do_commit, lambda dbapi_connection: transactions.append("commit"))
    db_module: Any = importlib.import_module("app.db")  # ``app.db`` the attribute is the extension
    scopes: list[Scope] = []
    scoped = spy(apply_scope, lambda dbapi_connection, scope: scopes.append(scope))
    db_module.apply_scope = scoped
    try:
        with statements_sent(application) as statements:
            answer = client.post("/api/auth/login", data=body, content_type="application/json")
            assert answer.status_code == 200, answer.get_json()
    finally:
        db_module.apply_scope = apply_scope
        engine.dialect.do_commit = do_commit  # type: ignore[method-assign]
    # Each transaction: BEGIN (on PostgreSQL with the row-security scope, one round trip,
    # app.rowsecurity.apply_scope) and COMMIT.
    print(f"Database round trips per login: {len(statements) + 2 * len(transactions)}"
          f" ({len(transactions)} transaction: BEGIN"
          f"{' with the row-security scope' if engine.dialect.name == 'postgresql' else ''}, "
          f"COMMIT; {len(statements)} statements)")
    for text in statements:
        print("   ", text if len(text) <= 160 else f"{text[:100]} … {text[-56:]}")
    assert len(scopes) == len(transactions) or engine.dialect.name != "postgresql"
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each kind runs once per round, in ABBA order; medians are reported")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql",
                        help="SQLite serializes the writers of several workers (503s under load)")
    args = parser.parse_args()
    from app.cli import migrate

    with scratch_dir() as directory, ExitStack() as stack:
        database_url = database(args.db, directory, stack)
        provider = start_provider(directory)
        stack.callback(provider.stop)
        env = {
            "HEARTHGATE_ENV": "development",
            "DATABASE_URL": database_url,
            "AUTH_JWT_SECRET": "bench-secret-0123456789abcdef0123456789",
            "AUTH_OIDC_ISSUER": provider.issuer,
            "AUTH_OIDC_AUDIENCE": CLIENT_ID,
            "RATELIMIT_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
        migrate(env["DATABASE_URL"])
        body = json.dumps({"idToken": provider.id_token("bench")})
        statements_per_login(env, body)
        (directory / "body.json").write_text(
            '{"token":"' + "x" * 400 + '","tokenType":"Bearer","expiresIn":3600,'
            '"refreshToken":"' + "y" * 43 + '","user":{"id":"usr_x","email":"b@x","name":"B"}}'
        )
        script = lua_post(directory / "login.lua", body)
        # Both servers run side by side (an idle one costs nothing), so the kinds alternate.
        bare = stack.enter_context(gunicorn(
            "bench.bare_app:app", {"BENCH_BODY_FILE": str(directory / "body.json")},
            args.workers))
        url = stack.enter_context(gunicorn("wsgi:app", env, args.workers))
        # Warm up until every worker has booted and fetched the key set (on a busy machine a
        # worker may still be importing after the harness's pause): otherwise worker boot,
        # discovery and JWKS fetch land in the measured runs.
        before = provider.stats()["jwks"]
        deadline = time.monotonic() + 60
        while True:
            wrk(url + "/api/auth/login", seconds=1, connections=args.connections, script=script)
            if provider.stats()["jwks"] - before >= args.workers or time.monotonic() > deadline:
                break
        fetched = provider.stats()["jwks"]
        runs = alternating({"bare": (bare + "/bare", {}),
                            "login": (url + "/api/auth/login", {}, script)},
                           args.rounds, seconds=args.seconds, connections=args.connections)
        refetched = provider.stats()["jwks"] - fetched
        print(f"\nMedians of {args.rounds} rounds of {args.seconds}s per kind (ABBA order).")
        report(f"OIDC login with a cached JWKS (POST /api/auth/login, {args.db}, "
               f"{args.workers} workers, {args.connections} connections, {args.seconds}s)",
               runs["bare"], runs["login"], target=0.17)
        print(f"  JWKS fetches during the measured runs: {refetched}")


if __name__ == "__main__":
    main()
