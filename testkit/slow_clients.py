"""Slow clients (slowloris) against a server under gunicorn, with ``/healthz`` probes sent while
they last: the attack of tests/deployed/test_gunicorn_raw.py and bench/bench_slow_clients.py."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import requests

from bench.soak_server import AppServer

SLOW_CLIENTS = 20
ATTACK_SECONDS = 16.0  # the slow clients keep 20 connections open this long, reconnecting
PROBE_EVERY = 1.5  # seconds between probes, all sent while the attack lasts
PROBE_BOUND = 5.0  # seconds a probe may take: longer means it queued behind the slow clients


@dataclass
class SlowClient:
    """One attacker's connection slot: sends ``head``, then one of ``pieces`` a second; when
    the server closes the connection, notes after how long (and what it answered) and connects
    again, until the attack ends."""

    port: int
    head: bytes
    pieces: list[bytes]
    cut_after: list[float] = field(default_factory=list)  # seconds, one per closed connection
    answers: list[bytes] = field(default_factory=list)

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            self._one_connection(until)

    def _one_connection(self, until: float) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(self.head)
            for piece in self.pieces:
                time.sleep(max(0.0, min(1.0, until - time.monotonic())))
                if time.monotonic() >= until:
                    return
                try:
                    sock.sendall(piece)
                except OSError:  # reset or broken pipe: the server closed it
                    break
                if self._closed(sock):
                    break
            else:
                return
            self.cut_after.append(time.monotonic() - started)

    def _closed(self, sock: socket.socket) -> bool:
        """Whether the server closed the connection (reading what it answered, if anything)."""
        sock.setblocking(False)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except BlockingIOError:
            return False
        except OSError:
            pass
        finally:
            sock.setblocking(True)
        self.answers.append(answer)
        return True


@dataclass
class Probe:
    status: int | None
    seconds: float


def probe(server: AppServer) -> Probe:
    started = time.monotonic()
    try:
        status: int | None = requests.get(server.base + "/healthz", timeout=PROBE_BOUND).status_code
    except requests.RequestException:
        status = None
    return Probe(status, time.monotonic() - started)


def attack(server: AppServer, head: bytes, pieces: list[bytes], count: int = SLOW_CLIENTS,
           seconds: float = ATTACK_SECONDS) -> tuple[list[Probe], list[SlowClient]]:
    """``count`` slow clients for ``seconds``, and the probes sent meanwhile."""
    port = int(server.base.rsplit(":", 1)[1])
    clients = [SlowClient(port, head, pieces) for _ in range(count)]
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=c.run, args=(until,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    probes = []
    while time.monotonic() + PROBE_EVERY + PROBE_BOUND < until:
        time.sleep(PROBE_EVERY)
        probes.append(probe(server))
    for thread in threads:
        thread.join(timeout=seconds + 10)
    return probes, clients


def report(kind: str, probes: list[Probe], clients: list[SlowClient],
           seconds: float = ATTACK_SECONDS) -> None:
    cut = [after for c in clients for after in c.cut_after]
    print(f"{kind}: {len(clients)} slow connections for {seconds:.0f}s; "
          f"{sum(p.status == 200 for p in probes)} of {len(probes)} probes answered, slowest "
          f"{max(p.seconds for p in probes):.3f}s; {len(cut)} slow connections cut off after "
          f"{min(cut, default=0):.1f}-{max(cut, default=0):.1f}s")
