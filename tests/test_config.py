"""Production refuses every unsafe setting of API.md, naming each one; development is convenient."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from app import create_app
from app.config import DEV_JWT_SECRET, ConfigurationError, ConfigurationRefused, load_settings
from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def rsa_pem() -> str:
    return RSAKey.generate_key(2048).as_pem(private=True).decode()


@functools.cache
def audit_key_pem() -> str:
    from app.audit.signing import generate_pem

    return generate_pem()


def production_config(**changes: Any) -> dict[str, Any]:
    """A production configuration that passes every check; tests break one thing at a time."""
    config: dict[str, Any] = {
        "HEARTHGATE_ENV": "production",
        "SECRET_STORE_URL": "env://?prefix=HGTEST_UNUSED_",
        "AUTH_JWT_ALGORITHM": "RS256",
        "AUTH_JWT_PRIVATE_KEY": rsa_pem(),
        "AUTH_JWT_SECRET": None,
        "BUYFLOW_INTERNAL_TOKEN": ["buyflow-internal-token-value-0001"],
        "ORCHESTRATOR_INTERNAL_TOKEN": ["orchestrator-internal-token-0001"],
        "HYPERBEAM_EVENT_SIGNING_SECRET": ["whsec_dGVzdC1zaWduaW5nLXNlY3JldC0wMDAx"],
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6399",
        "WEB_CONCURRENCY": 2,
        "CORS_ORIGINS": ["https://spa.example.test"],
        "AUDIT_SIGNING_KEY": audit_key_pem(),
    }
    config.update(changes)
    return config


def test_safe_production_config_starts(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**production_config())
    assert app.config["REQUIRE_BUYFLOW_INTERNAL_TOKEN"] is True
    assert app.config["HYPERBEAM_ENFORCE_EVENT_SIGNATURES"] is True


REFUSALS = [
    ({"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": DEV_JWT_SECRET}, "AUTH_JWT_SECRET"),
    ({"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": None}, "AUTH_JWT_SECRET"),
    ({"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": "short"}, "AUTH_JWT_SECRET"),
    ({"AUTH_JWT_PRIVATE_KEY": None}, "AUTH_JWT_PRIVATE_KEY"),
    ({"DEVELOPMENT_AUTH_ENABLED": True}, "DEVELOPMENT_AUTH_ENABLED"),
    ({"DEBUG": True}, "DEBUG"),
    ({"REQUIRE_BUYFLOW_INTERNAL_TOKEN": False}, "REQUIRE_BUYFLOW_INTERNAL_TOKEN"),
    ({"BUYFLOW_INTERNAL_TOKEN": None}, "BUYFLOW_INTERNAL_TOKEN"),
    ({"REQUIRE_INTERNAL_EVENT_TOKEN": False}, "REQUIRE_INTERNAL_EVENT_TOKEN"),
    ({"ORCHESTRATOR_INTERNAL_TOKEN": []}, "ORCHESTRATOR_INTERNAL_TOKEN"),
    ({"HYPERBEAM_ENFORCE_EVENT_SIGNATURES": False}, "HYPERBEAM_ENFORCE_EVENT_SIGNATURES"),
    ({"HYPERBEAM_EVENT_SIGNING_SECRET": None}, "HYPERBEAM_EVENT_SIGNING_SECRET"),
    ({"CORS_ORIGINS": ["*"], "CORS_ALLOW_CREDENTIALS": True}, "CORS_ORIGINS"),
    ({"RATELIMIT_STORAGE_URI": "memory://", "WEB_CONCURRENCY": 4}, "RATELIMIT_STORAGE_URI"),
    ({"SECRET_STORE_URL": "memory://"}, "SECRET_STORE_URL"),
    ({"AUDIT_SIGNING_KEY": None}, "AUDIT_SIGNING_KEY"),
]


@pytest.mark.parametrize("changes, setting", REFUSALS, ids=[s for _, s in REFUSALS])
def test_each_unsafe_setting_is_refused_by_name(database_url: str, changes: dict, setting: str) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, **changes))
    assert any(setting in problem for problem in refused.value.problems), refused.value.problems


def test_every_offending_setting_is_named_not_only_the_first(database_url: str) -> None:
    changes: dict[str, Any] = {}
    for change, _ in REFUSALS[3:]:
        changes.update(change)
    changes["RATELIMIT_STORAGE_URI"] = "memory://"
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, **changes))
    message = str(refused.value)
    for name in ("AUTH_JWT_PRIVATE_KEY", "DEVELOPMENT_AUTH_ENABLED", "DEBUG",
                 "REQUIRE_BUYFLOW_INTERNAL_TOKEN", "REQUIRE_INTERNAL_EVENT_TOKEN",
                 "HYPERBEAM_ENFORCE_EVENT_SIGNATURES", "CORS_ORIGINS", "RATELIMIT_STORAGE_URI",
                 "SECRET_STORE_URL"):
        assert name in message


def test_memory_limiter_with_one_worker_is_fine(make_app) -> None:  # type: ignore[no-untyped-def]
    make_app(**production_config(RATELIMIT_STORAGE_URI="memory://", WEB_CONCURRENCY=1))


def test_development_defaults_are_convenient_and_production_defaults_safe() -> None:
    dev = load_settings({})
    assert dev["HEARTHGATE_ENV"] == "development" and dev["AUTH_JWT_SECRET"] == DEV_JWT_SECRET
    assert dev["SECRET_STORE_URL"] == "memory://"
    prod = load_settings({"HEARTHGATE_ENV": "production"})
    assert prod["AUTH_JWT_SECRET"] is None and prod["AUTH_JWT_ALGORITHM"] == "RS256"
    assert prod["REQUIRE_BUYFLOW_INTERNAL_TOKEN"] and prod["REQUIRE_INTERNAL_EVENT_TOKEN"]
    assert prod["HYPERBEAM_ENFORCE_EVENT_SIGNATURES"] and prod["SECRET_STORE_URL"] == "env://"


def test_environment_parsing() -> None:
    s = load_settings({"CORS_ORIGINS": "https://a.test, https://b.test", "WEB_CONCURRENCY": "3",
                       "DEBUG": "false", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert s["CORS_ORIGINS"] == ["https://a.test", "https://b.test"]
    assert s["WEB_CONCURRENCY"] == 3 and s["DEBUG"] is False
    assert s["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:1/0"  # Heroku's REDIS_URL
    with pytest.raises(ConfigurationError, match="WEB_CONCURRENCY"):
        load_settings({"WEB_CONCURRENCY": "many"})
    with pytest.raises(ConfigurationError, match="DEBUG"):
        load_settings({"DEBUG": "maybe"})
    with pytest.raises(ConfigurationError, match="HEARTHGATE_ENV"):
        load_settings({"HEARTHGATE_ENV": "staging"})


def test_heroku_postgres_url_is_accepted() -> None:
    from app.db import database_url

    assert database_url("postgres://u:p@h:5432/d", "/x") == "postgresql+psycopg://u:p@h:5432/d"
    assert database_url("", "/srv/instance") == "sqlite:////srv/instance/hearthgate.sqlite3"


def test_security_check_command_reports_and_fails(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(CORS_ORIGINS=["*"], CORS_ALLOW_CREDENTIALS=True)
    result = app.test_cli_runner().invoke(args=["security", "check"])
    assert result.exit_code == 1
    assert "CORS_ORIGINS" in result.output
    ok = make_app().test_cli_runner().invoke(args=["security", "check"])
    assert ok.exit_code == 0 and "OK" in ok.output


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTHGATE", "AUTH_"))}
    env.update({
        "HEARTHGATE_ENV": "production",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "SECRET_STORE_URL": "env://",
        "AUTH_JWT_ALGORITHM": "HS256",
        "AUTH_JWT_SECRET": DEV_JWT_SECRET,
        "DEVELOPMENT_AUTH_ENABLED": "true",
        "WEB_CONCURRENCY": "2",
        "HOST": "127.0.0.1",
        "FLASK_APP": "wsgi",
    })
    env.update(extra)
    return env


@pytest.mark.slow
def test_gunicorn_halts_on_refusal_instead_of_respawning(tmp_path: Path) -> None:
    env = _production_env(tmp_path, PORT=str(free_port()))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert time.monotonic() - started < 60
    for name in ("AUTH_JWT_SECRET", "DEVELOPMENT_AUTH_ENABLED", "BUYFLOW_INTERNAL_TOKEN",
                 "ORCHESTRATOR_INTERNAL_TOKEN", "HYPERBEAM_EVENT_SIGNING_SECRET",
                 "RATELIMIT_STORAGE_URI"):
        assert name in proc.stderr
    assert DEV_JWT_SECRET not in proc.stderr  # names the setting, never its value


def test_flask_cli_refuses_in_production(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "security", "check"],
        cwd=ROOT, env=_production_env(tmp_path), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "DEVELOPMENT_AUTH_ENABLED" in proc.stderr + proc.stdout


def test_gunicorn_workers_freeze_their_start_up_objects() -> None:
    import gc
    import runpy

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync" and settings["forwarded_allow_ips"] == ""
    before = gc.get_freeze_count()
    try:
        settings["post_worker_init"](object())
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
