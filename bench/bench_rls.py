"""What PostgreSQL's row-level security costs the secured read: the same app, two databases.

    .venv/bin/python bench/bench_rls.py [--seconds 10] [--rounds 3] [--workers 2]

"on": the database at the head revision (policies, ENABLE + FORCE) and the app telling it who
asks at each transaction's start (``DATABASE_ROW_SECURITY=true``, the default). "off": a second
database on the same server, migrated to the head and then down to the revision before the
policies (``enc1``), and the app with ``DATABASE_ROW_SECURITY=false``, so that it sends no
settings either. Both are owned and used by a role that is not a superuser (a superuser bypasses
the policies). Measures GET /api/households/{id}/items?limit=20 (bench/bench_read.py's read) on
each, alternating in ABBA order, and prints the medians and the ratio (target: on ≥ 90 % of off).

``--in-process N``: instead of gunicorn and wrk, each app answers the read in this process through
Flask's test client (the whole gateway, no HTTP), N batches of 200 per kind alternating, and the
median per-read time of each kind is printed: steadier on a busy machine than wrk's rates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_read import prepare  # noqa: E402
from bench.harness import alternating, database, gunicorn, report, scratch_dir  # noqa: E402

BEFORE_POLICIES = "enc1"


def without_policies(url: str) -> None:
    """Down to the revision before the row-level security one."""
    from alembic import command
    from alembic.config import Config

    from app.cli import MIGRATIONS
    from app.db import build_engine

    engine = build_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.downgrade(config, BEFORE_POLICIES)
    engine.dispose()


def in_process(kinds: dict[str, tuple[dict[str, str], str, str]], batches: int) -> None:
    """Median microseconds per read of each kind: (env, path, token) each, batches alternating."""
    from app import create_app

    clients = {}
    for name, (env, path, token) in kinds.items():
        os.environ.update(env)
        if name == "on":
            os.environ.pop("DATABASE_ROW_SECURITY", None)
        clients[name] = (create_app().test_client(), path, {"Authorization": f"Bearer {token}"})
    per_read: dict[str, list[float]] = {name: [] for name in kinds}
    for number in range(batches + 1):
        names = list(kinds) if number % 2 == 0 else list(reversed(kinds))
        for name in names:
            client, path, headers = clients[name]
            start = time.perf_counter()
            for _ in range(200):
                assert client.get(path, headers=headers).status_code == 200
            if number:  # the first batch warms up
                per_read[name].append((time.perf_counter() - start) / 200 * 1e6)
    medians = {name: statistics.median(values) for name, values in per_read.items()}
    for name, value in medians.items():
        print(f"  {name:3}: median {value:7.0f} µs per read over {batches} batches of 200")
    print(f"  on costs {medians['on'] / medians['off'] - 1:+.1%} per read "
          f"(throughput ratio {medians['off'] / medians['on']:.1%}, target ≥ 90 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-process", type=int, default=0, metavar="BATCHES")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        on_url = database("postgresql", directory, stack, names=("bench", "bench_off"))
        off_url = on_url.rsplit("/", 1)[0] + "/bench_off"
        on_data = prepare(on_url, directory / "on.json")
        off_data = prepare(off_url, directory / "off.json")
        on_env, on_path, on_token = on_data.env, on_data.read_paths["items"], on_data.token
        off_env, off_path, off_token = off_data.env, off_data.read_paths["items"], off_data.token
        without_policies(off_url)
        off_env = {**off_env, "DATABASE_ROW_SECURITY": "false"}
        os.environ.pop("DATABASE_ROW_SECURITY", None)
        if args.in_process:
            in_process({"off": (off_env, off_path, off_token), "on": (on_env, on_path, on_token)},
                       args.in_process)
            return
        on = stack.enter_context(gunicorn("wsgi:app", on_env, args.workers))
        off = stack.enter_context(gunicorn("wsgi:app", off_env, args.workers))
        kinds = {
            "off": (off + off_path, {"Authorization": f"Bearer {off_token}"}),
            "on": (on + on_path, {"Authorization": f"Bearer {on_token}"}),
        }
        runs = alternating(kinds, args.rounds, seconds=args.seconds,
                           connections=args.connections)
        assert runs["on"].non_2xx == 0 and runs["off"].non_2xx == 0, "a read answered an error"
        print(f"\nMedians of {args.rounds} rounds of {args.seconds}s per kind (ABBA order).")
        report(f"Secured read with row-level security on, against off (PostgreSQL, "
               f"{args.workers} workers, {args.connections} connections)",
               runs["off"], runs["on"], target=0.90)


if __name__ == "__main__":
    main()
