"""Shared pieces of the benchmarks: gunicorn processes, wrk runs and a bare Flask baseline.

Every figure is a ratio against a baseline measured in the same run on the same machine:
absolute requests/s vary between runs on a shared 2-core machine; the ratio is what we track.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.servers.processes import free_port, gunicorn_process  # noqa: E402


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    # CPU the server spent per request (its gunicorn workers, plus the PostgreSQL server's
    # backends when the bench runs one): what a request costs, whatever else the machine runs.
    server_cpu_us: float | None = None


# Base URL → PIDs whose process trees serve it (gunicorn's master, the database server).
_SERVER_PIDS: dict[str, list[int]] = {}
_DATABASE_PIDS: list[int] = []


def _processes() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds (user + system) so far, from one pass over /proc."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended between the listing and the read
            found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return found


def _tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``pids`` and their descendants."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, list(pids)
    while todo:
        pid = todo.pop()
        if pid in processes:
            total += processes[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def database_cpu_seconds() -> float:
    """CPU seconds used so far by the database server ``database`` started (0.0 on SQLite)."""
    return _tree_cpu_seconds(_DATABASE_PIDS) if _DATABASE_PIDS else 0.0


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]


def wrk(url: str, *, seconds: int = 10, connections: int = 16, headers: dict[str, str] | None = None,
        script: str | None = None) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    if script:
        args += ["-s", script]
    serving = next((pids for base, pids in _SERVER_PIDS.items() if url.startswith(base)), None)
    before = _tree_cpu_seconds(serving + _DATABASE_PIDS) if serving else 0.0
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    used = _tree_cpu_seconds(serving + _DATABASE_PIDS) - before if serving else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99, int(non2xx.group(1)) if non2xx else 0, total,
                     used / total * 1e6 if used is not None and total else None)


def alternating(
    kinds: Mapping[str, tuple[str, dict[str, str]] | tuple[str, dict[str, str], str]],
    rounds: int,
    **options: Any
) -> dict[str, WrkResult]:
    """Run wrk on each kind's (url, headers) or (url, headers, wrk script) once per round, the
    order reversed every other round (ABBA...), and return each kind's median run (by
    requests/s; p99 is that run's)."""
    runs: dict[str, list[WrkResult]] = {name: [] for name in kinds}
    names = list(kinds)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            url, headers, *script = kinds[name]
            runs[name].append(wrk(url, headers=headers, script=script[0] if script else None,
                                  **options))
    return {name: _median(results) for name, results in runs.items()}


def _median(results: list[WrkResult]) -> WrkResult:
    ordered = sorted(results, key=lambda r: r.requests_per_second)
    middle = ordered[len(ordered) // 2]
    return WrkResult(middle.requests_per_second, middle.p50_ms, middle.p99_ms,
                     sum(r.non_2xx for r in results), sum(r.requests for r in results),
                     middle.server_cpu_us)


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """Run ``gunicorn -c gunicorn.conf.py APP`` on 127.0.0.1; yields the base URL."""
    port = free_port()
    environ = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port),
               "WEB_CONCURRENCY": str(workers), "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{port}"
    with gunicorn_process(app_spec, environ, timeout=30) as proc:
        time.sleep(0.5)  # let every worker finish booting
        _SERVER_PIDS[url] = [proc.pid]
        try:
            yield url
        finally:
            del _SERVER_PIDS[url]


BENCH_ROLE = "bench_app"  # owns the PostgreSQL database; no superuser: row-level security binds it


def database(kind: str, directory: Path, stack: ExitStack, names: tuple[str, ...] = ("bench",)
             ) -> str:
    """The URL of an empty benchmark database: on a new PostgreSQL server (stopped with
    ``stack``), owned and used by ``BENCH_ROLE`` as in production (each of ``names`` is created;
    the first one's URL is returned, the others' differ by the name), or a SQLite file in
    ``directory``."""
    if kind == "postgresql":
        from testkit.servers.postgres import postgres_server

        server = stack.enter_context(postgres_server())
        _DATABASE_PIDS[:] = [server.proc.pid]
        stack.callback(_DATABASE_PIDS.clear)
        server.psql(f"CREATE ROLE {BENCH_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        for name in names:
            server.psql(f"CREATE DATABASE {name} OWNER {BENCH_ROLE}")
        return str(server.url(names[0], user=BENCH_ROLE))
    return f"sqlite:///{directory / f'{names[0]}.sqlite3'}"


@contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hg-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def report(title: str, baseline: WrkResult, measured: WrkResult, target: float | None = None) -> float:
    ratio = measured.requests_per_second / baseline.requests_per_second
    print(f"\n{title}")
    print(f"  bare baseline : {baseline.requests_per_second:10.1f} req/s  p50 {baseline.p50_ms:.2f} ms"
          f"  p99 {baseline.p99_ms:.2f} ms  non-2xx {baseline.non_2xx}")
    print(f"  measured      : {measured.requests_per_second:10.1f} req/s  p50 {measured.p50_ms:.2f} ms"
          f"  p99 {measured.p99_ms:.2f} ms  non-2xx {measured.non_2xx}")
    verdict = "" if target is None else ("  (target ≥ {:.0%}: {})".format(target, "met" if ratio >= target else "NOT met"))
    print(f"  ratio         : {ratio:.1%}{verdict}")
    print(f"  p99 ratio     : {measured.p99_ms / baseline.p99_ms:.2f}x")
    if baseline.server_cpu_us and measured.server_cpu_us:
        print(f"  server CPU    : {baseline.server_cpu_us:.0f} µs vs {measured.server_cpu_us:.0f} µs"
              f" per request ({baseline.server_cpu_us / measured.server_cpu_us:.1%})")
    return ratio
