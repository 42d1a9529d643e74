"""Signed JSON Lines exports verify offline with the public key alone, and any change to the
file is named."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.audit.export import verify_export
from app.audit.signing import PublicKeys
from testkit.builders.audit import edit, session_of, write_events
from testkit.builders.households import AuthActions, make_household


@pytest.fixture
def exported(make_app: Callable[..., Flask], auth: AuthActions, tmp_path: Path) -> tuple[Path, Path]:
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
def test_a_changed_export_fails(exported: tuple[Path, Path], change: Callable[[list[str]], list[str]], reason: str) -> None:
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


# -- a sweep of tampers over one export: each is named, never a traceback -----------------------

def _changed(value: object) -> object:
    """Another value of the same JSON kind (a different value, so the line really changes)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {**value, "forged": True}
    if isinstance(value, list):
        return [*value, "forged"]
    return "forged"  # None


def _tampers(lines: list[str]) -> Iterator[tuple[str, list[str], str]]:
    """(case, tampered lines, the reason the verifier must give) for every line of the export
    except the seal (whose tampers are a bad signature): each field removed, each field changed;
    then lines deleted, added, swapped, cut, and not JSON."""
    seal = len(lines) - 1
    for number, line in enumerate(lines[:seal]):
        record = json.loads(line)
        for name in record:
            removed = {k: v for k, v in record.items() if k != name}
            yield (f"line{number + 1}-{record['type']}-without-{name}",
                   [*lines[:number], json.dumps(removed) + "\n", *lines[number + 1:]], "edited")
            changed = {**record, name: _changed(record[name])}
            yield (f"line{number + 1}-{record['type']}-{name}-changed",
                   [*lines[:number], json.dumps(changed) + "\n", *lines[number + 1:]], "edited")
    record = json.loads(lines[seal])
    for name in record:
        removed = {k: v for k, v in record.items() if k != name}
        yield f"seal-without-{name}", [*lines[:seal], json.dumps(removed) + "\n"], "bad signature"
        changed = {**record, name: _changed(record[name])}
        yield f"seal-{name}-changed", [*lines[:seal], json.dumps(changed) + "\n"], "bad signature"
    for number in range(seal):
        yield f"line{number + 1}-deleted", lines[:number] + lines[number + 1:], "deleted"
    for number in range(seal + 1):
        yield (f"line{number + 1}-duplicated", lines[:number + 1] + lines[number:],
               "added")
    yield "line-added-after-the-seal", [*lines, lines[2]], "added"
    yield "blank-line-added", [*lines[:3], "\n", *lines[3:]], "added"
    for number in range(1, seal - 1):
        if lines[number] != lines[number + 1]:
            yield (f"lines{number + 1}-{number + 2}-swapped",
                   [*lines[:number], lines[number + 1], lines[number], *lines[number + 2:]],
                   "reordered")
    yield "header-and-first-event-swapped", [lines[1], lines[0], *lines[2:]], "reordered"
    yield "seal-deleted", lines[:seal], "truncated"
    text = "".join(lines)
    for cut in (len(text) // 3, len(text) - len(lines[seal]) // 2, len(text) - 2):
        yield (f"cut-at-byte-{cut}", text[:cut].splitlines(keepends=True), "truncated")
    yield "empty-file", [], "truncated"
    for number in (0, 2, seal - 1):
        yield (f"line{number + 1}-not-json",
               [*lines[:number], "{not json\n", *lines[number + 1:]], "edited")
    yield "a-json-array-for-a-line", [*lines[:2], "[1, 2]\n", *lines[3:]], "edited"


def test_every_tamper_of_an_export_is_named(exported: tuple[Path, Path]) -> None:
    out, public = exported
    lines = out.read_text().splitlines(keepends=True)
    keys = _keys(public)
    wrong: list[tuple[str, object]] = []
    cases = 0
    for case, tampered, reason in _tampers(lines):
        cases += 1
        try:
            report = verify_export(tampered, keys)
        except Exception as exc:  # noqa: BLE001 - the finding is the traceback itself
            wrong.append((case, f"raised {type(exc).__name__}: {exc}"))
            continue
        reasons = [p.reason for p in report.problems]
        if reasons != [reason]:
            wrong.append((case, reasons))
    print(f"{cases} tampered exports")
    assert cases > 150
    assert wrong == [], f"{len(wrong)} of {cases} misreported: {wrong[:20]}"


def test_verify_export_command_reports_a_missing_hash_as_edited(
    make_app: Callable[..., Flask], exported: tuple[Path, Path],
) -> None:
    out, public = exported
    lines = out.read_text().splitlines(keepends=True)
    event = json.loads(lines[1])
    del event["hash"]
    lines[1] = json.dumps(event) + "\n"
    out.write_text("".join(lines))
    result = make_app().test_cli_runner().invoke(
        args=["audit", "verify-export", str(out), "--public-key", str(public)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.startswith("FAIL ") and " edited " in result.output, result.output
    assert "line 2" in result.output
