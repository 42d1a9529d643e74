"""Real Redis, memcached and gunicorn for the rate-limit tests, on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from testkit import ROOT
from testkit.servers.processes import free_port, gunicorn_process, missing, stop, wait_for_port

if TYPE_CHECKING:
    import redis


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def stop(self) -> None:
        stop(self.proc)

    def start_again(self) -> None:
        """On the same port, empty (no persistence), as after a Redis restart."""
        self.proc = _spawn_redis(self.port)
        wait_for_port(self.port, proc=self.proc)


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary
    return subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def redis_server() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")
    port = free_port()
    server = Redis(port=port, proc=_spawn_redis(port))
    try:
        wait_for_port(port, proc=server.proc)
        yield server
    finally:
        server.stop()


@contextmanager
def memcached_server() -> Iterator[str]:
    binary = shutil.which("memcached")
    if binary is None:
        missing("memcached is not installed")
    assert binary
    port = free_port()
    args = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        yield f"memcached://127.0.0.1:{port}"
    finally:
        stop(proc)


@dataclass
class Gunicorn:
    """``testkit.apps.limit_wsgi:app`` under gunicorn with the repository's gunicorn.conf.py."""

    port: int
    workers: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> requests.Response:
        # A new connection per request, so that requests spread over the workers.
        return requests.get(self.base + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.base + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def wait_for_all_workers(self, timeout: float = 60) -> None:
        """Until every worker has answered /healthz (not limited), so none is still booting."""
        from concurrent.futures import ThreadPoolExecutor

        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=self.workers * 4) as pool:
            while len(seen) < self.workers:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(seen)} of {self.workers} workers answered")
                answers = pool.map(lambda _: self.get("/healthz"), range(self.workers * 4))
                seen.update(r.headers["X-Test-Worker"] for r in answers)


@contextmanager
def gunicorn(workers: int, **env: str) -> Iterator[Gunicorn]:
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="hg-gunicorn-"))
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("HEARTHGATE", "AUTH_", "RATELIMIT_", "REDIS_"))}
    environ.update({
        "HEARTHGATE_ENV": "test",
        "DATABASE_URL": f"sqlite:///{log_dir / 'unused.sqlite3'}",
        "SECRET_STORE_URL": "memory://",
        "LOG_JSON": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "PYTHONPATH": str(ROOT),
        **env,
    })
    log_path = log_dir / "gunicorn.log"
    try:
        with gunicorn_process("testkit.apps.limit_wsgi:app", environ, log_path) as proc:
            server = Gunicorn(port=port, workers=workers, proc=proc, log_path=log_path)
            server.wait_for_all_workers()
            yield server
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def worker_pids(log: str) -> set[str]:
    return set(re.findall(r"Booting worker with pid: (\d+)", log))
