"""Where an OIDC login's time goes, in one process: the login posted through the test client.

    .venv/bin/python bench/profile_login.py [--db postgresql|sqlite] [--logins 1000] [--rounds 3]

Starts the test OpenID provider and a database as ``bench/bench_login.py`` does, logs in 100
times to warm up (the first login creates the user, later ones change nothing about it), then
prints, for each of ``--rounds`` runs of ``--logins`` logins, the mean CPU microseconds per login
of this process (on a shared machine wall time also counts the other processes; the database
server's own CPU is not in it) and the mean wall time. Compare two trees by running it from each
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

from bench.harness import database, scratch_dir  # noqa: E402
from testkit.servers.oidc import CLIENT_ID, start_provider  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--logins", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
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
        for _ in range(args.rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.logins):
                login()
            cpu = (time.process_time() - cpu) / args.logins * 1e6
            wall = (time.perf_counter() - wall) / args.logins * 1e6
            print(f"{args.db}: {cpu:,.0f} µs of CPU, {wall:,.0f} µs of wall time per login")


if __name__ == "__main__":
    main()
