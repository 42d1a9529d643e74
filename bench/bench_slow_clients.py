"""Slow clients (slowloris) against the deployed configuration, as long as you like.

    .venv/bin/python bench/bench_slow_clients.py [--seconds 30] [--clients 20] [--workers 2]
                                                 [--worker-class sync] [--body]

Runs ``wsgi:app`` under gunicorn with gunicorn.conf.py on a fresh SQLite database (the default
``GUNICORN_REQUEST_READ_TIMEOUT``), keeps ``--clients`` connections sending one header line (or,
with ``--body``, one body byte) a second for ``--seconds``, reconnecting whenever the server cuts
one off, and sends a ``/healthz`` probe every 1.5 s meanwhile, each given 5 s. Prints how many
probes were answered, the slowest, and after how long the server cut the slow connections off.
``--worker-class sync`` runs gunicorn's sync workers instead, for comparison. Exits non-zero when
a probe was not answered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import migrate  # noqa: E402
from bench.soak_server import app_server, server_env  # noqa: E402
from testkit.slow_clients import attack, report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default=None, help="e.g. sync (default: the config's)")
    parser.add_argument("--body", action="store_true", help="slow bodies instead of slow heads")
    args = parser.parse_args()

    pieces = int(args.seconds) + 1
    if args.body:
        head = (b"POST /api/auth/login HTTP/1.1\r\nHost: hearthgate\r\n"
                b"Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{")
        sent = [b" "] * pieces
    else:
        head = b"GET /healthz HTTP/1.1\r\nHost: hearthgate\r\n"
        sent = [f"X-Slow-{n}: {'a' * 20}\r\n".encode() for n in range(pieces)]
    url = f"sqlite:///{tempfile.mkdtemp(prefix='hg-slow-')}/hearthgate.sqlite3"
    migrate(url)
    extra = {"GUNICORN_CMD_ARGS": f"--worker-class {args.worker_class}"} if args.worker_class else {}
    with app_server(server_env(url, **extra), workers=args.workers) as server:
        probes, clients = attack(server, head, sent, args.clients, args.seconds)
    report(f"{args.worker_class or 'gunicorn.conf.py'} workers, slow "
           f"{'bodies' if args.body else 'headers'}", probes, clients, args.seconds)
    sys.exit(0 if all(p.status == 200 for p in probes) else 1)


if __name__ == "__main__":
    main()
