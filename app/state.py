"""Application state: what an app builds once and keeps for its lifetime (the database's session
factory, the plugin manager, the secret store, the token keys, the rate limiter…), typed.

Flask keeps an extension's state in ``app.extensions``, a dict of untyped values. Hearthgate
keeps one entry there, ``app.extensions["hearthgate"]``, an ``AppState`` that ``create_app``
attaches before anything else; nothing else in the code reads or writes ``app.extensions``
under a Hearthgate key (``tests/test_state.py`` checks every module).

Each piece of state is a ``Slot[T]``, declared once at module level by the module that builds
it, next to its type (``app.db.SESSIONS``, ``app.gateway.tokens.ACCESS_TOKENS``…). Reads are
typed (``ACCESS_TOKENS.get(app)`` is an ``AccessTokens``), and this module imports nothing of the
application: it sits below every layer of ``.importlinter``, so that every layer may use it and
no slot needs an import that points up or closes a cycle, not even under ``TYPE_CHECKING``.

``app`` is optional on reads: without it, the current app (``flask.current_app``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flask import Flask, current_app

T = TypeVar("T")

EXTENSION_KEY = "hearthgate"  # the one entry of app.extensions that Hearthgate owns


@dataclass(eq=False)
class AppState:
    """The one object under ``app.extensions["hearthgate"]``: each set slot's value."""

    values: dict[Slot[Any], Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"AppState({', '.join(sorted(slot.name for slot in self.values))})"


def init_app(app: Flask) -> AppState:
    """Attach an empty state to ``app`` (``create_app`` does, first); an attached one is kept."""
    found: AppState | None = app.extensions.get(EXTENSION_KEY)
    if found is None:
        found = app.extensions[EXTENSION_KEY] = AppState()
    return found


def of(app: Flask | None = None) -> AppState:
    """The state of ``app`` (default: the current app). An app that ``create_app`` did not build
    has none: a ``KeyError`` rather than an empty state that every read would find unset."""
    try:
        state: AppState = (app or current_app).extensions[EXTENSION_KEY]
    except KeyError:
        raise KeyError("this Flask app has no Hearthgate state (create_app attaches it)") from None
    return state


class Slot(Generic[T]):
    """One typed piece of application state. Slots are compared by identity: ``name`` only
    names it in errors and in ``AppState``'s repr (tests check that names are unique)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"

    # get and find run on the request path: one lookup chain, ``of`` only to name a failure.

    def get(self, app: Flask | None = None) -> T:
        """The value; ``KeyError`` when it was never set (its ``init_*`` did not run)."""
        try:
            value: T = (app or current_app).extensions[EXTENSION_KEY].values[self]
        except KeyError:
            of(app)  # an app without state says so
            raise KeyError(f"application state {self.name!r} is not set") from None
        return value

    def find(self, app: Flask | None = None) -> T | None:
        """The value, or ``None`` when it is not set (a feature turned off, a cache not filled)."""
        try:
            value: T | None = (app or current_app).extensions[EXTENSION_KEY].values.get(self)
        except KeyError:
            of(app)
            raise
        return value

    def set(self, app: Flask, value: T) -> T:
        of(app).values[self] = value
        return value

    def setdefault(self, app: Flask, value: T) -> T:
        """The value already set, else ``value`` once set (atomic: concurrent first uses of a
        lazily built value all get the one that was stored first)."""
        found: T = of(app).values.setdefault(self, value)
        return found

    def pop(self, app: Flask) -> T | None:
        """Unset it; the value it had, or ``None``."""
        value: T | None = of(app).values.pop(self, None)
        return value
