"""The session's leak check: it sees every record on the root logger and names what leaked."""

from __future__ import annotations

import logging

from testkit.checks.log_leaks import CapturingHandler, leaks, remember, remembered


def test_a_remembered_value_in_a_log_line_is_reported_without_the_value() -> None:
    handler = CapturingHandler()
    logger = logging.getLogger("leakcheck.probe")
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", "leak-probe-value-3e9a")
        logger.warning("nothing to see")
    finally:
        logger.removeHandler(handler)
    found = leaks(handler.lines, frozenset({"leak-probe-value-3e9a"}))
    assert found == ["leakcheck.probe: a remembered value of 21 characters"]
    assert leaks(handler.lines, frozenset({"absent-value-000"})) == []


def test_the_session_handler_is_on_the_root_logger() -> None:
    remember("leakcheck-remembered-0001")
    assert "leakcheck-remembered-0001" in remembered()
    assert any(isinstance(h, CapturingHandler) for h in logging.getLogger().handlers)
