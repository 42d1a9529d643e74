"""The built-in anomaly sink: denial bursts per principal and per household, refresh-token reuse,
new-device logins and unusual approvals each become a ``security.alert`` event and a warning;
ordinary traffic raises nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import audit
from app.audit.anomaly import ANOMALY_SINK
from app.audit.sinks import AUDIT_SINKS
from app.models import AuditEvent
from testkit.builders.audit import session_of

pytestmark = pytest.mark.settings(AUDIT_ANOMALY_ENABLED=True, AUDIT_ANOMALY_DENIALS=3,
                                  AUDIT_ANOMALY_WINDOW_SECONDS=3600, AUDIT_ANOMALY_APPROVAL_HISTORY=3)


def _record(app: Flask, action: str, **kwargs: Any) -> None:
    with app.app_context(), session_of(app) as session:
        audit.record(action, session=session, **kwargs)
        session.commit()
    # One writer at a time: SQLite refuses a second concurrent writer's upgrade outright.
    assert AUDIT_SINKS.get(app).drain(30)


def _alerts(app: Flask) -> list[tuple[str, str | None, str | None]]:
    assert AUDIT_SINKS.get(app).drain(30)
    with session_of(app) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "security.alert")
                               .order_by(AuditEvent.id)).all()
    return [(r.details["signal"], r.resource, r.household_id) for r in rows]


def test_ordinary_traffic_raises_nothing(app: Flask) -> None:
    for _ in range(2):
        _record(app, "auth.login", principal_id="usr_a", details={"method": "password"})
    _record(app, "permission.denied", principal_id="usr_a", decision="denied")
    assert _alerts(app) == []


def test_a_burst_of_denials_is_flagged_once_per_principal_and_household(
    app: Flask, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.audit.anomaly"):
        for _ in range(5):
            _record(app, "role.denied", principal_id="usr_b", household_id="hh_x",
                    decision="denied")
        alerts = _alerts(app)
    assert alerts == [("denial-burst", "principal:usr_b", "hh_x"),
                      ("denial-burst", "household:hh_x", "hh_x")]
    assert any("denial-burst" in r.getMessage() for r in caplog.records)


def test_refresh_token_reuse_and_a_new_device_are_flagged(app: Flask) -> None:
    _record(app, "auth.refresh.reuse", principal_id="usr_c", decision="denied",
            details={"sessionId": "rtf_1"})
    _record(app, "auth.login", principal_id="usr_c", details={"method": "password"})
    _record(app, "auth.login", principal_id="usr_c", details={"method": "password"})
    _record(app, "auth.login", principal_id="usr_c", details={"method": "oidc"})
    assert _alerts(app) == [("refresh-token-reuse", "principal:usr_c", None),
                            ("new-device-login", "principal:usr_c", None)]


def test_unusual_approvals_are_flagged(app: Flask) -> None:
    _record(app, "request.approved", principal_id="usr_d", household_id="hh_y",
            resource="request:req_1", details={"requestedBy": "usr_d"})
    assert _alerts(app) == [("unusual-approval", "household:hh_y", "hh_y")]
    sink = ANOMALY_SINK.get(app)
    # Three approvals at one hour are the household's pattern; one at another hour is not.
    for hour in (9, 9, 9):
        assert sink.signals(_approval(hour)) == []
    flagged = sink.signals(_approval(3))
    assert [(s, subject) for s, subject, _ in flagged] == [("unusual-approval", "household:hh_z")]
    assert sink.signals(_approval(9)) == []


def _approval(hour: int) -> dict[str, Any]:
    return {"action": "request.approved", "householdId": "hh_z", "principalId": "usr_owner",
            "decision": "allowed", "details": {"requestedBy": "usr_kid"},
            "createdAt": f"2026-01-01T{hour:02d}:00:00.000000Z", "resource": "request:r"}
