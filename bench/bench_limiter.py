"""The limiter's throughput cost: the same gunicorn + Redis set-up with RATELIMIT_ENABLED on and
off, measured with wrk in one run; the ratio is the result (absolute figures vary by machine).

    /tmp/venv-probe/bin/python bench/bench_limiter.py [--workers 2] [--seconds 5]

The limit is set high enough that every request passes (the cost of counting, not of 429s).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.servers.ratelimit import gunicorn, redis_server  # noqa: E402

PATH = "/api/limit-test/public"


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{non_2xx.group(1)} requests were not 2xx: raise the limit\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    runs: dict[str, list[float]] = {"off": [], "on": []}
    with redis_server() as redis, ExitStack() as stack:
        servers = {}
        for label, enabled in (("off", "false"), ("on", "true")):
            env = {
                "RATELIMIT_ENABLED": enabled,
                "RATELIMIT_STORAGE_URI": redis.url,
                "RATELIMIT_ANONYMOUS": "100000000/minute",
                "LOG_LEVEL": "WARNING",
            }
            servers[label] = stack.enter_context(gunicorn(args.workers, **env))
            wrk(servers[label].base + PATH, 1)  # warm-up
        # ABBA order, so that a drift in the machine's load falls on both sides alike.
        for label in ("off", "on", "on", "off"):
            runs[label].append(wrk(servers[label].base + PATH, args.seconds))
    off, on = statistics.mean(runs["off"]), statistics.mean(runs["on"])
    print(f"workers={args.workers} wrk -t1 -c16 -d{args.seconds}s {PATH} (Redis storage), ABBA")
    for label, mean in (("off", off), ("on", on)):
        each = ", ".join(f"{r:.0f}" for r in runs[label])
        print(f"limiter {label}: {mean:.0f} requests/s (runs: {each})")
    print(f"on/off ratio: {on / off:.2f}")

if __name__ == "__main__":
    main()
