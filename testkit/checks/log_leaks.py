"""Whole-session log capture: no remembered secret value may appear in any log line.

``remember(value)`` registers a test secret; ``leak_check`` (session-scoped, autouse, loaded as a
pytest plugin by ``tests/conftest.py``) keeps a handler on the root logger for the whole run and
fails at the end naming the logger of every record whose formatted text contains one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

_remembered: set[str] = set()
_lock = threading.Lock()


def remember(*values: str) -> None:
    """Values that must never appear in a log line during this test session."""
    with _lock:
        _remembered.update(v for v in values if v)


def remembered() -> frozenset[str]:
    with _lock:
        return frozenset(_remembered)


class CapturingHandler(logging.Handler):
    """Keeps the formatted text of every record (message, arguments and traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record is not our finding
            text = str(record.msg)
        self.lines.append((record.name, text))


def leaks(lines: list[tuple[str, str]], values: frozenset[str]) -> list[str]:
    """``logger: value-shape`` for each line containing a value (the value itself is not shown)."""
    found = []
    for logger, text in lines:
        for value in values:
            if value in text:
                found.append(f"{logger}: a remembered value of {len(value)} characters")
    return found


@pytest.fixture(scope="session", autouse=True)
def leak_check() -> Iterator[CapturingHandler]:
    handler = CapturingHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    found = leaks(handler.lines, remembered())
    if found:
        pytest.fail("secret values reached the logs:\n" + "\n".join(sorted(set(found))))
