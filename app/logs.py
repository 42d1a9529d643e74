"""Structured logging: JSON lines carrying the request id, and a filter that redacts secrets.

The redaction masks every value the secret store has handed out (registered through
``Redactor.add``) and anything shaped like a bearer token, a JWT, an ``X-Internal-Token`` value, a
webhook secret or a PEM private key, in the message, its arguments and the formatted traceback.

Database errors are logged without the values bound to their statement (an email, a password
hash, a token): a SQLAlchemy error by its SQL and its driver error, a PostgreSQL error by its
class, SQLSTATE and the constraint, table and column it names, never its message or detail
(``Key (email)=(…)``, ``invalid input syntax for type integer: "…"`` quote values). SQLite's
messages name schema objects only and are kept. The engine also hides parameters
(``app.db``); this covers every other way an error reaches a log line.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from app.context import request_id

MASK = "[REDACTED]"
# Every registered value is masked, whatever its length. One shorter than this is masked where it
# stands alone (not inside a longer run of letters and digits), so that a short household secret
# or development value does not mask every word containing it. Production refuses secret settings
# this short (app/config.py: the strength rules), but not every registered value is a setting:
# household secrets, the rate-limit storage's password and the Vault credentials are not.
_SHORTEST_ANYWHERE = 6

# Credentials by shape, wherever they appear: bearer headers, JWTs, X-Internal-Token values,
# Standard Webhooks secrets and PEM private keys (the whole block). The audit trail's redaction
# asks this redactor too (app/audit/redaction.py): one list of shapes for logs and stored details.
_TOKEN_PATTERNS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|(x-internal-token[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    r"|\bwhsec_[A-Za-z0-9+/=]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
)


class Redactor:
    """The set of secret values to mask; shared by every handler of the process."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if not value or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(_value_pattern(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _TOKEN_PATTERNS.sub(_mask_token, text)


def _value_pattern(value: str) -> str:
    if len(value) >= _SHORTEST_ANYWHERE:
        return re.escape(value)
    return rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"


def _mask_token(match: re.Match[str]) -> str:
    prefix = match.group(1) or match.group(2) or ""
    return prefix + MASK


redactor = Redactor()


def _driver_error(exc: BaseException | None) -> str:
    """What a DB-API error may say in a log line: never a value of the statement."""
    if isinstance(exc, sqlite3.Error):
        return str(exc)
    diag = getattr(exc, "diag", None)  # psycopg
    sqlstate = getattr(diag, "sqlstate", None) or getattr(exc, "sqlstate", None)
    if sqlstate is None:
        return "(message withheld)"
    named = [f"SQLSTATE {sqlstate}"] + [
        f"{what} {value}" for what, value in (
            ("constraint", getattr(diag, "constraint_name", None)),
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
        ) if value
    ]
    return ", ".join(named)


def _database_error(exc: BaseException) -> str | None:
    """The loggable text of a database error (its class aside); ``None`` for any other
    exception."""
    from sqlalchemy.exc import StatementError

    if isinstance(exc, StatementError):
        sql = " ".join(str(exc.statement or "").split())
        driver = type(exc.orig)
        return f"({driver.__module__}.{driver.__qualname__}) {_driver_error(exc.orig)} [SQL: {sql}]"
    if isinstance(exc, sqlite3.Error):
        return _driver_error(exc)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return _driver_error(exc)
    return None


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and not any(exc is s for s in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _format_exception(exc_info: Any) -> str:
    """The traceback, each database error in its chain shown by ``_database_error``."""
    text = logging.Formatter().formatException(exc_info)
    for exc in _chain(exc_info[1]):
        safe = _database_error(exc)
        raw = str(exc)
        if safe is not None and raw:
            text = text.replace(raw, safe)
    return text


def _safe_argument(value: Any) -> Any:
    if isinstance(value, BaseException):
        safe = _database_error(value)
        if safe is not None:
            return f"{type(value).__name__}: {safe}"
    return value


def _redacting_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Redact at record creation, so that every handler (pytest's capture included) sees only
    the masked text: a filter on one handler would leave the others unprotected."""

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.msg = _safe_argument(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_argument(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _safe_argument(v) for k, v in record.args.items()}
        record.msg = redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redactor.redact(_format_exception(record.exc_info))
            record.exc_info = None
        return record

    factory._hearthgate = True  # type: ignore[attr-defined]
    return factory


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


def configure_logging(level: str, json_lines: bool) -> None:
    """Install one redacting handler on the root logger (idempotent across app instances)."""
    if not getattr(logging.getLogRecordFactory(), "_hearthgate", False):
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if getattr(handler, "_hearthgate", False):
            return
    handler = logging.StreamHandler()
    handler._hearthgate = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
