"""Secret reads through vault:// (a real OpenBao dev server) with and without the cache, against
the in-process memory:// store as the baseline, all measured in the same run.

    .venv/bin/python bench/bench_secrets.py [--seconds 3]

Prints reads/s for each and the ratios (what a TTL cache saves on a hot secret).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.builders.secret_stores import open_store  # noqa: E402
from testkit.servers.secrets import openbao_server  # noqa: E402


def rate(read: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        read()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    with openbao_server() as server:
        server.client().secrets.kv.v2.create_or_update_secret(
            path="bench/api_key", secret={"value": "bench-secret-value-0001"}, mount_point="secret")
        uncached = open_store(server.url("bench"), VAULT_TOKEN=server.root_token)
        cached = open_store(server.url("bench", cache_ttl="60"), VAULT_TOKEN=server.root_token)
        memory = open_store("memory://?enable_set=true")
        memory.set("api_key", "bench-secret-value-0001")
        results = {
            "memory://": rate(lambda: memory.get("api_key"), seconds),
            "vault:// no cache": rate(lambda: uncached.get("api_key"), seconds),
            "vault:// cache_ttl=60": rate(lambda: cached.get("api_key"), seconds),
        }
    for name, value in results.items():
        print(f"{name:24} {value:12.0f} reads/s")
    base = results["memory://"]
    print(f"vault no cache / memory: {results['vault:// no cache'] / base:.4f}")
    print(f"vault cached / memory:   {results['vault:// cache_ttl=60'] / base:.4f}")
    print(f"vault cached / no cache: {results['vault:// cache_ttl=60'] / results['vault:// no cache']:.1f}x")


if __name__ == "__main__":
    main()
