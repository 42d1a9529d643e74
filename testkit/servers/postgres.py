"""A real PostgreSQL server for the tests and the benchmarks: a fresh cluster in a temporary
directory, on 127.0.0.1 at a free port, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.servers.processes import free_port, missing, stop, wait_for_port


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


@dataclass
class Postgres:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes]
    settings: tuple[str, ...] = ()  # extra ``-c name=value`` server settings

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={database}", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def owned_database(self, name: str, role: str) -> str:
        """The URL of a new database ``name`` owned and used by ``role``, a login role that is
        neither a superuser nor BYPASSRLS (created on first use), so that row-level security
        binds it as in production."""
        self.psql(f"DO $$ BEGIN CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS; "
                  "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        self.psql(f"CREATE DATABASE {name} OWNER {role}")
        return self.url(name, user=role)

    def stop(self) -> None:
        stop(self.proc, signal.SIGINT)

    def start_again(self) -> None:
        self.proc = _spawn_postgres(self.directory, self.port, self.settings)
        wait_for_port(self.port, proc=self.proc)
        _wait_accepting(self.port)


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _spawn_postgres(directory: Path, port: int, settings: tuple[str, ...] = ()
                    ) -> subprocess.Popen[bytes]:
    postgres = _postgres_bin("postgres")
    assert postgres
    # Started as the postgres user directly, not through runuser: runuser ignores SIGINT, so
    # stop() would never reach the server (it went on running after its runuser was killed).
    as_postgres = "postgres" if os.geteuid() == 0 else None
    with open(directory / "postgres.log", "ab") as log:
        return subprocess.Popen(
            [
                postgres, "-D", str(directory / "data"), "-c", "listen_addresses=127.0.0.1",
                "-p", str(port), "-k", str(directory), "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
                *[arg for setting in settings for arg in ("-c", setting)],
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            user=as_postgres,
            group=as_postgres,
            extra_groups=[] if as_postgres else None,
        )


def _wait_accepting(port: int, timeout: float = 20) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def postgres_server(settings: tuple[str, ...] = ()) -> Iterator[Postgres]:
    """A fresh server in a temporary directory (its log: ``directory / "postgres.log"``), with
    ``settings`` (e.g. ``("log_lock_waits=on",)``) on its command line."""
    initdb = _postgres_bin("initdb")
    if initdb is None or _postgres_bin("postgres") is None:
        missing("PostgreSQL (initdb/postgres) is not installed")
    directory = Path(tempfile.mkdtemp(prefix="hg-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    assert initdb
    subprocess.run(
        _as_postgres([initdb, "-D", str(directory / "data"), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port = free_port()
    server = Postgres(port=port, directory=directory,
                      proc=_spawn_postgres(directory, port, settings), settings=settings)
    try:
        wait_for_port(port, proc=server.proc)
        _wait_accepting(port)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
