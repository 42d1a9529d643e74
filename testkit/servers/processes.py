"""External processes for the tests and the benchmarks (TESTING.md): started on 127.0.0.1 at free
ports, stopped by PID; ``gunicorn_process`` runs gunicorn with the repository's configuration.

In CI (``CI=true``) a missing component fails the test; on a laptop it skips with the reason.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit import ROOT

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PROJECT_ROOT = ROOT


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"required test component missing in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def gunicorn_process(
    app_spec: str, environ: dict[str, str], log_path: Path | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """``gunicorn -c gunicorn.conf.py APP`` from the project root on ``environ``'s PORT, its
    output in ``log_path`` (else discarded); yields once it listens, stopped by PID afterwards."""
    out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app_spec],
            cwd=PROJECT_ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT,
        )
    finally:
        if out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
    try:
        wait_for_port(int(environ["PORT"]), timeout=timeout, proc=proc)
        yield proc
    finally:
        stop(proc)
