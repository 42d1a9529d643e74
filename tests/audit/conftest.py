"""The audit trail: records, hash chains, signing, checkpoints and proofs, witnesses, exports,
anomaly alerts, and no secret in any stored detail. ``testkit.builders.audit`` writes and tampers
with events; the one fixture of this folder makes the database refuse audit writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from testkit.builders import audit as audit_builders


@pytest.fixture
def failing_audit_storage(app: Flask) -> Iterator[None]:
    """The database refuses every audit insert while the test runs."""
    with audit_builders.failing_audit_storage(app):
        yield
