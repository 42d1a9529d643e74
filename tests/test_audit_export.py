"""Signed JSON Lines exports verify offline with the public key alone, and any change to the
file is named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app.audit.export import verify_export
from app.audit.signing import PublicKeys
from tests.audit_helpers import edit, session_of, write_events
from tests.helpers import make_household


@pytest.fixture
def exported(make_app: Callable[..., Flask], auth, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    app = make_app(AUDIT_CHECKPOINT_EVERY=3)
    owner = auth.user("owner@example.test")
    household = make_household(app, "Export", {owner.id: "owner"})
    write_events(app, 7, household)
    write_events(app, 2)
    runner = app.test_cli_runner()
    public = tmp_path / "audit-public.pem"
    result = runner.invoke(args=["audit", "public-key"])
    assert result.exit_code == 0 and "PRIVATE" not in result.output
    public.write_text(result.output)
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(args=["audit", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out, public


def _keys(public: Path) -> PublicKeys:
    return PublicKeys.from_pem(public.read_text())


def test_export_verifies_offline_with_the_public_key(exported: tuple[Path, Path]) -> None:
    out, public = exported
    lines = out.read_text().splitlines(keepends=True)
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds[0] == "header" and kinds[-1] == "seal"
    assert kinds.count("event") == 9 and kinds.count("checkpoint") == 2
    report = verify_export(lines, _keys(public))
    assert report.ok, report.problems
    assert (report.chains, report.entries, report.checkpoints) == (2, 9, 2)


def test_verify_export_command(make_app: Callable[..., Flask], exported: tuple[Path, Path]) -> None:
    out, public = exported
    other = make_app()  # another process with another key: only the PEM file is trusted
    ok = other.test_cli_runner().invoke(
        args=["audit", "verify-export", str(out), "--public-key", str(public)])
    assert ok.exit_code == 0 and ok.output.startswith("OK: 2 chains, 9 entries"), ok.output
    own_key = other.test_cli_runner().invoke(args=["audit", "public-key"])
    wrong = out.parent / "wrong.pem"
    wrong.write_text(own_key.output)
    bad = other.test_cli_runner().invoke(
        args=["audit", "verify-export", str(out), "--public-key", str(wrong)])
    assert bad.exit_code == 1 and "bad signature" in bad.output


def _rewrite(out: Path, change: Callable[[list[str]], list[str]]) -> list[str]:
    return change(out.read_text().splitlines(keepends=True))


def _edit_event(lines: list[str]) -> list[str]:
    record = json.loads(lines[2])
    record["action"] = "test.forged"
    lines[2] = json.dumps(record) + "\n"
    return lines


@pytest.mark.parametrize("change, reason", [
    (_edit_event, "edited"),
    (lambda lines: lines[:2] + lines[3:], "deleted"),
    (lambda lines: lines[:-1], "truncated"),
    (lambda lines: lines[:-1] + [lines[-1].replace('"lines":', '"lines":1,"x":')], "bad signature"),
], ids=["edited", "line-dropped", "seal-cut", "seal-forged"])
def test_a_changed_export_fails(exported: tuple[Path, Path], change, reason: str) -> None:  # type: ignore[no-untyped-def]
    out, public = exported
    report = verify_export(_rewrite(out, change), _keys(public))
    assert [p.reason for p in report.problems] == [reason]


def test_tampering_before_the_export_is_named_by_the_offline_verifier(
    make_app: Callable[..., Flask], tmp_path: Path,
) -> None:
    """The seal only proves the file; the chains inside are verified entry by entry as well."""
    app = make_app(AUDIT_CHECKPOINT_EVERY=0)
    write_events(app, 5)
    with session_of(app) as session:
        edit(session, "system", 3, resource="thing:forged")
        session.commit()
    runner = app.test_cli_runner()
    public = tmp_path / "public.pem"
    public.write_text(runner.invoke(args=["audit", "public-key"]).output)
    out = tmp_path / "audit.jsonl"
    assert runner.invoke(args=["audit", "export", "-o", str(out)]).exit_code == 0
    report = verify_export(out.read_text().splitlines(keepends=True), _keys(public))
    assert [(p.chain, p.seq, p.reason) for p in report.problems] == [("system", 3, "edited")]
