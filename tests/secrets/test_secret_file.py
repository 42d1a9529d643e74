"""file:// over a temporary directory: one file per secret, one trailing newline stripped, no way
out of the directory, read-only, and a missing directory refuses the start."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app.config import ConfigurationRefused
from app.secrets import SecretNotFound
from testkit.builders.secret_stores import open_store
from testkit.checks.log_leaks import remember
from testkit.config import production_config

OUTSIDE = "file-value-outside-the-directory-81d0"
MOUNTED = "file-kubernetes-mounted-value-4c2e"
JWT = "file-jwt-secret-0123456789abcdef-0123456789"
remember(OUTSIDE, MOUNTED, JWT)


@pytest.mark.parametrize(("content", "value"), [
    ("plain-value-1", "plain-value-1"),
    ("with-newline-2\n", "with-newline-2"),
    ("two-newlines-3\n\n", "two-newlines-3\n"),
    ("windows-line-4\r\n", "windows-line-4"),
    ("multi\nline-5\n", "multi\nline-5"),
])
def test_one_trailing_newline_is_stripped(tmp_path: Path, content: str, value: str) -> None:
    (tmp_path / "key").write_bytes(content.encode())
    assert open_store(f"file://{tmp_path}").get("key") == {"key": value}


def test_symlinks_out_of_the_directory_are_not_followed(tmp_path: Path) -> None:
    secrets, elsewhere = tmp_path / "secrets", tmp_path / "elsewhere"
    secrets.mkdir()
    elsewhere.mkdir()
    (elsewhere / "private").write_text(OUTSIDE)
    (secrets / "escape").symlink_to(elsewhere / "private")
    store = open_store(f"file://{secrets}")
    seen: list[str] = []
    store.on_value = seen.append
    with pytest.raises(SecretNotFound) as missing:
        store.get("escape")
    assert OUTSIDE not in str(missing.value) and seen == []


def test_kubernetes_style_links_inside_the_directory_work(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "..2026_01_01").mkdir(parents=True)
    (secrets / "..2026_01_01" / "api_key").write_text(MOUNTED + "\n")
    os.symlink("..2026_01_01", secrets / "..data")
    os.symlink("..data/api_key", secrets / "api_key")
    assert open_store(f"file://{secrets}").get("api_key") == {"api_key": MOUNTED}


def test_read_only_and_absolute_directories_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read-only"):
        open_store(f"file://{tmp_path}?enable_set=true")
    with pytest.raises(ValueError, match="(?i)absolute"):
        open_store("file://run/secrets")


def test_settings_come_from_files(tmp_path: Path, make_app: Callable[..., Flask]) -> None:
    (tmp_path / "AUTH_JWT_SECRET").write_text(JWT + "\n")
    app = make_app(SECRET_STORE_URL=f"file://{tmp_path}", AUTH_JWT_SECRET=None)
    assert app.config["AUTH_JWT_SECRET"] == JWT


def test_a_missing_directory_refuses_the_start(tmp_path: Path, make_app: Callable[..., Flask]) -> None:
    url = f"file://{tmp_path / 'not-mounted'}"
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(**production_config(SECRET_STORE_URL=url))
    assert any("SECRET_STORE_URL" in p and "not a directory" in p for p in refused.value.problems)
    with pytest.raises(ConfigurationRefused, match="SECRET_STORE_URL"):
        make_app(SECRET_STORE_URL=url)  # development too: no fall-back to development values
