"""Audit trail benchmark: append cost at 1,000 and at 100,000 existing entries (ratio target
<= 1.2, i.e. independent of chain length), the cost of signing a checkpoint (Merkle root from
the previous checkpoint's frontier) at both sizes, and verify speed (target: >= 100,000 entries
per second on one core, Merkle roots of every checkpoint included).

    python bench/bench_audit.py [--entries 100000] [--appends 300]

Each database is built with bulk inserts of correctly chained rows and one signed checkpoint at
its head, then appended to through the real ``audit.record`` (one transaction per event, as a
request does; every ``AUDIT_CHECKPOINT_EVERY``-th append signs a checkpoint in it). Appends to the two databases
are interleaved so that machine noise hits both alike; medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from app import audit, create_app  # noqa: E402
from app.audit.chain import fields_hash, timestamp  # noqa: E402
from app.audit.checkpoints import checkpoint_all  # noqa: E402
from app.audit.signing import PublicKeys, signer  # noqa: E402
from app.audit.verify import verify_database  # noqa: E402
from app.db import SESSIONS, Database, utcnow  # noqa: E402
from app.models import AuditEvent  # noqa: E402

CHAIN = "hh_bench"


def build(path: Path, entries: int) -> Flask:
    from app.cli import migrate
    from testkit.config import BASE_CONFIG

    url = f"sqlite:///{path}"
    migrate(url)
    app = create_app({**BASE_CONFIG, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    start = utcnow() - timedelta(days=1)
    prev = audit.GENESIS
    batch: list[dict[str, Any]] = []
    engine = Database.engine(app)
    for seq in range(1, entries + 1):
        created = start + timedelta(microseconds=seq)
        fields = {
            "chain": CHAIN, "seq": seq, "householdId": CHAIN, "principalId": "usr_bench",
            "action": "bench.event", "resource": f"thing:{seq}", "decision": "allowed",
            "correlationId": f"req-{seq}", "details": {"n": seq, "to": "APPROVED"},
            "createdAt": timestamp(created), "prevHash": prev,
        }
        digest = fields_hash(fields)
        batch.append({
            "chain": CHAIN, "seq": seq, "household_id": CHAIN, "principal_id": "usr_bench",
            "action": "bench.event", "resource": f"thing:{seq}", "decision": "allowed",
            "correlation_id": f"req-{seq}", "details": fields["details"], "created_at": created,
            "prev_hash": prev, "hash": digest,
        })
        prev = digest
        if len(batch) == 10_000 or seq == entries:
            with engine.begin() as connection:
                connection.execute(insert(AuditEvent), batch)
            batch = []
    with app.app_context(), SESSIONS.get(app)() as session:
        checkpoint_all(session, signer(app), CHAIN)
        session.commit()
    return app


def checkpoint_once(app: Flask) -> float:
    """One append, then the time to sign a checkpoint of the chain's head."""
    append_once(app)
    with app.app_context(), SESSIONS.get(app)() as session:
        started = time.perf_counter()
        checkpoint_all(session, signer(app), CHAIN)
        session.commit()
        return time.perf_counter() - started


def append_once(app: Flask) -> float:
    with app.app_context():
        session = SESSIONS.get(app)()
        try:
            started = time.perf_counter()
            audit.record("bench.append", household_id=CHAIN, details={"n": 1}, session=session)
            session.commit()
            return time.perf_counter() - started
        finally:
            session.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--appends", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        small = build(Path(tmp) / "small.sqlite3", args.small)
        large = build(Path(tmp) / "large.sqlite3", args.entries)
        version = Database.engine(large).dialect.server_version_info
        print(f"database: SQLite {version} (WAL), built {args.small} + {args.entries} chained "
              f"rows in {time.perf_counter() - t:.1f} s")

        for app in (small, large):  # warm caches and connections
            for _ in range(20):
                append_once(app)
        at_small: list[float] = []
        at_large: list[float] = []
        for _ in range(args.appends):
            at_small.append(append_once(small))
            at_large.append(append_once(large))
        small_ms = statistics.median(at_small) * 1000
        large_ms = statistics.median(at_large) * 1000
        print(f"append (record + commit), median of {args.appends}: "
              f"{small_ms:.3f} ms at {args.small:,} entries, "
              f"{large_ms:.3f} ms at {args.entries:,} entries; "
              f"ratio {large_ms / small_ms:.2f} (target <= 1.2)")

        sign_small: list[float] = []
        sign_large: list[float] = []
        for _ in range(max(args.appends // 3, 20)):
            sign_small.append(checkpoint_once(small))
            sign_large.append(checkpoint_once(large))
        s_ms, l_ms = statistics.median(sign_small) * 1000, statistics.median(sign_large) * 1000
        print(f"checkpoint (root from the last frontier, sign, store), median of "
              f"{len(sign_small)}: {s_ms:.3f} ms at {args.small:,} entries, {l_ms:.3f} ms at "
              f"{args.entries:,} entries; ratio {l_ms / s_ms:.2f}")

        with large.app_context():
            keys = PublicKeys([signer(large).public_key])
            session = SESSIONS.get(large)()
            started, cpu = time.perf_counter(), time.process_time()
            report = verify_database(session, keys)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            session.close()
        if not report.ok:
            raise SystemExit(f"verify failed: {report.problems}")
        print(f"verify: {report.entries:,} entries, {report.checkpoints} checkpoints in "
              f"{elapsed:.2f} s (CPU {cpu:.2f} s) = {report.entries / elapsed:,.0f} entries/s "
              f"= {report.entries / cpu:,.0f} entries per CPU second (target: >= 100,000 per "
              "second on one core)")
        for app in (small, large):
            Database.engine(app).dispose()


if __name__ == "__main__":
    main()
