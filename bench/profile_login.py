"""Where an OIDC login's time goes, in one process: the login posted through the test client.

    .venv/bin/python bench/profile_login.py [--db postgresql|sqlite] [--logins 1000] [--rounds 3]
        [--steps]

Starts the test OpenID provider and a database as ``bench/bench_login.py`` does, logs in 100
times to warm up (the first login creates the user, later ones change nothing about it), then
prints, for each of ``--rounds`` runs of ``--logins`` logins, the mean CPU microseconds per login
of this process (on a shared machine wall time also counts the other processes; the database
server's own CPU is not in it, and is printed apart: its processes' CPU read from ``/proc``) and
the mean wall time. ``--steps`` also prints where the login's CPU goes, step by step
(``bench/steps.py``: the login's own steps clocked, each nested under the one that called it).
Compare two trees by running it from each
in turn (A, B, A, B). Under a sampling profiler (py-spy, a dev extra) the samples are the
login's, e.g.

    py-spy record -r 2000 -f raw -o login.txt -- .venv/bin/python bench/profile_login.py \
        --logins 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import database, database_cpu_seconds, scratch_dir  # noqa: E402
from bench.steps import Steps  # noqa: E402
from testkit.servers.oidc import CLIENT_ID, start_provider  # noqa: E402

# A login's steps, in the order the route takes them (``Steps``: where each name is looked up).
LOGIN_STEPS = (
    ("flask.app:Flask.__call__", "the WSGI application"),
    ("flask.app:Flask.preprocess_request", "Flask: before-request hooks (request id, CORS)"),
    ("app.gateway.contracts:_validate_input", "the body: JSON, string checks, schema"),
    ("app.auth.routes:request_client_ip", "the client IP (for the failure throttle)"),
    ("plugins.oidc:OidcLogin.authenticate", "the OIDC provider plugin"),
    ("app.auth.idtokens:IdTokenVerifier.verify", "the ID token: header, RS256 signature, claims"),
    ("plugins.oidc:upsert_identity", "the user (read; written only if changed)"),
    ("app.rawtransaction:RequestTransaction.__init__",
     "pool checkout, BEGIN with the row-security scope"),
    ("app.fastread:_execute", "the statement, on the driver"),
    ("app.auth.routes:sessions.start_session", "the session"),
    ("app.auth.sessions:_device", "user agent and client IP"),
    ("app.auth.sessions:encode_value", "encryption at rest (AES-GCM)"),
    ("app.auth.sessions:_mint_pair", "the token pair"),
    ("app.gateway.tokens:AccessTokens.mint", "the access token (HS256 JWT)"),
    ("app.auth.sessions:audit.record", "the audit event, with the session's writes"),
    ("app.audit.writer:_new_event", "the event: redaction, normalisation"),
    ("app.audit.writer:hash_parts", "the hash's fixed parts"),
    ("app.audit.writer:entry_hash", "the returned hash checked"),
    ("app.gateway.contracts:_serialize", "the response schema"),
    ("app.db:Database.commit", "commit"),
    ("app.rawtransaction:RequestTransaction._end", "COMMIT"),
    ("app.gateway.contracts:_respond", "the response"),
    ("flask.app:Flask.process_response", "Flask: after-request hooks (headers, log)"),
    ("flask.app:Flask.do_teardown_request", "Flask: teardown (back to the pool)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--logins", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", action="store_true",
                        help="print the CPU and wall time of each step of a login")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        url = database(args.db, directory, stack)
        provider = start_provider(directory)
        stack.callback(provider.stop)
        os.environ.update({
            "HEARTHGATE_ENV": "development", "DATABASE_URL": url,
            "AUTH_JWT_SECRET": "bench-secret-0123456789abcdef0123456789",
            "AUTH_OIDC_ISSUER": provider.issuer, "AUTH_OIDC_AUDIENCE": CLIENT_ID,
            "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
        })
        from app import create_app
        from app.cli import migrate

        migrate(url)
        client = create_app().test_client()
        body = json.dumps({"idToken": provider.id_token("bench")}).encode()

        def login() -> None:
            answer = client.post("/api/auth/login", data=body, content_type="application/json")
            assert answer.status_code == 200, answer.get_data(as_text=True)

        for _ in range(100):
            login()
        steps = Steps(LOGIN_STEPS, calibrate=args.steps)
        with steps.installed() if args.steps else ExitStack():
            for _ in range(args.rounds):
                steps.reset()
                wall, cpu = time.perf_counter(), time.process_time()
                server = database_cpu_seconds()
                for _ in range(args.logins):
                    login()
                cpu = (time.process_time() - cpu) / args.logins * 1e6
                wall = (time.perf_counter() - wall) / args.logins * 1e6
                server = (database_cpu_seconds() - server) / args.logins * 1e6
                print(f"{args.db}: {cpu:,.0f} µs of CPU, {wall:,.0f} µs of wall time per login"
                      + (f"; the database server: {server:,.0f} µs of CPU" if server else ""))
                if args.steps:
                    print("\n".join(steps.report(args.logins)))


if __name__ == "__main__":
    main()
