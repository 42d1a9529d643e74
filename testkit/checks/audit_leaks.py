"""A pytest plugin (loaded by conftest): after every test that had a database, scan the stored
audit events for anything shaped like a credential or equal to a secret the process handed out.
A hit fails that test, so the whole suite's audit writes are covered, whoever wrote them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.db import build_engine

CREDENTIAL_SHAPES = re.compile(
    r"(?i)bearer\s+[\w.~+/=-]{8,}"
    r"|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"
    r"|whsec_[A-Za-z0-9+/=]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\$argon2"
)


def leaks(rows: list[tuple[object, ...]], known: set[str]) -> list[str]:
    found = []
    for row in rows:
        blob = " ".join(str(v) for v in row)
        if CREDENTIAL_SHAPES.search(blob) or any(secret in blob for secret in known):
            found.append(blob[:200])
    return found


def known_secrets() -> set[str]:
    from app.logs import redactor

    return {value for value in redactor._values if len(value) >= 8}  # noqa: SLF001


@pytest.fixture(autouse=True)
def no_secret_in_stored_audit_details(request: pytest.FixtureRequest) -> Iterator[None]:
    if "database_url" not in request.fixturenames:
        yield
        return
    url: str = request.getfixturevalue("database_url")
    yield
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            rows = [tuple(r) for r in connection.execute(text(
                "SELECT principal_id, action, resource, correlation_id, details FROM audit_events"
            ))]
    except Exception:  # noqa: S110 - a test may drop or break the table on purpose
        rows = []
    finally:
        engine.dispose()
    found = leaks(rows, known_secrets())
    assert found == [], f"credential stored in audit details: {found}"
