"""The ORM side of encryption at rest: the models' attributes hold plaintext, the columns hold
``app.crypto.fields`` ciphertext.

An encrypted column has the ``Sealed`` type, which binds nothing but ciphertext: a write that
skipped encryption (a Core INSERT given plaintext) fails instead of storing the text. Before a
row is inserted or updated, each encrypted attribute that changed is sealed with the row's id
(assigned here when the model's default would only assign it inside the INSERT), and after the
statement the attribute gets its plaintext back. When a row is loaded or refreshed, the loaded
ciphertext is opened (``fields.decode_value``), so a value that does not open fails the query with
``FieldDecryptionError``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.sql.schema import CallableColumnDefault
from sqlalchemy.types import TypeDecorator

from app.crypto.fields import BY_COLUMN, VERSION, decode_value, encode_value
from app.crypto.keys import keyring
from app.db import Base
from app.sqltypes import table_of

_PENDING = "_hearthgate_sealed_plaintext"


class Sealed(TypeDecorator[str]):
    """TEXT holding a sealed value; refuses to bind anything else."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith(VERSION + ":"):
            raise ValueError("an encrypted column is written unencrypted (app.models.sealed)")
        return value


def _columns(mapper: Mapper[Any]) -> list[str]:
    table = table_of(mapper.class_).name
    return [key for (name, key) in BY_COLUMN if name == table]


def _row_id(mapper: Mapper[Any], target: Any) -> str:
    if target.id is None:
        table = table_of(mapper.class_)
        default = table.c.id.default
        if not isinstance(default, CallableColumnDefault):
            raise ValueError(f"{table.name} rows need an id before they are written")
        # The models' id factories (``new_id``) take no arguments: SQLAlchemy's wrapper of them
        # drops the execution context, which there is none of here.
        target.id = default.arg(None)  # type: ignore[arg-type]
    return str(target.id)


def _seal(mapper: Mapper[Any], connection: Any, target: Any, *, inserting: bool) -> None:
    table = table_of(mapper.class_).name
    ring = keyring(bind=connection)
    row_id = _row_id(mapper, target)
    # A flush that failed after sealing left ciphertext in the attributes of an object that is
    # flushed again (a new object after a rollback): the plaintext goes back first, so the
    # retry seals the text, never the ciphertext. An attribute the rollback expired is absent.
    for column, (value, sealed) in target.__dict__.pop(_PENDING, {}).items():
        if target.__dict__.get(column) == sealed:
            setattr(target, column, value)
    pending: dict[str, tuple[Any, str | None]] = {}
    for column in _columns(mapper):
        if not inserting and not attributes.get_history(target, column).has_changes():
            continue
        value = getattr(target, column)
        sealed = encode_value(table, column, row_id, value, ring)
        pending[column] = (value, sealed)
        setattr(target, column, sealed)
    target.__dict__[_PENDING] = pending


def _seal_new(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    _seal(mapper, connection, target, inserting=True)


def _seal_changed(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    _seal(mapper, connection, target, inserting=False)


def _unseal_written(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    for column, (value, _sealed) in target.__dict__.pop(_PENDING, {}).items():
        attributes.set_committed_value(target, column, value)


def _open(state: InstanceState[Any], context: Any, names: Any) -> None:
    mapper = state.mapper
    table = table_of(mapper.class_).name
    loaded = state.dict
    row_id = str(loaded.get("id"))
    ring = None
    for column in _columns(mapper):
        if (names is None or column in names) and column in loaded:
            if ring is None:
                ring = keyring(bind=context.session.get_bind(mapper))
            attributes.set_committed_value(
                state.obj(), column, decode_value(table, column, row_id, loaded[column], ring)
            )


def _on_load(target: Any, context: Any) -> None:
    _open(attributes.instance_state(target), context, None)


def _on_refresh(target: Any, context: Any, names: Any) -> None:
    _open(attributes.instance_state(target), context, names)


def install() -> None:
    """Attach the events to every mapped class with an encrypted column (once)."""
    tables = {table for (table, _column) in BY_COLUMN}
    for mapper in Base.registry.mappers:
        model = mapper.class_
        if table_of(model).name not in tables or event.contains(
                model, "load", _on_load):
            continue
        event.listen(model, "before_insert", _seal_new)
        event.listen(model, "before_update", _seal_changed)
        event.listen(model, "after_insert", _unseal_written)
        event.listen(model, "after_update", _unseal_written)
        event.listen(model, "load", _on_load)
        event.listen(model, "refresh", _on_refresh)
