"""A request's transaction on a pooled DBAPI connection, without SQLAlchemy's ``Connection``
(``RequestTransaction``; ``app.db`` hands it out and describes when), and the execution options
that tell the engine's ``begin`` listeners how a connection's transaction begins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError, StatementError

WRITE_LOCK = "hearthgate_write_lock"  # execution option: this connection's BEGIN takes it
# Execution option, set only while a ``RequestTransaction`` is adopted: its transaction has begun.
ADOPTED = "hearthgate_adopted"

BeginSteps = Callable[["RequestTransaction"], None]  # what begins one (``app.db._begin_steps``)


def driver_error(connection: Connection | RequestTransaction, sql: str | None, exc: Exception
                 ) -> StatementError:
    """A driver's error on ``connection`` as SQLAlchemy raises it (the gateway maps those),
    parameters hidden; a connection the server dropped is invalidated, so the pool replaces it.
    For statements sent straight to the driver (the row-security scope, app.fastread,
    a ``RequestTransaction``)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)  # type: ignore[arg-type]
    if lost:
        connection.invalidate(exc)
    return DBAPIError.instance(
        sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect,
        connection_invalidated=lost)


class RequestTransaction:
    """A request's transaction on a pooled DBAPI connection, for the reads it does before (or
    without) a session (``app.db``).

    Checked out of the engine's pool (its checkout events run: the liveness test), begun by the
    engine's begin steps, then committed or rolled back and returned to the pool, whose reset
    rolls back whatever is left open. Driver errors are raised as SQLAlchemy's, and a connection
    the server dropped is invalidated, as a ``Connection`` does. ``engine``: the engine whose
    options the adopting ``Connection`` takes (``writer``'s for a writing request). ``info``:
    what the request's code keeps about the transaction it began (``app.audit``: the events
    appended in it), handed to the ``Database.on_commit`` listeners once it commits."""

    __slots__ = ("dialect", "connection", "info", "_engine", "_open", "_adopted", "_carried")

    def __init__(self, engine: Engine, begin: BeginSteps) -> None:
        self._engine, self.dialect = engine, engine.dialect
        self.info: dict[str, Any] = {}
        self._adopted: Connection | None = None
        self._carried: RootTransaction | None = None
        try:
            self.connection = engine.raw_connection()
        except self.dialect.loaded_dbapi.Error as exc:
            lost = self.dialect.is_disconnect(exc, None, None)
            raise DBAPIError.instance(None, None, exc, self.dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=self.dialect,
                                      connection_invalidated=lost) from exc
        self._open = True
        try:
            begin(self)
        except BaseException:
            self.close()
            raise

    def invalidate(self, exc: BaseException) -> None:
        self._open = False
        self.connection.invalidate(exc)

    def in_transaction(self) -> bool:
        return self._adopted.in_transaction() if self._adopted is not None else self._open

    @property
    def writes(self) -> bool:
        """Whether this is a writing request's transaction (begun as a ``writer``'s)."""
        return bool(self._engine.get_execution_options().get(WRITE_LOCK))

    @property
    def begun_open(self) -> bool:
        """Whether the transaction this began is still open: its own, or carried on by the
        adopting ``Connection`` (not one that began after it ended)."""
        if self._adopted is None:
            return self._open
        return (self._carried is not None and self._carried.is_active
                and self._adopted.get_transaction() is self._carried)

    def adopt(self) -> Connection:
        """A ``Connection`` on the same DBAPI connection that carries this transaction on (for a
        session opened after the reads): its begin runs none of the begin steps again."""
        if self._adopted is None:
            adopted = Connection(self._engine, self.connection)
            adopted.execution_options(**{ADOPTED: True})
            try:
                self._carried = adopted.begin()
            finally:
                adopted.execution_options(**{ADOPTED: False})  # its next transaction begins anew
            self._adopted = adopted
        return self._adopted

    def commit(self) -> None:
        if self._adopted is not None:
            self._adopted.commit()
        else:
            self._end(self.dialect.do_commit, "COMMIT")

    def rollback(self) -> None:
        if self._adopted is not None:
            self._adopted.rollback()
        else:
            self._end(self.dialect.do_rollback, "ROLLBACK")

    def _end(self, step: Callable[[Any], None], sql: str) -> None:
        if not self._open:
            return
        self._open = False
        try:
            step(self.connection)
        except self.dialect.loaded_dbapi.Error as exc:
            raise driver_error(self, sql, exc) from exc

    def close(self) -> None:
        if self._adopted is not None:
            self._adopted.close()
        else:
            self.connection.close()
