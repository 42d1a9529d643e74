"""No log line carries SQL parameters: failed statements are logged by their SQL and the
database's error class, never with the values bound to them (an email, a password hash, a
token). Checked against the session-wide log capture (``testkit/checks/log_leaks.py``), on both
databases."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.db import Database
from testkit.builders.households import AuthActions
from testkit.checks.log_leaks import CapturingHandler, remember
from testkit.config import DB_BACKEND

log = logging.getLogger("tests.sql_logging")


def canary(kind: str) -> str:
    value = f"{kind}-canary-{uuid.uuid4().hex}"
    remember(value)  # the session-wide check too
    return value


@contextmanager
def new_lines(capture: CapturingHandler) -> Iterator[list[str]]:
    """The text of every log line (message and traceback) emitted inside the block."""
    start = len(capture.lines)
    found: list[str] = []
    try:
        yield found
    finally:
        found.extend(text for _, text in capture.lines[start:])


def test_a_registration_that_loses_the_email_race_logs_neither_email_nor_hash(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, leak_check: CapturingHandler
) -> None:
    """The race as it happens: both registrations passed the "email taken" check, the second
    insert fails on the unique index."""
    import plugins.passwords as passwords

    app = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True)
    email = canary("email") + "@example.test"
    hashed = "$argon2id$v=19$m=65536,t=3,p=4$" + canary("hash")
    monkeypatch.setattr(passwords, "email_taken", lambda *_: False)
    monkeypatch.setattr(passwords, "hash_password", lambda _password: hashed)
    client = app.test_client()
    body = {"email": email, "password": "long enough password", "name": "Racer"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    with new_lines(leak_check) as lines:
        lost = client.post("/api/auth/register", json=body)
    assert lost.status_code == 409  # the savepoint turns the unique index's refusal into 409
    assert not [line for line in lines if email.split("@")[0] in line or hashed[30:] in line]


# Two copies of one user under the same new email: the unique index on users.email refuses them.
DUPLICATE_EMAIL = (
    "INSERT INTO users (id, name, email, issuer, subject, permissions, disabled, created_at, "
    "updated_at) SELECT id || two.n, name, :value, issuer, subject || two.n, permissions, "
    "disabled, created_at, updated_at FROM users, (SELECT 'a' AS n UNION ALL SELECT 'b') AS two"
)


def failing_statements() -> list[tuple[str, type[DBAPIError], str]]:
    """(SQL, expected error, parameter name) failing on this database with a bound value."""
    if DB_BACKEND == "postgresql":
        return [
            # the driver's own message quotes the value
            ("SELECT CAST(:value AS integer)", DBAPIError, "value"),
            (DUPLICATE_EMAIL, IntegrityError, "value"),  # the driver's detail quotes the key
        ]
    return [
        ("SELECT * FROM no_such_table WHERE name = :value", OperationalError, "value"),
        (DUPLICATE_EMAIL, IntegrityError, "value"),
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_a_failed_statement_logged_any_way_carries_no_parameter(
    app: Flask, auth: AuthActions, leak_check: CapturingHandler, index: int
) -> None:
    auth.user("existing@example.test")  # a row for the duplicate insert to copy
    sql, expected, name = failing_statements()[index]
    value = canary("param")
    with new_lines(leak_check) as lines, pytest.raises(expected) as caught:
        with Database.engine(app).begin() as connection:
            connection.execute(text(sql), {name: value})
    with new_lines(leak_check) as more:
        try:
            raise RuntimeError("while doing something") from caught.value
        except RuntimeError:
            log.exception("statement failed")
        log.error("statement failed: %s", caught.value)
        log.error("statement failed: %r", caught.value)
        log.warning(caught.value)
        log.error("original: %s", caught.value.orig)
    lines += more
    assert len(lines) == 5
    assert not [line for line in lines if value in line]
    # the engine hides the bound parameters in its errors too (a PostgreSQL driver message may
    # still quote a value: that text never reaches a log line, as asserted above)
    assert "SQL parameters hidden" in str(caught.value)
    assert all(type(caught.value).__name__ in line or "original" in line for line in lines)


def test_a_database_outage_under_a_request_logs_no_parameter(
    app: Flask, auth: AuthActions, leak_check: CapturingHandler
) -> None:
    """The gateway's 503 and 500 paths: what they log names the error, never its values."""
    from app.gateway.errors import _unexpected

    value = canary("param")
    try:
        with Database.engine(app).begin() as connection:
            connection.execute(text("SELECT * FROM no_such_table_either WHERE x = :v"), {"v": value})
    except DBAPIError as exc:
        error = exc
    failures = [error, IntegrityError("INSERT INTO t VALUES (?)", (value,), Exception(value))]
    with new_lines(leak_check) as lines, app.test_request_context("/api/households"):
        for failure in failures:
            try:  # Flask calls its error handlers while the exception is being handled
                raise failure
            except DBAPIError as exc:
                assert _unexpected(exc).status_code in (500, 503)
    assert len(lines) == 2 and not [line for line in lines if value in line]
    assert "IntegrityError" in lines[1] and "INSERT INTO t" in lines[1]
