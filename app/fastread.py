"""Reads at the driver's floor: every GET's SELECTs run through ``Read``.

A ``Read`` is a SQLAlchemy Core ``Select`` built once at import time. Its SQL text, parameter
order, bind converters and result converters are compiled once per dialect, and each execution
hands them straight to the DBAPI cursor of the request's own transaction (``app.db``: its
``RequestTransaction`` until a session opens, then its session's connection): the same connection
and transaction as every other statement of the request (so per-transaction settings made when
it begins apply to it), without SQLAlchemy's per-execution work (cache key, result metadata, row
objects), which costs several times what two small statements cost the driver. Writes keep the
ORM unit of work, except a statement that writes and returns rows in one round trip
(``Returning``: the audit append, with the change it records), run the same way.

Rows come back as plain dicts, column name to Python value. ``_row_builder`` is the one place
where a row's stored values become Python values: each column's type converter (SQLite stores
datetimes as text), and the hook for any column whose stored value needs decoding
(``DECODERS``). It writes, once per compiled read, a function that builds every row as one dict
display (as ``dataclasses`` writes ``__init__``): a generic loop over converters and decoders
cost twice as much per row.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Column, DateTime, Select, TextualSelect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement

from app.crypto.fields import ENCRYPTED_FIELDS, read_decoder
from app.db import db
from app.rawtransaction import RequestTransaction, driver_error

Decoder = Callable[[Any], Any]
ValueDecoder = Callable[[str, str, Any, Any], Any]  # (table, column, row id, stored value)
# (table, column) → a function called once per read that gives the column's ``ValueDecoder`` for
# that read's rows (resolving per-app state, a key ring say, once). Applied after the type's own
# converter: where a column stored in another form (ciphertext, say) is turned back into its
# value; SQL NULL stays ``None`` without a call. The encrypted columns (app.crypto.fields) are
# decrypted here, on every read path. Read when a statement is compiled: register at start-up
# (``forget_compiled`` otherwise).
DECODERS: dict[tuple[str, str], Callable[[], ValueDecoder]] = {
    (field.table, field.column): read_decoder for field in ENCRYPTED_FIELDS
}
_READS: weakref.WeakSet[_Statement] = weakref.WeakSet()


def forget_compiled() -> None:
    """Compile every read again on its next use (after ``DECODERS`` changed)."""
    for read in _READS:
        read._compiled.clear()


RowBuilder = Callable[[Sequence[Sequence[Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order of a positional paramstyle, else None
    constants: tuple[tuple[str, Any], ...]  # parameters the statement itself fixes (OFFSET 0)
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # column defaults computed per call
    binders: tuple[tuple[str, Decoder], ...]  # parameters that the dialect converts
    build: RowBuilder  # fetched rows → dicts of Python values (``_row_builder``)


class _Statement:
    """A statement with bound parameters that returns rows, compiled once per dialect."""

    __slots__ = ("_compiled", "__weakref__")
    statement: Select[Any] | TextualSelect

    def __init__(self) -> None:
        keys = [column.key for column in self.statement.selected_columns]
        if not keys:
            raise ValueError("a statement names the columns it returns (text(...).columns(...))")
        if len(set(keys)) != len(keys):
            raise ValueError(f"a read's columns need distinct names (label them): {keys}")
        self._compiled: dict[str, _Compiled] = {}
        _READS.add(self)

    def rows_on(self, connection: Connection | RequestTransaction, params: Mapping[str, Any]
                ) -> list[dict[str, Any]]:
        """Every row, as a dict of column name → value, in the transaction of ``connection``
        (a session's, say)."""
        compiled = self._compiled.get(connection.dialect.name)
        if compiled is None:
            compiled = self._compiled[connection.dialect.name] = _compile(
                self.statement, connection.dialect)
        return _execute(connection, compiled, params)


class Read(_Statement):
    """One SELECT, run in the request's transaction (``db.connection``)."""

    __slots__ = ("statement",)
    statement: Select[Any]

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        super().__init__()

    def rows(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, as a dict of column name → value."""
        return self.rows_on(db.connection(), params)

    def first(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = self.rows(params)
        return rows[0] if rows else None


class Returning(_Statement):
    """A statement that writes and returns rows in one round trip, as a SELECT returns them (a
    function's call, say, with a WITH clause that changes rows: ``app.audit.writer``), run in
    the transaction of the connection given (``rows_on``). A column the statement leaves to its
    default gets it as SQLAlchemy's execution would give it (``_column_defaults``)."""

    __slots__ = ("statement",)
    statement: TextualSelect

    def __init__(self, statement: TextualSelect) -> None:
        self.statement = statement
        super().__init__()


def _compile(statement: Select[Any] | TextualSelect, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    sql = compiled.string
    if "POSTCOMPILE" in sql:
        raise ValueError("expanding parameters (IN lists) are not supported: use a subquery")
    binders = []
    defaults = _column_defaults(compiled)
    constants = [(name, parameter.effective_value) for name, parameter in compiled.binds.items()
                 if not parameter.required and name not in defaults]
    for name, parameter in compiled.binds.items():
        binder = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if binder is not None:
            binders.append((name, binder))
    positional = compiled.positiontup if dialect.positional else None
    return _Compiled(sql, tuple(map(str, positional)) if positional is not None else None,
                     tuple(constants), tuple(defaults.items()), tuple(binders),
                     _row_builder(statement, dialect))


class _NoContext:
    """What a column default's function gets for SQLAlchemy's execution context, which a
    statement run here does not have: one that reads it fails, instead of writing a guess."""

    def __getattr__(self, name: str) -> Any:
        raise TypeError("a column default run by app.fastread gets no execution context")


def _column_defaults(compiled: Any) -> dict[str, Callable[[], Any]]:
    """The values that SQLAlchemy computes in Python for the columns an INSERT (or UPDATE)
    leaves out: a constant, or a function (``utcnow``, ``new_id``) called on every execution,
    so that a statement run here writes what SQLAlchemy's execution would."""
    found: dict[str, Callable[[], Any]] = {}
    for columns, kind in ((compiled.insert_prefetch, "default"),
                          (compiled.update_prefetch, "onupdate")):
        for column in columns:
            default = getattr(column, kind)
            if column.key not in compiled.binds or not (default.is_scalar or default.is_callable):
                raise ValueError(f"column {column.key}: its {kind} cannot be computed here")
            if default.is_scalar:
                found[column.key] = (lambda value: lambda: value)(default.arg)
            else:
                found[column.key] = (lambda make: lambda: make(_NoContext()))(default.arg)
    return found


def _row_builder(statement: Select[Any] | TextualSelect, dialect: Dialect) -> RowBuilder:
    """The function that turns the fetched rows of ``statement`` into dicts: for each column,
    its type's converter, then its ``DECODERS`` entry's decoder (given the row's ``id``; each
    distinct entry is called once per read), written out as one expression per key. The source holds
    only indexes and the ``repr`` of names from the models' metadata; the converters and
    decoders are passed in its namespace."""
    columns = list(statement.selected_columns)
    keys = [str(column.key) for column in columns]
    namespace: dict[str, Any] = {}
    values = []
    for index, column in enumerate(columns):
        value = f"row[{index}]"
        converter = _converter(column, dialect)
        if converter is not None:
            namespace[f"convert{index}"] = converter
            value = f"convert{index}({value})"
        values.append(value)
    entries, prepare = [], []
    factories: dict[Callable[[], ValueDecoder], int] = {}
    for index, (key, column) in enumerate(zip(keys, columns, strict=True)):
        table, name = _origin(column)
        value = values[index]
        if (factory := DECODERS.get((table, name))) is not None:
            row_id = values[keys.index("id")] if "id" in keys else "None"
            # One decoder per factory and read: columns that share a factory share its decoder.
            number = factories.setdefault(factory, len(factories))
            if f"factory{number}" not in namespace:
                namespace[f"factory{number}"] = factory
                prepare.append(f"    decode{number} = factory{number}()\n")
            value = (f"(None if (stored := {value}) is None"
                     f" else decode{number}({table!r}, {name!r}, {row_id}, stored))")
        entries.append(f"{key!r}: {value}")
    source = ("def build(fetched):\n"
              + ("    if not fetched:\n        return []\n" if prepare else "")
              + "".join(prepare)
              + f"    return [{{{', '.join(entries)}}} for row in fetched]\n")
    # The source is built above from indexes and repr'd metadata names, never from input.
    exec(compile(source, f"<fastread rows of {', '.join(keys)}>", "exec"), namespace)  # noqa: S102
    return cast(RowBuilder, namespace["build"])


def _converter(column: ColumnElement[Any], dialect: Dialect) -> Decoder | None:
    """The column type's own result converter. SQLite's datetimes are the text SQLAlchemy wrote
    (``2026-01-31 12:00:00.000000``), which ``datetime.fromisoformat`` reads in C, several times
    faster than the generic converter."""
    if dialect.name == "sqlite" and isinstance(column.type, DateTime) and not column.type.timezone:
        nullable = not isinstance(column, Column) or column.nullable
        return _sqlite_datetime if nullable else datetime.fromisoformat
    processor: Any = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return cast(Decoder | None, processor)


def _sqlite_datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _origin(column: ColumnElement[Any]) -> tuple[str, str]:
    """The table and column a selected column reads ("", key for an expression)."""
    base = getattr(column, "element", column)  # a label's column
    if isinstance(base, Column) and base.table is not None:
        return str(base.table.name), str(base.name)
    return "", str(column.key)


def _execute(connection: Connection | RequestTransaction, compiled: _Compiled,
             params: Mapping[str, Any]) -> list[dict[str, Any]]:
    values = dict(params)
    values.update(compiled.constants)
    for name, make in compiled.defaults:
        if name not in values:
            values[name] = make()
    for name, binder in compiled.binders:
        if name in values:
            values[name] = binder(values[name])
    arguments: Sequence[Any] | Mapping[str, Any] = (
        values if compiled.names is None else [values[name] for name in compiled.names])
    raw = connection.connection.driver_connection
    assert raw is not None  # noqa: S101 - a checked-out connection has its driver connection
    cursor = raw.cursor()
    try:
        cursor.execute(compiled.sql, arguments)
        fetched = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as exc:
        raise driver_error(connection, compiled.sql, exc) from exc
    finally:
        cursor.close()
    return compiled.build(fetched)
