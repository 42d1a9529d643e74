"""A function that tells a test how it was called and otherwise does what it did, for
``monkeypatch.setattr`` (which statements reached the driver, which threads started)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def spy(function: Callable[P, R], record: Callable[P, object]) -> Callable[P, R]:
    """``function``, which first hands its arguments to ``record``. ``record`` is checked against
    ``function``'s parameters, so a lambda's parameters have their types:
    ``spy(fastread._execute, lambda connection, compiled, params: seen.append(compiled.sql))``."""

    def spied(*args: P.args, **kwargs: P.kwargs) -> R:
        record(*args, **kwargs)
        return function(*args, **kwargs)

    return spied
