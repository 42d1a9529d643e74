"""Production refuses every unsafe setting of API.md, naming each one; development is convenient."""

from __future__ import annotations

import ast
import base64
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.config import (
    PRODUCTION_RULES,
    STRENGTH_CHECKED,
    ConfigurationError,
    ConfigurationRefused,
    estimated_bits,
    load_settings,
)
from app.gateway.tokens import ACCESS_TOKENS
from app.hookspecs import hookimpl
from app.secrets import SECRET_STORE
from app.settings import BY_NAME, DEV_JWT_SECRET, SECRET_SETTINGS, Setting
from testkit.checks.log_leaks import remember
from testkit.config import PRODUCTION_DATA_KEY, production_config
from testkit.servers.processes import free_port
from testkit.typing import MakeApp

ROOT = Path(__file__).resolve().parent.parent


def test_safe_production_config_starts(make_app: MakeApp) -> None:
    app = make_app(**production_config())
    assert app.config["REQUIRE_BUYFLOW_INTERNAL_TOKEN"] is True
    assert app.config["HYPERBEAM_ENFORCE_EVENT_SIGNATURES"] is True


def test_every_offending_setting_is_named_not_only_the_first(database_url: str) -> None:
    changes: dict[str, Any] = {
        "AUTH_JWT_PRIVATE_KEY": None, "DEVELOPMENT_AUTH_ENABLED": True, "DEBUG": True,
        "REQUIRE_BUYFLOW_INTERNAL_TOKEN": False, "REQUIRE_INTERNAL_EVENT_TOKEN": False,
        "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": False, "CORS_ORIGINS": ["*"],
        "CORS_ALLOW_CREDENTIALS": True, "RATELIMIT_STORAGE_URI": "memory://",
        "SECRET_STORE_URL": "memory://", "BUYFLOW_INTERNAL_TOKEN": [WEAK_BASE64],
    }
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, **changes))
    message = str(refused.value)
    for name in ("AUTH_JWT_PRIVATE_KEY", "DEVELOPMENT_AUTH_ENABLED", "DEBUG",
                 "REQUIRE_BUYFLOW_INTERNAL_TOKEN", "REQUIRE_INTERNAL_EVENT_TOKEN",
                 "HYPERBEAM_ENFORCE_EVENT_SIGNATURES", "CORS_ORIGINS", "RATELIMIT_STORAGE_URI",
                 "SECRET_STORE_URL", "BUYFLOW_INTERNAL_TOKEN"):
        assert name in message


def test_memory_limiter_with_one_worker_is_fine(make_app: MakeApp) -> None:
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


def test_security_check_command_reports_and_fails(make_app: MakeApp) -> None:
    app = make_app(AUTH_OIDC_REDIRECT_URIS=["https://spa.example.test/#x"])  # warned, not refused
    result = app.test_cli_runner().invoke(args=["security", "check"])
    assert result.exit_code == 1
    assert "AUTH_OIDC_REDIRECT_URIS" in result.output
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
    assert settings["worker_class"] == "app.serving.BufferingWorker"
    assert settings["forwarded_allow_ips"] == ""
    before = gc.get_freeze_count()
    try:
        settings["post_worker_init"](object())
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


# -- weak secrets: every value of a secret setting carries 128 bits in production -----------------

WEAK_SHORT = "k7Qz2"  # five characters: shorter than the length the log redactor once skipped
WEAK_HEX = "0123456789abcdef0123456789abcde"  # 31 hex characters: 124 bits
STRONG_HEX = WEAK_HEX + "f"  # 32: 128 bits
WEAK_BASE64 = "Zq9xYw3KpL0vBn7TsR2mQ"  # 21 base64 characters: 126 bits
STRONG_BASE64 = WEAK_BASE64 + "w"  # 22: 132 bits
WEAK_WHSEC = "whsec_" + base64.b64encode(b"fifteen-bytes!!").decode()  # 15 bytes: 120 bits
STRONG_WHSEC = "whsec_" + base64.b64encode(b"sixteen-bytes!!!").decode()  # 16 bytes: 128 bits
NOT_A_PEM = "not-a-key-in-pem-format-9d41"
remember(WEAK_SHORT, WEAK_HEX, WEAK_BASE64, WEAK_WHSEC, STRONG_HEX, STRONG_BASE64, STRONG_WHSEC,
         NOT_A_PEM)


@pytest.mark.parametrize("value, bits", [
    (WEAK_HEX, 124), (STRONG_HEX, 128), (STRONG_HEX.upper(), 128),
    (WEAK_BASE64, 126), (STRONG_BASE64, 132), (STRONG_BASE64 + "==", 132),
    ("a-b_c+d/e", 54),  # base64url and base64 characters: 6 bits each
    ("1234567890", 10 * math.log2(10)),  # digits only: the narrowest alphabet
    ("pass word!", 60),  # outside the alphabets: 6 bits a character, never more
])
def test_secret_strength_is_estimated_from_length_and_alphabet(value: str, bits: float) -> None:
    assert estimated_bits(value) == pytest.approx(bits)


WEAK_VALUES = [
    pytest.param(setting, weak, id=f"{setting}-{label}")
    for setting in ("BUYFLOW_INTERNAL_TOKEN", "ORCHESTRATOR_INTERNAL_TOKEN",
                    "HYPERBEAM_EVENT_SIGNING_SECRET")
    for label, weak in (("5-chars", WEAK_SHORT), ("31-hex", WEAK_HEX), ("21-base64", WEAK_BASE64))
] + [pytest.param("HYPERBEAM_EVENT_SIGNING_SECRET", WEAK_WHSEC, id="whsec-15-bytes")]


@pytest.mark.parametrize("setting, weak", WEAK_VALUES)
def test_production_refuses_internal_tokens_and_webhook_secrets_under_128_bits(
    database_url: str, setting: str, weak: str
) -> None:
    """Each value counts, the rotation's older one too; the refusal names the setting and which
    value, never the value, and nothing else is refused."""
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, **{setting: [STRONG_HEX, weak]}))
    assert len(refused.value.problems) == 1, refused.value.problems
    [problem] = refused.value.problems
    assert problem.startswith(f"{setting} carries fewer than 128 bits (value 2 of 2)")
    assert weak not in str(refused.value) and STRONG_HEX not in str(refused.value)


def test_production_accepts_128_bit_secrets_of_every_shape(make_app: MakeApp) -> None:
    app = make_app(**production_config(
        BUYFLOW_INTERNAL_TOKEN=[STRONG_HEX, STRONG_BASE64],
        ORCHESTRATOR_INTERNAL_TOKEN=[STRONG_BASE64],
        HYPERBEAM_EVENT_SIGNING_SECRET=[STRONG_WHSEC, STRONG_BASE64],
    ))
    assert app.config["HYPERBEAM_EVENT_SIGNING_SECRET"] == [STRONG_WHSEC, STRONG_BASE64]


@pytest.mark.parametrize("setting", SECRET_SETTINGS)
def test_production_refuses_every_secret_setting_too_short_to_redact_safely(
    database_url: str, setting: str
) -> None:
    """The log redactor masks short values only where they stand alone: a secret setting that
    short must never reach a production log, so its start is refused, naming it."""
    value: Any = [WEAK_SHORT] if BY_NAME[setting].kind == "list" else WEAK_SHORT
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, **{setting: value}))
    assert any(setting in problem for problem in refused.value.problems), refused.value.problems
    assert WEAK_SHORT not in str(refused.value)


def test_short_secrets_are_redacted_where_they_stand_alone() -> None:
    from app.logs import MASK, Redactor

    redactor = Redactor()
    redactor.add(WEAK_SHORT)
    redactor.add("x")
    assert redactor.redact(f"provider key {WEAK_SHORT}.") == f"provider key {MASK}."
    assert redactor.redact(f'{{"key": "{WEAK_SHORT}"}}') == f'{{"key": "{MASK}"}}'
    assert redactor.redact("x=1") == f"{MASK}=1"
    # inside a longer word the short value is not the secret: the text is left alone
    assert redactor.redact("ak7Qz2b extra taxi") == "ak7Qz2b extra taxi"


def test_a_short_household_secret_never_reaches_a_log_line(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    store = SECRET_STORE.get(app)
    store.for_tenant("hh_a").set("pin", WEAK_SHORT)
    assert store.for_tenant("hh_a").get("pin") == {"pin": WEAK_SHORT}
    with caplog.at_level(logging.INFO):
        logging.getLogger("hearthgate.test").warning("provider rejected %s", WEAK_SHORT)
    assert WEAK_SHORT not in caplog.text and "provider rejected [REDACTED]" in caplog.text


# -- the development default of AUTH_JWT_SECRET, whatever the algorithm ---------------------------


def test_production_refuses_the_development_jwt_secret_with_an_asymmetric_algorithm(
    database_url: str,
) -> None:
    """Voice and reset tokens derive their keys from AUTH_JWT_SECRET when their own secrets are
    unset: the public development value is refused even when access tokens use RS256."""
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, AUTH_JWT_SECRET=DEV_JWT_SECRET))
    assert refused.value.problems == ["AUTH_JWT_SECRET is the development default"]


# -- CORS: a wildcard with credentials, in every environment --------------------------------------


@pytest.mark.parametrize("environment", ["development", "test"])
def test_wildcard_cors_with_credentials_is_refused_outside_production_too(
    make_app: MakeApp, environment: str
) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(HEARTHGATE_ENV=environment, CORS_ORIGINS=["*"], CORS_ALLOW_CREDENTIALS=True)
    assert refused.value.problems == ["CORS_ORIGINS has '*' while CORS_ALLOW_CREDENTIALS is true"]
    # each half alone is allowed, and the other development conveniences still start
    make_app(HEARTHGATE_ENV=environment, CORS_ORIGINS=["*"])
    make_app(HEARTHGATE_ENV=environment, CORS_ORIGINS=["https://spa.example.test"],
             CORS_ALLOW_CREDENTIALS=True, DEVELOPMENT_AUTH_ENABLED=True)


@pytest.mark.parametrize("environment", ["development", "test"])
def test_a_negative_sink_gather_is_refused_outside_production_too(
    make_app: MakeApp, environment: str
) -> None:
    """A negative rest of the audit-sink thread means nothing: refused, not read as 0; 0 (no
    rest) and the default start, with the rest they say."""
    from app.audit.sinks import AUDIT_SINKS

    with pytest.raises(ConfigurationRefused) as refused:
        make_app(HEARTHGATE_ENV=environment, AUDIT_SINK_GATHER_MILLISECONDS=-1)
    assert refused.value.problems == [
        "AUDIT_SINK_GATHER_MILLISECONDS is negative (0: the sink thread does not rest)"]
    assert AUDIT_SINKS.get(make_app(HEARTHGATE_ENV=environment,
                                    AUDIT_SINK_GATHER_MILLISECONDS=0))._gather == 0
    assert AUDIT_SINKS.get(make_app(HEARTHGATE_ENV=environment))._gather == 0.01


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize("size", [0, -5])
def test_an_unbounded_sink_queue_is_refused_outside_production_too(
    make_app: MakeApp, environment: str, size: int
) -> None:
    """``queue.Queue`` reads a size below 1 as no bound: events would pile up in memory while
    the sinks are down. Refused; 1 is the smallest bound, and it holds."""
    from app.audit.sinks import AUDIT_SINKS

    with pytest.raises(ConfigurationRefused) as refused:
        make_app(HEARTHGATE_ENV=environment, AUDIT_SINK_QUEUE_SIZE=size)
    assert refused.value.problems == [
        "AUDIT_SINK_QUEUE_SIZE is below 1 (the queue of events for the sinks needs a bound)"]
    assert AUDIT_SINKS.get(make_app(HEARTHGATE_ENV=environment,
                                    AUDIT_SINK_QUEUE_SIZE=1))._queue.maxsize == 1


# -- secret settings: the environment, then the store, then the development default ---------------

STORE_JWT_SECRET = "store-jwt-secret-0123456789abcdef-from-the-store"
ENV_JWT_SECRET = "env-jwt-secret-0123456789abcdef-from-the-environment"
remember(STORE_JWT_SECRET, ENV_JWT_SECRET)


class SeededMemoryPlugin:
    """A ``seeded://`` store: the memory store holding what an operator put in it."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    @hookimpl
    def secret_store(
        self, scheme: str, url: Any, query: dict[str, list[str]], config: dict[str, Any]
    ) -> Any:
        from plugins.secrets.memory import MemoryStore

        return MemoryStore(dict(self.values)) if scheme == "seeded" else None


def with_plugin(monkeypatch: pytest.MonkeyPatch, plugin: object) -> None:
    import app.plugins

    build = app.plugins.build_manager

    def build_with_plugin(
        allow: list[str] | None = None, extra: Iterable[object] = ()
    ) -> Any:
        pm = build(allow, extra)
        pm.register(plugin, name=f"test-{type(plugin).__name__}")
        return pm

    monkeypatch.setattr(app.plugins, "build_manager", build_with_plugin)


def signed_with(app: Any, secret: str) -> bool:
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import OctKey

    token = ACCESS_TOKENS.get(app).mint({"sub": "u1"}).token
    try:
        jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    except JoseError:
        return False
    return True


def assert_store_then_default(app_with: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """In development, with AUTH_JWT_SECRET not given: the store's value when it has one, the
    development default when it has none; a value in the environment wins over both."""
    for name in SECRET_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    from_store = app_with(store_has_it=True)
    assert from_store.config["AUTH_JWT_SECRET"] == STORE_JWT_SECRET
    assert signed_with(from_store, STORE_JWT_SECRET) and not signed_with(from_store, DEV_JWT_SECRET)
    assert from_store.config["BUYFLOW_INTERNAL_TOKEN"] is None  # nothing else came from nowhere
    missing = app_with(store_has_it=False)
    assert missing.config["AUTH_JWT_SECRET"] == DEV_JWT_SECRET
    assert signed_with(missing, DEV_JWT_SECRET)
    monkeypatch.setenv("AUTH_JWT_SECRET", ENV_JWT_SECRET)
    explicit = app_with(store_has_it=True)
    assert explicit.config["AUTH_JWT_SECRET"] == ENV_JWT_SECRET
    assert signed_with(explicit, ENV_JWT_SECRET)
    monkeypatch.delenv("AUTH_JWT_SECRET")


def test_a_development_secret_comes_from_the_memory_store_before_its_default(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = SeededMemoryPlugin({})
    with_plugin(monkeypatch, plugin)

    def app_with(store_has_it: bool) -> Any:
        plugin.values = {"AUTH_JWT_SECRET": STORE_JWT_SECRET} if store_has_it else {}
        return create_app({"HEARTHGATE_ENV": "development", "DATABASE_URL": database_url,
                           "SECRET_STORE_URL": "seeded://"})

    assert_store_then_default(app_with, monkeypatch)


def test_a_development_secret_comes_from_openbao_before_its_default(
    database_url: str, monkeypatch: pytest.MonkeyPatch, openbao: Any
) -> None:
    from testkit.servers.secrets import unique_prefix

    def app_with(store_has_it: bool) -> Any:
        prefix = unique_prefix("dev-order")
        if store_has_it:
            openbao.client().secrets.kv.v2.create_or_update_secret(
                path=f"{prefix}/AUTH_JWT_SECRET", secret={"value": STORE_JWT_SECRET},
                mount_point="secret")
        return create_app({"HEARTHGATE_ENV": "development", "DATABASE_URL": database_url,
                           "SECRET_STORE_URL": openbao.url(prefix),
                           "VAULT_TOKEN": openbao.root_token})

    assert_store_then_default(app_with, monkeypatch)


@pytest.mark.usefixtures("aws_credentials")
def test_a_development_secret_comes_from_aws_before_its_default(
    database_url: str, monkeypatch: pytest.MonkeyPatch, moto: Any
) -> None:
    from testkit.servers.secrets import unique_prefix

    def app_with(store_has_it: bool) -> Any:
        prefix = unique_prefix("dev-order")
        if store_has_it:
            moto.client().create_secret(Name=f"{prefix}/AUTH_JWT_SECRET",
                                        SecretString=STORE_JWT_SECRET)
        return create_app({"HEARTHGATE_ENV": "development", "DATABASE_URL": database_url,
                           "SECRET_STORE_URL": moto.url(prefix)})

    assert_store_then_default(app_with, monkeypatch)


# -- every refusal, swept ------------------------------------------------------------------------
#
# One case per refusal the start can raise: each rule of app.config, each plugin's start-up check,
# and each ConfigurationRefused or ConfigurationError raised while the factory runs. Each case
# breaks one thing in an otherwise safe production environment. The start must be refused naming
# the setting, ``flask security check`` (FLASK_APP=wsgi) must print a report naming it and exit 1
# without a traceback, and neither may print a secret value. A refusal added to the code without a
# case here fails test_every_refusal_in_the_code_has_a_case.


@dataclass(frozen=True)
class Refusal:
    id: str
    setting: str
    changes: dict[str, Any] = field(default_factory=dict)  # typed, on top of production_config
    raw: dict[str, str] = field(default_factory=dict)  # environment text, as an operator writes it
    setup: Callable[[pytest.MonkeyPatch], None] | None = None  # what a process cannot be given


def _without_pymemcache(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pymemcache" else real(name, *a))


class AsyncLimiterPlugin:
    @hookimpl
    def limiter_storage(self, uri: str, config: dict[str, Any]) -> str | None:
        return "async+memory://" if uri.startswith("async-test://") else None


def _async_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    with_plugin(monkeypatch, AsyncLimiterPlugin())


class DeclaringPlugin:
    """Declares one setting of its own (``register_settings``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def register_settings(self) -> list[Setting]:
        return [Setting(self.name, "str", None, "a plugin's setting")]


def _declaring(name: str) -> Callable[[pytest.MonkeyPatch], None]:
    def setup(monkeypatch: pytest.MonkeyPatch) -> None:
        with_plugin(monkeypatch, DeclaringPlugin(name))

    return setup


_WEAK_CASES = [
    Refusal(f"weak-{name}-{label}", name,
            {name: [value] if BY_NAME[name].kind == "list" else value})
    for name in STRENGTH_CHECKED
    for label, value in (("5-chars", WEAK_SHORT), ("31-hex", WEAK_HEX), ("21-base64", WEAK_BASE64))
] + [
    Refusal("weak-HYPERBEAM_EVENT_SIGNING_SECRET-whsec-15-bytes", "HYPERBEAM_EVENT_SIGNING_SECRET",
            {"HYPERBEAM_EVENT_SIGNING_SECRET": [STRONG_WHSEC, WEAK_WHSEC]}),
    Refusal("weak-BUYFLOW_INTERNAL_TOKEN-during-rotation", "BUYFLOW_INTERNAL_TOKEN",
            {"BUYFLOW_INTERNAL_TOKEN": [STRONG_BASE64, WEAK_SHORT]}),
]

def _superuser_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database role check of a PostgreSQL start (app.db) finding a superuser. The case's
    database is SQLite; tests/database/test_row_security.py starts on a real superuser."""
    from app.db import Database
    from app.rowsecurity import refuse_bypassing_role

    class Superuser:  # a DBAPI connection whose role the server reports as a superuser
        def cursor(self) -> Superuser:
            return self

        def execute(self, _sql: str) -> None:
            return None

        def fetchone(self) -> tuple[bool, bool]:
            return True, False

        def close(self) -> None:
            return None

    real = Database.init_app

    def init_app(self: Database, app: Any) -> None:
        real(self, app)
        refuse_bypassing_role(Superuser())

    monkeypatch.setattr(Database, "init_app", init_app)


SWEEP: list[Refusal] = [
    Refusal("database-role-bypasses-row-security", "DATABASE_URL", setup=_superuser_database),
    Refusal("plugin-setting-declared-by-the-core", "AUTH_JWT_SECRET",
            setup=_declaring("AUTH_JWT_SECRET")),
    Refusal("plugin-setting-not-upper-case", "my-setting", setup=_declaring("my-setting")),
    Refusal("jwt-dev-default-hs256", "AUTH_JWT_SECRET",
            {"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": DEV_JWT_SECRET}),
    Refusal("jwt-dev-default-rs256", "AUTH_JWT_SECRET", {"AUTH_JWT_SECRET": DEV_JWT_SECRET}),
    Refusal("jwt-secret-unset-hs256", "AUTH_JWT_SECRET",
            {"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": None}),
    Refusal("jwt-secret-short-hs256", "AUTH_JWT_SECRET",
            {"AUTH_JWT_ALGORITHM": "HS256", "AUTH_JWT_SECRET": WEAK_HEX[:20]}),
    Refusal("jwt-secret-short-rs256", "AUTH_JWT_SECRET", {"AUTH_JWT_SECRET": WEAK_HEX[:20]}),
    Refusal("jwt-private-key-unset", "AUTH_JWT_PRIVATE_KEY", {"AUTH_JWT_PRIVATE_KEY": None}),
    Refusal("jwt-private-key-not-pem", "AUTH_JWT_PRIVATE_KEY", {"AUTH_JWT_PRIVATE_KEY": NOT_A_PEM}),
    Refusal("jwt-previous-keys-not-pem", "AUTH_JWT_PREVIOUS_PUBLIC_KEYS",
            {"AUTH_JWT_PREVIOUS_PUBLIC_KEYS": NOT_A_PEM}),
    Refusal("jwt-algorithm-unsupported", "AUTH_JWT_ALGORITHM", {"AUTH_JWT_ALGORITHM": "HS512"}),
    Refusal("development-auth", "DEVELOPMENT_AUTH_ENABLED", {"DEVELOPMENT_AUTH_ENABLED": True}),
    Refusal("debug", "DEBUG", {"DEBUG": True}),
    Refusal("row-security-off", "DATABASE_ROW_SECURITY", {"DATABASE_ROW_SECURITY": False}),
    Refusal("demo-helpers", "DEMO_HELPERS_ENABLED", {"DEMO_HELPERS_ENABLED": True}),
    Refusal("buyflow-token-not-required", "REQUIRE_BUYFLOW_INTERNAL_TOKEN",
            {"REQUIRE_BUYFLOW_INTERNAL_TOKEN": False}),
    Refusal("buyflow-token-unset", "BUYFLOW_INTERNAL_TOKEN", {"BUYFLOW_INTERNAL_TOKEN": None}),
    Refusal("event-token-not-required", "REQUIRE_INTERNAL_EVENT_TOKEN",
            {"REQUIRE_INTERNAL_EVENT_TOKEN": False}),
    Refusal("event-token-unset", "ORCHESTRATOR_INTERNAL_TOKEN", {"ORCHESTRATOR_INTERNAL_TOKEN": []}),
    Refusal("signatures-not-enforced", "HYPERBEAM_ENFORCE_EVENT_SIGNATURES",
            {"HYPERBEAM_ENFORCE_EVENT_SIGNATURES": False}),
    Refusal("webhook-secret-unset", "HYPERBEAM_EVENT_SIGNING_SECRET",
            {"HYPERBEAM_EVENT_SIGNING_SECRET": None}),
    Refusal("webhook-secret-not-base64", "HYPERBEAM_EVENT_SIGNING_SECRET",
            {"HYPERBEAM_EVENT_SIGNING_SECRET": [STRONG_WHSEC, "whsec_!!not-base64!!"]}),
    *_WEAK_CASES,
    Refusal("cors-wildcard-with-credentials", "CORS_ORIGINS",
            {"CORS_ORIGINS": ["*"], "CORS_ALLOW_CREDENTIALS": True}),
    Refusal("limiter-in-process-with-workers", "RATELIMIT_STORAGE_URI",
            {"RATELIMIT_STORAGE_URI": "memory://", "WEB_CONCURRENCY": 4}),
    Refusal("limiter-unknown-scheme", "RATELIMIT_STORAGE_URI",
            {"RATELIMIT_STORAGE_URI": "nosuch://127.0.0.1"}),
    Refusal("limiter-memcached-without-client", "RATELIMIT_STORAGE_URI",
            {"RATELIMIT_STORAGE_URI": "memcached://127.0.0.1:1"}, setup=_without_pymemcache),
    Refusal("limiter-asynchronous-storage", "RATELIMIT_STORAGE_URI",
            {"RATELIMIT_STORAGE_URI": "async-test://x"}, setup=_async_limiter),
    Refusal("limiter-strategy-unknown", "RATELIMIT_STRATEGY", raw={"RATELIMIT_STRATEGY": "nope"}),
    Refusal("limiter-strategy-unsupported-by-storage", "RATELIMIT_STRATEGY",
            {"RATELIMIT_STORAGE_URI": "memcached://127.0.0.1:1",
             "RATELIMIT_STRATEGY": "moving-window"}),
    Refusal("limit-unparseable", "RATELIMIT_ANONYMOUS", raw={"RATELIMIT_ANONYMOUS": "lots"}),
    Refusal("secret-store-memory", "SECRET_STORE_URL", {"SECRET_STORE_URL": "memory://"}),
    Refusal("secret-store-unknown-scheme", "SECRET_STORE_URL", {"SECRET_STORE_URL": "nosuch://x"}),
    Refusal("secret-store-bad-option", "SECRET_STORE_URL",
            {"SECRET_STORE_URL": "env://?cache_ttl=-1"}),
    Refusal("secret-store-missing-reference", "SECRET_STORE_URL",
            {"BUYFLOW_INTERNAL_TOKEN": ["secret:HGTEST_MISSING"]}),
    Refusal("audit-key-unset", "AUDIT_SIGNING_KEY", {"AUDIT_SIGNING_KEY": None}),
    Refusal("audit-key-not-pem", "AUDIT_SIGNING_KEY", {"AUDIT_SIGNING_KEY": NOT_A_PEM}),
    Refusal("data-keys-unset", "DATA_ENCRYPTION_KEYS", {"DATA_ENCRYPTION_KEYS": None}),
    Refusal("data-key-not-32-bytes", "DATA_ENCRYPTION_KEYS",
            {"DATA_ENCRYPTION_KEYS": [PRODUCTION_DATA_KEY, base64.b64encode(b"k" * 31).decode()]}),
    Refusal("data-key-not-base64", "DATA_ENCRYPTION_KEYS",
            {"DATA_ENCRYPTION_KEYS": ["not-base64-but-long-enough-to-be-a-secret!"]}),
    Refusal("local-accounts-without-reset-secret", "AUTH_PASSWORD_RESET_SECRET",
            {"AUTH_LOCAL_ACCOUNTS_ENABLED": True}),
    Refusal("oidc-issuer-not-https", "AUTH_OIDC_ISSUER",
            {"AUTH_OIDC_ISSUER": "http://idp.example.test", "AUTH_OIDC_AUDIENCE": "spa"}),
    Refusal("oidc-redirect-with-fragment", "AUTH_OIDC_REDIRECT_URIS",
            {"AUTH_OIDC_REDIRECT_URIS": ["https://spa.example.test/#x"]}),
    Refusal("integer-unparseable", "WEB_CONCURRENCY", raw={"WEB_CONCURRENCY": "many"}),
    Refusal("sink-gather-negative", "AUDIT_SINK_GATHER_MILLISECONDS",
            {"AUDIT_SINK_GATHER_MILLISECONDS": -1}),
    Refusal("sink-queue-unbounded", "AUDIT_SINK_QUEUE_SIZE", {"AUDIT_SINK_QUEUE_SIZE": 0}),
    Refusal("boolean-unparseable", "DEBUG", raw={"DEBUG": "maybe"}),
    Refusal("environment-unknown", "HEARTHGATE_ENV", raw={"HEARTHGATE_ENV": "staging"}),
]


def environment_of(config: dict[str, Any]) -> dict[str, str]:
    """Settings as environment variables (unset ones left out)."""
    env = {}
    for name, value in config.items():
        if value is None:
            continue
        if isinstance(value, bool):
            env[name] = "true" if value else "false"
        elif isinstance(value, list):
            env[name] = " ".join(value)
        else:
            env[name] = str(value)
    return env


def case_environment(case: Refusal, tmp_path: Path) -> dict[str, str]:
    config = production_config(DATABASE_URL=f"sqlite:///{tmp_path / 'refused.sqlite3'}",
                               **case.changes)
    return {**environment_of(config), **case.raw}


def secret_fragments(env: dict[str, str]) -> list[str]:
    """What of the case's secrets must not be printed: each value (every PEM body line)."""
    found: list[str] = []
    for name in SECRET_SETTINGS:
        text = env.get(name, "")
        for value in text.split() if BY_NAME[name].kind == "list" else [text]:
            if "-----BEGIN" in value:
                found.extend(line for line in value.splitlines() if len(line) >= 16
                             and not line.startswith("-----"))
            elif len(value) >= len(WEAK_SHORT) and not value.startswith("secret:"):
                found.append(value)
    return found


def isolate_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in list(os.environ):
        if name in BY_NAME or name in ("REDIS_URL", "FLASK_APP"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def start_refusal(case: Refusal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    isolate_environment(monkeypatch, case_environment(case, tmp_path))
    if case.setup:
        case.setup(monkeypatch)
    with pytest.raises((ConfigurationRefused, ConfigurationError)) as refused:
        create_app()
    found = refused.value
    return found.problems if isinstance(found, ConfigurationRefused) else [str(found)]


@pytest.mark.parametrize("case", SWEEP, ids=[c.id for c in SWEEP])
def test_each_refusal_names_its_setting_and_no_secret(
    case: Refusal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    problems = start_refusal(case, monkeypatch, tmp_path)
    assert any(case.setting in problem for problem in problems), problems
    text = "\n".join(problems)
    for fragment in secret_fragments(case_environment(case, tmp_path)):
        assert fragment not in text


@pytest.mark.parametrize("case", SWEEP, ids=[c.id for c in SWEEP])
def test_security_check_reports_each_refusal_without_a_traceback(
    case: Refusal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real ``flask`` command group loading FLASK_APP=wsgi, in this process (the separate
    process is test_security_check_in_production_reports_every_unsafe_setting)."""
    from click.testing import CliRunner
    from flask.cli import cli

    env = case_environment(case, tmp_path)
    isolate_environment(monkeypatch, {**env, "FLASK_APP": "wsgi"})
    if case.setup:
        case.setup(monkeypatch)
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)
    result = CliRunner().invoke(cli, ["security", "check"], catch_exceptions=True)
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "UNSAFE: " in result.output
    assert case.setting in result.output
    for fragment in secret_fragments(env):
        assert fragment not in result.output


def _literal_pattern(node: ast.expr) -> str | None:
    """The regular expression of a message literal (f-string fields match anything)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(re.escape(part.value)
                       if isinstance(part, ast.Constant) and isinstance(part.value, str) else ".*?"
                       for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_pattern(node.left), _literal_pattern(node.right)
        if left is None and right is None:
            return None
        return (left or ".*?") + (right or ".*?")
    return None


def refusal_messages_in_the_code() -> dict[str, str]:
    """Every message the start can refuse with, as ``{pattern: where}``: the string returns of
    app/config.py (its rules), what every ``startup_checks`` hook appends or returns, and the
    messages of every ``ConfigurationRefused``/``ConfigurationError`` raised in app/ and
    plugins/. Messages built at run time (``_flag``, ``_weak_secret``) are checked by rule."""
    config_py = ROOT / "app" / "config.py"
    patterns: dict[str, str] = {}
    for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            nodes: list[ast.expr] = []
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    if path == config_py:
                        nodes.append(node.value)
                    if function.name == "startup_checks" and isinstance(node.value, ast.List):
                        nodes += node.value.elts
                if not isinstance(node, ast.Call):
                    continue
                if (function.name == "startup_checks" and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "append"):
                    nodes += node.args
                if isinstance(node.func, ast.Name) and node.func.id in (
                        "ConfigurationRefused", "ConfigurationError"):
                    for arg in node.args:
                        nodes += arg.elts if isinstance(arg, ast.List) else [arg]
            for node in nodes:
                pattern = _literal_pattern(node)
                if pattern:
                    patterns.setdefault(pattern, f"{path.relative_to(ROOT)}:{function.name}")
    return patterns


def test_every_refusal_in_the_code_has_a_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new rule, start-up check or refusal in the factory without a case in SWEEP fails here."""
    messages: list[str] = []
    fired: set[int] = set()
    for case in SWEEP:
        with monkeypatch.context() as patch:
            messages += start_refusal(case, patch, tmp_path)
        config = load_settings({}, overrides=production_config(**case.changes))
        fired.update(i for i, rule in enumerate(PRODUCTION_RULES) if rule(config))
    missing_rules = [r.__name__ for i, r in enumerate(PRODUCTION_RULES) if i not in fired]
    assert not missing_rules, f"rules without a case in SWEEP: {missing_rules}"
    missing = {where: pattern for pattern, where in refusal_messages_in_the_code().items()
               if not any(re.match(pattern, message, re.S) for message in messages)}
    assert not missing, f"refusals without a case in SWEEP: {missing}"


@pytest.mark.slow
def test_security_check_in_production_reports_every_unsafe_setting(tmp_path: Path) -> None:
    """A separate ``flask security check`` process (FLASK_APP=wsgi) in a production environment
    the factory refuses: a report naming every unsafe setting, exit 1, no traceback, no value."""
    unsafe = {"AUTH_JWT_SECRET": DEV_JWT_SECRET, "DEVELOPMENT_AUTH_ENABLED": True,
              "BUYFLOW_INTERNAL_TOKEN": [WEAK_SHORT], "ORCHESTRATOR_INTERNAL_TOKEN": [WEAK_HEX],
              "HYPERBEAM_EVENT_SIGNING_SECRET": [WEAK_WHSEC], "CORS_ORIGINS": ["*"],
              "CORS_ALLOW_CREDENTIALS": True, "DEMO_HELPERS_ENABLED": True}
    config = production_config(DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}", **unsafe)
    env = {k: v for k, v in os.environ.items() if k not in BY_NAME and k != "REDIS_URL"}
    env.update(environment_of(config), FLASK_APP="wsgi")
    proc = subprocess.run([sys.executable, "-m", "flask", "security", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    reported = [line for line in output.splitlines() if line.startswith("UNSAFE: ")]
    for name in ("AUTH_JWT_SECRET", "DEVELOPMENT_AUTH_ENABLED", "BUYFLOW_INTERNAL_TOKEN",
                 "ORCHESTRATOR_INTERNAL_TOKEN", "HYPERBEAM_EVENT_SIGNING_SECRET", "CORS_ORIGINS",
                 "DEMO_HELPERS_ENABLED"):
        assert any(name in line for line in reported), (name, output)
    for value in (DEV_JWT_SECRET, WEAK_SHORT, WEAK_HEX, WEAK_WHSEC):
        assert value not in output
    # the other commands are refused the same way, and nothing is served
    upgrade = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 1 and "Traceback" not in upgrade.stderr
    assert "refusing to start" in upgrade.stderr and "AUTH_JWT_SECRET" in upgrade.stderr
    assert not (tmp_path / "p.sqlite3").exists() or (tmp_path / "p.sqlite3").stat().st_size == 0
