"""``app.sqltypes`` narrows SQLAlchemy's declared types and refuses what does not fit: every
model of the application is on one Table (the one its mapper writes), a model mapped to a join
is refused; an UPDATE's or DELETE's result counts the rows it matched, an ORM query's is refused.
The refusals are checked on a throwaway declarative base, never the application's."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, column_property, mapped_column

import app.models  # noqa: F401 - every model of the application mapped
from app.db import Base
from app.sqltypes import rows_changed, table_of


class Throwaway(DeclarativeBase):
    pass


class One(Throwaway):
    __tablename__ = "one"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(10))


ONE = One.__table__
TWO = Table("two", Throwaway.metadata, Column("id", Integer, ForeignKey("one.id"), primary_key=True))


class Joined(Throwaway):
    __table__ = ONE.join(TWO)
    id = column_property(ONE.c.id, TWO.c.id)


def test_every_model_is_on_the_table_its_mapper_writes() -> None:
    mappers = list(Base.registry.mappers)
    assert len(mappers) >= 10  # the sweep saw the application's models
    for mapper in mappers:
        assert table_of(mapper.class_) is mapper.local_table, mapper.class_


def test_a_model_mapped_to_a_join_is_refused() -> None:
    assert table_of(One) is ONE and isinstance(ONE, Table)
    with pytest.raises(TypeError, match="Joined is not mapped to one table"):
        table_of(Joined)


def test_a_write_counts_the_rows_it_matched_and_a_query_is_refused() -> None:
    engine = create_engine("sqlite://")
    Throwaway.metadata.create_all(engine)
    with Session(engine) as session:
        session.execute(insert(One), [{"id": n, "name": "a"} for n in range(5)])
        assert rows_changed(session.execute(update(One).where(One.id >= 3).values(name="b"))) == 2
        assert rows_changed(session.execute(update(One).where(One.id > 99).values(name="c"))) == 0
        assert rows_changed(session.execute(delete(One).where(One.name == "a"))) == 3
        assert session.scalars(select(ONE.c.name)).all() == ["b", "b"]  # nothing else changed
        with pytest.raises(TypeError, match="counts no rows"):
            rows_changed(session.execute(select(One)))
    engine.dispose()
