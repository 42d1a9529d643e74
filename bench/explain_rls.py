"""Where PostgreSQL spends row-level security's time in the secured reads, statement by statement.

    PYTHONPATH=$PWD .venv/bin/python bench/explain_rls.py [--runs 200] [--rounds 6] [--plans]

The two databases of bench/bench_rls.py on one server: "on" at the head revision (the policies)
and "off" migrated down to ``enc1`` (none). Every statement the app runs for a secured GET
(the membership read and the page of items, members, outfits with their items, requests, audit
events, the household list) is captured through ``app.fastread`` and then run by itself on both,
as the bench's user, in a transaction begun as the app begins it: on "on" ``BEGIN`` and the
user's scope in one round trip (``app.rowsecurity.apply_scope``), on "off" psycopg's own
``BEGIN``. For each statement it prints the medians of:

- ``plan`` and ``exec``: EXPLAIN (ANALYZE)'s planning and execution times, the statement
  planned afresh each time (as a statement sent once);
- ``wall``: the statement as the app runs it, prepared by psycopg (its plan kept), from send to
  the last row, on the client: what the read costs the request, executor start-up and locks
  included;

and the transaction's start alone (``BEGIN`` with the scope, or ``BEGIN``). Every transaction
ends with ``COMMIT``, as the app's reads do (psycopg's ``rollback()`` would also drop the
connection's prepared statements). Rounds alternate the
two databases; each round runs every statement ``--runs`` times. ``--plans``: print each
statement's EXPLAIN (ANALYZE, BUFFERS, VERBOSE) on both instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_read import Prepared, prepare  # noqa: E402
from bench.bench_rls import without_policies  # noqa: E402
from bench.harness import database, scratch_dir  # noqa: E402

Statement = tuple[str, str, dict[str, Any]]  # (label, SQL, parameters)


def captured(prepared: Prepared) -> list[Statement]:
    """Every distinct statement of the secured GETs, with the values the app bound."""
    from app import create_app, fastread

    household = prepared.household
    paths = {**prepared.read_paths,
             "requests": f"/api/households/{household}/requests?limit=20",
             "audit": f"/api/households/{household}/audit?limit=20",
             "households": "/api/households?limit=20"}
    client = create_app().test_client()
    headers = {"Authorization": f"Bearer {prepared.token}"}
    found: dict[str, Statement] = {}
    execute = fastread._execute
    for name, path in paths.items():
        seen: list[str] = []

        def record(connection: Any, compiled: Any, params: Any, name: str = name,
                   seen: list[str] = seen) -> Any:
            values = {**params, **dict(compiled.constants)}
            for key, binder in compiled.binders:
                if key in values:
                    values[key] = binder(values[key])
            seen.append(compiled.sql)
            found.setdefault(compiled.sql, (f"{name} {len(seen)}", compiled.sql, values))
            return execute(connection, compiled, params)

        fastread._execute = record  # type: ignore[assignment]
        try:
            assert client.get(path, headers=headers).status_code == 200, path
        finally:
            fastread._execute = execute  # type: ignore[assignment]
    return list(found.values())


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def beginner(kind: str, user: str) -> Callable[[Any], None]:
    """How the app begins a transaction on ``kind``."""
    from app.rowsecurity import Scope, apply_scope

    if kind == "on":
        return lambda connection: apply_scope(connection, Scope(user_id=user))
    return lambda connection: connection.pgconn.exec_(b"BEGIN")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()
    with scratch_dir() as directory, ExitStack() as stack:
        on_url = database("postgresql", directory, stack, names=("bench", "bench_off"))
        off_url = on_url.rsplit("/", 1)[0] + "/bench_off"
        data = {"on": prepare(on_url, directory / "on.json"),
                "off": prepare(off_url, directory / "off.json")}
        without_policies(off_url)
        os.environ.update(data["on"].env)
        statements = captured(data["on"])
        connections = {"on": connect(on_url), "off": connect(off_url)}
        begin = {kind: beginner(kind, data[kind].user) for kind in data}

        def bound(kind: str, values: dict[str, Any]) -> dict[str, Any]:
            ids = {"household_id": data[kind].household, "user_id": data[kind].user}
            return {key: ids.get(key, value) for key, value in values.items()}

        if args.plans:
            for label, sql, values in statements:
                for kind, connection in connections.items():
                    begin[kind](connection)
                    plan = connection.execute("EXPLAIN (ANALYZE, BUFFERS, VERBOSE) " + sql,
                                              bound(kind, values)).fetchall()
                    connection.commit()
                    print(f"=== {label} [{kind}]\n" + "\n".join(row[0] for row in plan) + "\n")
            return
        figures: dict[tuple[str, str, str], list[float]] = {}
        for number in range(args.rounds + 1):
            kinds = ["off", "on"] if number % 2 else ["on", "off"]
            for kind in kinds:
                connection = connections[kind]
                starts = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    begin[kind](connection)
                    starts.append(time.perf_counter() - start)
                    connection.commit()
                for label, sql, values in statements:
                    params = bound(kind, values)
                    plans, runs, walls = [], [], []
                    for _ in range(args.runs):
                        begin[kind](connection)
                        explained = connection.execute(
                            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params
                        ).fetchone()[0][0]
                        connection.commit()
                        plans.append(explained["Planning Time"] / 1000)
                        runs.append(explained["Execution Time"] / 1000)
                    for _ in range(args.runs):  # apart: EXPLAIN's planning would precede it
                        begin[kind](connection)
                        start = time.perf_counter()
                        connection.execute(sql, params).fetchall()
                        walls.append(time.perf_counter() - start)
                        connection.commit()
                    if number:  # the first round warms up (and lets psycopg prepare)
                        for what, values_ in (("plan", plans), ("exec", runs), ("wall", walls)):
                            figures.setdefault((label, kind, what), []).append(
                                statistics.median(values_))
                if number:
                    figures.setdefault(("transaction start", kind, "wall"), []).append(
                        statistics.median(starts))
        print(f"\nMedians of {args.rounds} rounds of {args.runs} runs (µs): off / on (on - off)")
        labels = ["transaction start"] + [label for label, *_ in statements]
        for label in labels:
            cells = []
            for what in ("plan", "exec", "wall"):
                off, on = (figures.get((label, kind, what)) for kind in ("off", "on"))
                if off and on:
                    a, b = statistics.median(off) * 1e6, statistics.median(on) * 1e6
                    cells.append(f"{what} {a:6.1f} / {b:6.1f} ({b - a:+6.1f})")
            print(f"  {label:18} " + "   ".join(cells))


if __name__ == "__main__":
    main()
