"""The deployed shape for the soak and fault runs: ``wsgi:app`` under gunicorn with the Procfile
configuration (``gunicorn -c gunicorn.conf.py``), its workers' PIDs and memory read from /proc.

Used by bench/bench_soak.py and tests/deployed/test_load_faults.py.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit.servers.processes import free_port, gunicorn_process  # noqa: E402

JWT_SECRET = "soak-jwt-secret-0123456789abcdef-not-for-production"  # noqa: S105 - a bench value
BUYFLOW_TOKEN = "soak-buyflow-token-0123456789abcdef"  # noqa: S105 - a bench value
ORCHESTRATOR_TOKEN = "soak-orchestrator-token-0123456789abcdef"  # noqa: S105 - a bench value
WEBHOOK_SECRET = "soak-webhook-secret-0123456789abcdef"  # noqa: S105 - a bench value
# Settings the server may inherit from the caller's environment that would change what we run.
_OWN_PREFIXES = ("HEARTHGATE", "AUTH_", "RATELIMIT_", "REDIS_", "DATABASE_", "SECRET_STORE",
                 "GUNICORN_", "WEB_CONCURRENCY", "BUYFLOW_", "ORCHESTRATOR_", "REQUIRE_")


@functools.cache
def audit_signing_key() -> str:
    """One Ed25519 key per run, shared by every worker (production requires one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


SOAK_DATA_KEY = "c29hay1kYXRhLWVuY3J5cHRpb24ta2V5LTAxMjM0NTY="  # 32 bytes, soak databases only


def server_env(database_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """Production settings on ``redis_url`` (generous limits); without Redis, the test
    environment with rate limits off (production refuses memory:// with several workers)."""
    env = {
        "DATABASE_URL": database_url,
        "AUTH_JWT_ALGORITHM": "HS256",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN,
        "REQUIRE_BUYFLOW_INTERNAL_TOKEN": "true",
        "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN,
        "REQUIRE_INTERNAL_EVENT_TOKEN": "true",
        "LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env.update({
            "HEARTHGATE_ENV": "production",
            "SECRET_STORE_URL": "env://",
            "HYPERBEAM_EVENT_SIGNING_SECRET": WEBHOOK_SECRET,
            "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": "true",
            "AUDIT_SIGNING_KEY": audit_signing_key(),
            "DATA_ENCRYPTION_KEYS": SOAK_DATA_KEY,
            "RATELIMIT_ENABLED": "true",
            "RATELIMIT_STORAGE_URI": redis_url,
            "RATELIMIT_AUTHENTICATED": "1000000/minute",
            "RATELIMIT_ANONYMOUS": "1000000/minute",
            "RATELIMIT_INTERNAL": "1000000/minute",
        })
    else:
        env.update({"HEARTHGATE_ENV": "test", "SECRET_STORE_URL": "memory://",
                    "RATELIMIT_ENABLED": "false"})
    env.update(extra)
    return env


@dataclass
class AppServer:
    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    workers_expected: int

    def workers(self) -> list[int]:
        """PIDs of the master's children (the workers), from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces or parentheses: the fields follow the last ')'.
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == self.proc.pid:
                found.append(int(entry.name))
        return sorted(found)

    def rss_kib(self, pids: list[int]) -> int:
        """Resident memory of ``pids`` added up (kB, as /proc reports it)."""
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker is up and /readyz answers 200 repeatedly."""
        deadline = time.monotonic() + timeout
        ok = 0
        while ok < self.workers_expected * 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn not ready; log:\n{self.log()[-3000:]}")
            try:
                ready = requests.get(self.base + "/readyz", timeout=10).status_code == 200
            except requests.RequestException:
                ready = False
            ok = ok + 1 if ready and len(self.workers()) == self.workers_expected else 0
            if not ready:
                time.sleep(0.2)


@contextmanager
def app_server(env: dict[str, str], workers: int = 2, access_log: bool = False) -> Iterator[AppServer]:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` on 127.0.0.1; stopped by PID afterwards.

    With ``access_log`` every request is logged as ``<pid> METHOD PATH STATUS``, so a test can
    tell which worker answered.
    """
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="hg-soak-"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    environ.update({**env, "HOST": "127.0.0.1", "PORT": str(port),
                    "WEB_CONCURRENCY": str(workers), "PYTHONPATH": str(ROOT)})
    if access_log:
        environ["GUNICORN_ACCESS_LOG"] = "1"
        environ["GUNICORN_CMD_ARGS"] = "--access-logformat '%(p)s %(m)s %(U)s %(s)s'"
    log_path = directory / "gunicorn.log"
    try:
        with gunicorn_process("wsgi:app", environ, log_path) as proc:
            server = AppServer(f"http://127.0.0.1:{port}", proc, log_path, workers)
            server.wait_ready()
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
