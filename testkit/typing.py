"""Types that tests annotate with: the fixtures' types, and JSON as a request body carries it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from flask import Flask


class MakeApp(Protocol):
    """The ``make_app`` fixture: an app with the test settings plus ``overrides``."""

    def __call__(self, **overrides: Any) -> Flask: ...


LimitedApp = MakeApp
"""The ``limited_app`` fixture: an app with rate limiting on, the test routes and ``overrides``."""

Json: TypeAlias = "None | bool | int | float | str | Sequence[Json] | Mapping[str, Json]"
"""A JSON value as a test writes one (a body for ``requests``' or the test client's ``json=``)."""
