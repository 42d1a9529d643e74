"""A built-in audit sink that flags anomalies in committed events, for a human to look at.

Signals, per principal and per household (``AUDIT_ANOMALY_*`` settings):

- ``denial-burst``: ``AUDIT_ANOMALY_DENIALS`` denied events of one principal, or in one household,
  within ``AUDIT_ANOMALY_WINDOW_SECONDS`` (once per window);
- ``refresh-token-reuse``: a spent refresh token came back (its session was revoked);
- ``new-device-login``: a login by a principal with a device (the login's ``device`` detail,
  else its ``method``) not seen for them before, once they have logged in before;
- ``unusual-approval``: a purchase request approved by its own requester, or approved at an hour
  (UTC) at which the household never approved before, once it has
  ``AUDIT_ANOMALY_APPROVAL_HISTORY`` approvals.

Each flag is a ``security.alert`` event (on the household's chain, else the principal's) and a
WARNING log line. The sink runs on the audit-sink thread of each worker and keeps its history in
memory: it sees what its own worker committed since it started (a signal a plugin sink with a
shared store can widen).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.exc import OperationalError

from app.audit import writer
from app.db import SESSIONS
from app.hookspecs import hookimpl
from app.plugins import PLUGINS
from app.state import Slot

log = logging.getLogger(__name__)

ALERT_ACTION = "security.alert"
APPROVAL_ACTION = "request.approved"
ALERT_ATTEMPTS = 5


class AnomalySink:
    def __init__(self, app: Flask, clock: Callable[[], float] = time.monotonic) -> None:
        config = app.config
        self.app = app
        self.clock = clock
        self.window = float(config.get("AUDIT_ANOMALY_WINDOW_SECONDS") or 60)
        self.denials = int(config.get("AUDIT_ANOMALY_DENIALS") or 20)
        self.approval_history = int(config.get("AUDIT_ANOMALY_APPROVAL_HISTORY") or 10)
        self._lock = threading.Lock()
        self._denied: dict[str, deque[float]] = defaultdict(deque)
        self._flagged_until: dict[str, float] = {}
        self._devices: dict[str, set[str]] = defaultdict(set)
        self._approval_hours: dict[str, list[int]] = defaultdict(list)

    @hookimpl
    def audit_sink(self, event: dict[str, Any]) -> None:
        if event.get("action") == ALERT_ACTION:
            return
        for signal, subject, details in self.signals(event):
            self.alert(event, signal, subject, details)

    def signals(self, event: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        found: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            if event.get("decision") == "denied":
                for subject in self._subjects(event):
                    if self._burst(subject):
                        found.append(("denial-burst", subject,
                                      {"denials": self.denials, "windowSeconds": self.window}))
            action = event.get("action")
            details = event.get("details") or {}
            principal = event.get("principalId")
            if action == "auth.refresh.reuse":
                found.append(("refresh-token-reuse", f"principal:{principal}",
                              {"sessionId": details.get("sessionId")}))
            if action == "auth.login" and event.get("decision") == "allowed" and principal:
                device = str(details.get("device") or details.get("method") or "unknown")
                seen = self._devices[principal]
                if seen and device not in seen:
                    found.append(("new-device-login", f"principal:{principal}",
                                  {"device": device, "knownDevices": len(seen)}))
                seen.add(device)
            if action == APPROVAL_ACTION and event.get("householdId"):
                found += self._approval(event, details, principal)
        return found

    def _subjects(self, event: dict[str, Any]) -> list[str]:
        subjects = []
        if event.get("principalId"):
            subjects.append(f"principal:{event['principalId']}")
        if event.get("householdId"):
            subjects.append(f"household:{event['householdId']}")
        return subjects

    def _burst(self, subject: str) -> bool:
        now = self.clock()
        times = self._denied[subject]
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.denials and self._flagged_until.get(subject, 0) <= now:
            self._flagged_until[subject] = now + self.window
            return True
        return False

    def _approval(self, event: dict[str, Any], details: dict[str, Any], principal: str | None
                  ) -> list[tuple[str, str, dict[str, Any]]]:
        household = str(event["householdId"])
        found: list[tuple[str, str, dict[str, Any]]] = []
        if principal and details.get("requestedBy") == principal:
            found.append(("unusual-approval", f"household:{household}",
                          {"reason": "approved by its own requester",
                           "resource": event.get("resource")}))
        hour = _hour(str(event.get("createdAt") or ""))
        history = self._approval_hours[household]
        if hour is not None:
            if len(history) >= self.approval_history and hour not in history:
                found.append(("unusual-approval", f"household:{household}",
                              {"reason": f"approved at {hour:02d}h UTC, an hour without "
                                         "approvals before", "resource": event.get("resource")}))
            history.append(hour)
        return found

    def alert(self, event: dict[str, Any], signal: str, subject: str,
              details: dict[str, Any]) -> None:
        log.warning("security alert %s for %s (after %s %s seq %s)", signal, subject,
                    event.get("action"), event.get("chain"), event.get("seq"))
        factory = SESSIONS.get(self.app)
        for attempt in range(ALERT_ATTEMPTS):
            try:
                with self.app.app_context(), factory() as session:
                    writer.record(ALERT_ACTION, household_id=event.get("householdId"),
                                 principal_id=event.get("principalId"), resource=subject,
                                 decision="flagged",
                                 details={"signal": signal, "chain": event.get("chain"),
                                          "seq": event.get("seq"), **details},
                                 session=session)
                    session.commit()
                return
            except OperationalError:
                # SQLite refuses a read transaction's upgrade to a write while another writer
                # committed (SQLITE_BUSY_SNAPSHOT, no busy wait): try again on a fresh snapshot.
                if attempt == ALERT_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))


def _hour(created_at: str) -> int | None:
    try:
        return datetime.fromisoformat(created_at.rstrip("Z")).hour
    except ValueError:
        return None


ANOMALY_SINK: Slot[AnomalySink] = Slot("audit.anomaly")  # unset while AUDIT_ANOMALY_ENABLED is off


def init_anomaly(app: Flask) -> AnomalySink | None:
    if not app.config.get("AUDIT_ANOMALY_ENABLED"):
        return None
    sink = AnomalySink(app)
    PLUGINS.get(app).register(sink, name="hearthgate.audit.anomaly")
    ANOMALY_SINK.set(app, sink)
    return sink
