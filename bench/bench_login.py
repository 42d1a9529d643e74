"""OIDC logins per second with a cached JWKS vs a bare Flask endpoint, same gunicorn config.

    .venv/bin/python bench/bench_login.py [--seconds 5] [--workers 2] [--db sqlite]

Starts the test OpenID provider (tests/oidc_provider, needs ``npm ci`` there), gets one genuine
ID token and has wrk POST it to ``/api/auth/login`` again and again: every request verifies the
signature and claims against the cached key set, upserts the user, stores a refresh token and
appends an audit event (PostgreSQL by default). The JWKS fetches during the measured run are
printed: the cache is per worker process, so each worker fetches once on its first login, during
the warm-up (which lasts until every worker has fetched); the measured run should show 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import database, gunicorn, report, scratch_dir, wrk  # noqa: E402
from testkit.servers.oidc import CLIENT_ID, start_provider  # noqa: E402


def lua_post(path: Path, body: str) -> str:
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql",
                        help="SQLite serializes the writers of several workers (503s under load)")
    args = parser.parse_args()
    from app.cli import migrate

    with scratch_dir() as directory, ExitStack() as stack:
        database_url = database(args.db, directory, stack)
        provider = start_provider(directory)
        try:
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
            (directory / "body.json").write_text(
                '{"token":"' + "x" * 400 + '","tokenType":"Bearer","expiresIn":3600,'
                '"refreshToken":"' + "y" * 43 + '","user":{"id":"usr_x","email":"b@x","name":"B"}}'
            )
            with gunicorn("bench.bare_app:app", {"BENCH_BODY_FILE": str(directory / "body.json")},
                          args.workers) as url:
                baseline = wrk(url + "/bare", seconds=args.seconds, connections=args.connections)
            script = lua_post(directory / "login.lua", body)
            with gunicorn("wsgi:app", env, args.workers) as url:
                # Warm up until every worker has booted and fetched the key set (on a busy
                # machine a worker may still be importing after the harness's pause): otherwise
                # worker boot, discovery and JWKS fetch land in the measured run.
                before = provider.stats()["jwks"]
                deadline = time.monotonic() + 60
                while True:
                    wrk(url + "/api/auth/login", seconds=1, connections=args.connections,
                        script=script)
                    if (provider.stats()["jwks"] - before >= args.workers
                            or time.monotonic() > deadline):
                        break
                fetched = provider.stats()["jwks"]
                logins = wrk(url + "/api/auth/login", seconds=args.seconds,
                             connections=args.connections, script=script)
                refetched = provider.stats()["jwks"] - fetched
            report(f"OIDC login with a cached JWKS (POST /api/auth/login, {args.db}, "
                   f"{args.workers} workers, {args.connections} connections, {args.seconds}s)",
                   baseline, logins)
            print(f"  JWKS fetches during the measured run: {refetched}")
        finally:
            provider.stop()


if __name__ == "__main__":
    main()
