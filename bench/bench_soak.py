"""Soak: a mixed workload against gunicorn (Procfile configuration) on a real PostgreSQL and Redis.

    .venv/bin/python bench/bench_soak.py --seconds 60 [--clients 8] [--workers 2]

Several client threads (requests.Session each, one household each) run for ``--seconds``:
household item reads, item creates, purchase-request creates and complete buy-flows (request →
approve → purchase intent → internal cart-ready → confirm checkout). Checks, each printed:

- zero 5xx and zero client errors (timeouts, refused connections); every answer the expected one
  (so no call was throttled: the limits are generous, and each decider confirms at most 9
  checkouts a minute, under the endpoint's own 10/minute);
- zero lost writes: rows in PostgreSQL equal the accepted 201s per kind, COMPLETED intents and
  requests equal the confirmed checkouts;
- worker memory (RSS of the gunicorn workers, from /proc) flat within 10 % between the first and
  last 10 s of the run (a third of the run each when it is shorter than 30 s), and the same
  worker PIDs at the end as at the start (no worker died or was recycled).

Exits non-zero when a check fails. Requests/s per kind and latency percentiles are printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_server import (  # noqa: E402
    BUYFLOW_TOKEN,
    JWT_SECRET,
    AppServer,
    app_server,
    server_env,
)

CART = {"items": [{"name": "Rain boots", "quantity": 1, "amountMinor": 4500}],
        "totalMinor": 4500, "currency": "EUR"}
SEED_ITEMS = 20
DECIDERS_PER_HOUSEHOLD = 4  # the owner and three adults
CONFIRMS_PER_DECIDER_PER_MINUTE = 9  # the confirm-checkout endpoint allows 10 a minute per caller
MEMORY_TOLERANCE = 0.10
REQUEST_TIMEOUT = 10.0
# Shares of the operations a client picks (a buy-flow is five requests).
MIX = (("read", 0.55), ("create_item", 0.15), ("create_request", 0.15), ("buyflow", 0.15))


# -- setup ------------------------------------------------------------------------------------


@dataclass
class Member:
    user_id: str
    headers: dict[str, str]
    confirms: deque[float] = field(default_factory=deque)


@dataclass
class Household:
    id: str
    child: Member
    deciders: list[Member]


def prepare(database_url: str, clients: int) -> list[Household]:
    """Users, households (owner, adults, child) and seed items, written through a local app."""
    from app import create_app
    from app.db import Database
    from testkit.builders.households import AuthActions, make_household

    app = create_app({
        "HEARTHGATE_ENV": "test", "DATABASE_URL": database_url, "SECRET_STORE_URL": "memory://",
        "AUTH_JWT_SECRET": JWT_SECRET, "AUTH_ACCESS_TOKEN_TTL_SECONDS": 6 * 3600,
        "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING",
    })
    auth = AuthActions(app)
    households = []
    run = uuid.uuid4().hex[:8]
    for n in range(clients):
        users = [auth.user(f"soak-{run}-{n}-{role}@example.test")
                 for role in ("owner", "adult1", "adult2", "adult3", "child")]
        roles = {users[0].id: "owner", users[-1].id: "child"}
        roles.update({u.id: "adult" for u in users[1:-1]})
        household_id = make_household(app, f"Soak {n}", roles)
        members = [Member(u.id, {"Authorization": f"Bearer {auth.token(u)}"}) for u in users]
        households.append(Household(household_id, child=members[-1], deciders=members[:-1]))
        client = app.test_client()
        for i in range(SEED_ITEMS):
            created = client.post(f"/api/households/{household_id}/items",
                                  json={"name": f"Seed {i}", "category": "top", "size": "M"},
                                  headers=members[0].headers)
            assert created.status_code == 201, created.get_json()
    Database.engine(app).dispose()
    return households


def count_rows(database_url: str, household_ids: list[str]) -> dict[str, int]:
    """Rows of the households, counted in the database itself."""
    from sqlalchemy import text

    from testkit.database import system_connection

    queries = {
        "items": "SELECT count(*) FROM items WHERE household_id = ANY(:ids)",
        "requests": "SELECT count(*) FROM purchase_requests WHERE household_id = ANY(:ids)",
        "intents": "SELECT count(*) FROM purchase_intents i JOIN purchase_requests r "
                   "ON r.id = i.request_id WHERE r.household_id = ANY(:ids)",
        "checkouts": "SELECT count(*) FROM purchase_intents i JOIN purchase_requests r "
                     "ON r.id = i.request_id WHERE r.household_id = ANY(:ids) "
                     "AND i.status = 'COMPLETED'",
        "completed_requests": "SELECT count(*) FROM purchase_requests WHERE household_id = "
                              "ANY(:ids) AND status = 'COMPLETED'",
    }
    with system_connection(database_url) as connection:
        return {name: int(connection.execute(text(sql), {"ids": household_ids}).scalar_one())
                for name, sql in queries.items()}


# -- the clients ------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    buyflows: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        self.requests.update(other.requests)
        self.statuses.update(other.statuses)
        self.accepted.update(other.accepted)
        self.buyflows += other.buyflows
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        self.server_errors += other.server_errors
        self.unexpected += other.unexpected
        self.client_errors += other.client_errors


class Client(threading.Thread):
    """One household's traffic until ``deadline`` (monotonic)."""

    def __init__(self, base: str, household: Household, deadline: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.household = household
        self.deadline = deadline
        self.random = random.Random(seed)  # noqa: S311 - a workload mix, not a secret
        self.http = requests.Session()
        self.tally = Tally()

    def url(self, tail: str) -> str:
        return f"{self.base}/api/households/{self.household.id}{tail}"

    def call(self, kind: str, method: str, url: str, expect: int, **kwargs: Any) -> Any:
        """One request; the decoded body when it got ``expect``, else None (and recorded)."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.tally.client_errors.append(f"{kind}: {type(exc).__name__}")
            return None
        elapsed = time.perf_counter() - started
        self.tally.requests[kind] += 1
        self.tally.statuses[response.status_code] += 1
        self.tally.latencies.setdefault(kind, []).append(elapsed)
        if response.status_code >= 500:
            self.tally.server_errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        if response.status_code != expect:
            self.tally.unexpected.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        return response.json()

    def run(self) -> None:
        kinds = [kind for kind, _ in MIX]
        weights = [weight for _, weight in MIX]
        while time.monotonic() < self.deadline:
            kind = self.random.choices(kinds, weights)[0]
            self.operation(kind)()

    def operation(self, kind: str) -> Callable[[], None]:
        if kind == "buyflow":
            decider = self.free_decider()
            if decider is not None:
                return lambda: self.buyflow(decider)
            kind = "read"  # every decider has had its checkouts for this minute
        return {"read": self.read, "create_item": self.create_item,
                "create_request": self.create_request}[kind]

    def free_decider(self) -> Member | None:
        now = time.monotonic()
        for decider in self.random.sample(self.household.deciders, len(self.household.deciders)):
            while decider.confirms and now - decider.confirms[0] > 61:
                decider.confirms.popleft()
            if len(decider.confirms) < CONFIRMS_PER_DECIDER_PER_MINUTE:
                return decider
        return None

    def read(self) -> None:
        body = self.call("read", "GET", self.url("/items?limit=20"), 200,
                         headers=self.household.child.headers)
        if body is not None and len(body["items"]) != 20:
            self.tally.unexpected.append(f"read: {len(body['items'])} items")

    def create_item(self) -> None:
        body = self.call("create_item", "POST", self.url("/items"), 201,
                         json={"name": "Wool socks", "category": "socks", "color": "grey"},
                         headers=self.household.child.headers)
        if body is not None:
            self.tally.accepted["items"] += 1

    def submit(self, kind: str) -> str | None:
        body = self.call(kind, "POST", self.url("/requests"), 201,
                         json={"title": "Rain boots", "amountMinor": 4500, "currency": "EUR"},
                         headers=self.household.child.headers)
        if body is None:
            return None
        self.tally.accepted["requests"] += 1
        return str(body["id"])

    def create_request(self) -> None:
        self.submit("create_request")

    def buyflow(self, decider: Member) -> None:
        request_id = self.submit("buyflow")
        if request_id is None:
            return
        tail = f"/requests/{request_id}"
        if self.call("buyflow", "POST", self.url(tail + "/approve"), 200,
                     headers=decider.headers) is None:
            return
        intent = self.call("buyflow", "POST", self.url(tail + "/purchase-intents"), 201,
                           headers=decider.headers)
        if intent is None:
            return
        self.tally.accepted["intents"] += 1
        ready = self.call("buyflow", "POST",
                          f"{self.base}/api/internal/purchase-intents/{intent['intentId']}/cart-ready",
                          200, json={"actorUserId": decider.user_id, "cart": CART},
                          headers={"X-Internal-Token": BUYFLOW_TOKEN})
        if ready is None:
            return
        decider.confirms.append(time.monotonic())
        confirmed = self.call("buyflow", "POST", self.url(tail + "/confirm-checkout"), 200,
                              json={"intentId": intent["intentId"],
                                    "confirmationToken": intent["confirmationToken"]},
                              headers=decider.headers)
        if confirmed is not None:
            self.tally.accepted["checkouts"] += 1
            self.tally.buyflows += 1


# -- memory -----------------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """RSS of the workers every half second: (seconds since start, kB)."""

    def __init__(self, server: AppServer, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.pids = pids
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, self.server.rss_kib(self.pids)))
            if self.done.wait(0.5):
                return


def memory_windows(samples: list[tuple[float, int]], seconds: float) -> tuple[float, float, float]:
    """Mean RSS (MiB) of the first and last window, and the window's length in seconds."""
    window = min(10.0, seconds / 3)
    end = samples[-1][0]
    first = [kb for t, kb in samples if t <= window]
    last = [kb for t, kb in samples if t >= end - window]
    return statistics.fmean(first) / 1024, statistics.fmean(last) / 1024, window


# -- the run ----------------------------------------------------------------------------------


@dataclass
class SoakResult:
    seconds: float
    clients: int
    workers: list[int]
    tally: Tally
    expected_rows: dict[str, int]
    stored_rows: dict[str, int]
    rss_first_mib: float
    rss_last_mib: float
    memory_window: float
    workers_at_end: list[int]
    log_problems: list[str]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.tally.statuses.items() if status >= 500)

    @property
    def lost_writes(self) -> dict[str, tuple[int, int]]:
        """Kinds whose stored rows differ from the accepted ones: {kind: (accepted, stored)}."""
        return {kind: (n, self.stored_rows[kind]) for kind, n in self.expected_rows.items()
                if self.stored_rows[kind] != n}

    @property
    def memory_growth(self) -> float:
        return self.rss_last_mib / self.rss_first_mib - 1

    def problems(self) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{self.server_errors} server errors: {self.tally.server_errors[:5]}")
        if self.tally.client_errors:
            found.append(f"{len(self.tally.client_errors)} client errors: "
                         f"{self.tally.client_errors[:5]}")
        if self.tally.unexpected:
            found.append(f"{len(self.tally.unexpected)} unexpected answers: "
                         f"{self.tally.unexpected[:5]}")
        if self.lost_writes:
            found.append(f"rows differ from accepted writes (accepted, stored): {self.lost_writes}")
        if abs(self.memory_growth) > MEMORY_TOLERANCE:
            found.append(f"worker memory moved {self.memory_growth:+.1%} (limit ±10 %)")
        if self.workers_at_end != self.workers:
            found.append(f"workers changed: {self.workers} → {self.workers_at_end}")
        found += self.log_problems
        return found

    def print(self, out: Callable[[str], None] = print) -> None:
        t = self.tally
        out(f"\nSoak: {self.clients} clients, {len(self.workers)} gunicorn workers, "
            f"{self.seconds:.0f} s")
        out(f"  {'kind':<15}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for kind in ("read", "create_item", "create_request", "buyflow"):
            latencies = sorted(t.latencies.get(kind, [0.0]))
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            out(f"  {kind:<15}{t.requests[kind]:>9}{t.requests[kind] / self.seconds:>9.1f}"
                f"{p50:>9.1f}{p99:>9.1f}")
        total = sum(t.requests.values())
        out(f"  {'all':<15}{total:>9}{total / self.seconds:>9.1f}")
        out(f"  completed buy-flows: {t.buyflows} ({t.buyflows / self.seconds:.2f}/s)")
        out(f"  statuses: {dict(sorted(t.statuses.items()))}")
        out(f"  5xx: {self.server_errors}   client errors: {len(t.client_errors)}   "
            f"unexpected answers: {len(t.unexpected)}")
        for kind, accepted in self.expected_rows.items():
            stored = self.stored_rows[kind]
            mark = "ok" if stored == accepted else "LOST/EXTRA"
            out(f"  rows {kind:<19} accepted {accepted:>6}   stored {stored:>6}   {mark}")
        out(f"  worker RSS (sum of {len(self.workers)}): first {self.memory_window:.0f} s "
            f"{self.rss_first_mib:.1f} MiB, last {self.memory_window:.0f} s "
            f"{self.rss_last_mib:.1f} MiB ({self.memory_growth:+.1%}, limit ±10 %)")
        out(f"  workers at start {self.workers}, at end {self.workers_at_end}")
        problems = self.problems()
        out("  RESULT: " + ("all checks passed" if not problems else "FAILED"))
        for problem in problems:
            out(f"    - {problem}")


def run_soak(database_url: str, redis_url: str, *, seconds: float = 60, clients: int = 8,
             workers: int = 2) -> SoakResult:
    """The whole soak on a migrated, otherwise unused PostgreSQL database."""
    households = prepare(database_url, clients)
    ids = [h.id for h in households]
    before = count_rows(database_url, ids)
    with app_server(server_env(database_url, redis_url), workers) as server:
        pids = server.workers()
        # One of each operation per client first, so lazily built state (imports, the OpenAPI
        # contract cache, connection pools) is in place before memory is measured.
        warm = [Client(server.base, h, 0.0, seed=n) for n, h in enumerate(households)]
        for client in warm:
            for kind in ("read", "create_item", "create_request", "buyflow"):
                client.operation(kind)()
        sampler = MemorySampler(server, pids)
        sampler.start()
        started = time.monotonic()
        deadline = started + seconds
        runners = [Client(server.base, h, deadline, seed=1000 + n)
                   for n, h in enumerate(households)]
        for client in runners:
            client.start()
        for client in runners:
            client.join()
        elapsed = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        workers_at_end = server.workers()
        log = server.log()
    tally = Tally()
    for client in warm + runners:
        tally.merge(client.tally)
    after = count_rows(database_url, ids)
    expected = {
        "items": tally.accepted["items"],
        "requests": tally.accepted["requests"],
        "intents": tally.accepted["intents"],
        "checkouts": tally.accepted["checkouts"],
        "completed_requests": tally.accepted["checkouts"],
    }
    stored = {kind: after[kind] - before[kind] for kind in expected}
    first, last, window = memory_windows(sampler.samples, elapsed)
    log_problems = [f"gunicorn log has {marker!r}" for marker in
                    ("Traceback", "WORKER TIMEOUT", "Worker exiting") if marker in log]
    # The warm-up requests are not in the rates: rates are over the timed run only.
    for client in warm:
        for kind, n in client.tally.requests.items():
            tally.requests[kind] -= n
    return SoakResult(elapsed, clients, pids, tally, expected, stored, first, last, window,
                      workers_at_end, log_problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from app.cli import migrate
    from testkit.servers.postgres import postgres_server
    from testkit.servers.ratelimit import redis_server

    with postgres_server() as postgres, redis_server() as redis:
        postgres.psql("CREATE DATABASE soak")
        migrate(postgres.url("soak"))
        result = run_soak(postgres.url("soak"), redis.url, seconds=args.seconds,
                          clients=args.clients, workers=args.workers)
    result.print()
    sys.exit(1 if result.problems() else 0)


if __name__ == "__main__":
    main()
