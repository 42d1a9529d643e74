"""Every hook is called by the application, with the arguments its specification names: one
``test_hook_<name>`` per hook (Datasette's rule, checked by ``test_every_hook_has_a_test_that_calls_it``).

The plugin under test is one object implementing every hook and recording each call; it is
registered through ``app.plugin_testing``, the pytest helper plugin authors use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult

import click
import pytest
from flask import Blueprint, Flask, current_app, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import select

from app import hookspecs
from app.db import db
from app.plugin_api import (
    ConfigurationRefused,
    Identity,
    Kind,
    LoginBody,
    LoginFailed,
    Principal,
    Schema,
    SecretStore,
    Setting,
    StoreOptions,
    User,
    endpoint,
    hookimpl,
)
from app.plugins import build_manager, plugin_settings
from app.secrets import SECRET_STORE
from app.settings import BY_NAME as SETTINGS_BY_NAME
from app.webhooks.verification import verifiers
from testkit.builders.households import json_object
from testkit.checks.log_leaks import remember

HOOK_SECRET = "hook-test-secret-from-the-plugin-store-0123456789"  # noqa: S105 - a test value
remember(HOOK_SECRET)
PASSWORD = "a long enough test password 4711"  # noqa: S105 - a test value


class RecordedStore(SecretStore):
    name = "recorded"

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        return {name: HOOK_SECRET for name in names if name == "HOOK_TEST_SECRET"}


class RecordedProvider:
    """Logs in any ``…@hook.test`` account whose user exists, whatever the password."""

    name = "recorded"

    def accepts(self, body: LoginBody) -> bool:
        return bool(body.email and body.email.endswith("@hook.test"))

    def account_of(self, body: LoginBody) -> str | None:
        return body.email

    def authenticate(self, body: LoginBody) -> Identity:
        user = db.session.scalars(select(User).where(User.email == body.email)).first()
        if user is None:
            raise LoginFailed("unknown account", body.email)
        return Identity(user=user, method="recorded", account=body.email)


def _verify(headers: Any, body: bytes, secrets: Any, now: int) -> str:
    return "delivery-1"


class WhoAmI(Schema):
    email: str | None


class Recorder:
    """Implements every hook; ``calls`` holds ``(hook, details)`` in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.mail: list[tuple[str, str]] = []

    def called(self, name: str) -> list[Any]:
        return [details for hook, details in self.calls if hook == name]

    @hookimpl
    def secret_store(self, scheme: str, url: SplitResult, query: dict[str, list[str]],
                     config: dict[str, Any]) -> SecretStore | None:
        self.calls.append(("secret_store", (scheme, query.get("cache_ttl"))))
        return RecordedStore(StoreOptions.from_query(query)) if scheme == "recorded" else None

    @hookimpl
    def login_providers(self, app: Flask) -> list[RecordedProvider]:
        self.calls.append(("login_providers", app))
        return [RecordedProvider()]

    @hookimpl
    def webhook_verifiers(self, app: Flask) -> dict[str, Any]:
        self.calls.append(("webhook_verifiers", app))
        return {"recorded": _verify}

    @hookimpl
    def limiter_storage(self, uri: str, config: dict[str, Any]) -> str | None:
        self.calls.append(("limiter_storage", uri))
        return "memory://" if uri.startswith("recorded://") else None

    @hookimpl
    def permissions_for_user(self, user: User, claims: dict[str, Any] | None) -> list[str]:
        self.calls.append(("permissions_for_user", (user.email, claims)))
        return []

    @hookimpl
    def audit_sink(self, event: dict[str, Any], app: Flask) -> None:
        # The sink's own app is the current one (a proxy compares unequal to its object).
        in_context = has_app_context() and current_app._get_current_object() is app  # type: ignore[attr-defined]
        self.calls.append(("audit_sink", (event["action"], app, in_context)))

    @hookimpl
    def audit_witness(self, chain: str, note: str, consistency: Callable[[int], list[bytes]],
                      app: Flask) -> None:
        self.calls.append(("audit_witness", (chain, note.startswith(f"hearthgate/{chain}"),
                                             app.config["HOOK_TEST_FLAG"], has_app_context())))

    @hookimpl
    def mail_sender(self, config: dict[str, Any],
                    instance_path: str) -> Callable[[str, str, str], None]:
        self.calls.append(("mail_sender", instance_path))

        def send(to: str, subject: str, body: str) -> None:
            self.mail.append((to, subject))

        return send

    @hookimpl
    def register_blueprints(self, app: Flask) -> list[Blueprint]:
        self.calls.append(("register_blueprints", app))
        bp = Blueprint("hooktest", __name__, url_prefix="/api/hooktest")

        @bp.get("/whoami")
        @endpoint(response=WhoAmI, summary="The caller, as the plugin sees it", tags=("hooktest",))
        def whoami(principal: Principal) -> dict[str, Any]:
            return {"email": principal.email}

        return [bp]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        self.calls.append(("register_commands", cli))

        @cli.command("hook-test")
        def hook_test() -> None:
            click.echo(f"flag={current_app.config['HOOK_TEST_FLAG']}")

    @hookimpl
    def register_settings(self) -> list[Setting]:
        self.calls.append(("register_settings", None))
        return [Setting("HOOK_TEST_FLAG", "bool", False, "a flag of the hook test plugin"),
                Setting("HOOK_TEST_SECRET", "str", None, "a secret of the hook test plugin",
                        secret=True)]

    @hookimpl
    def startup_checks(self, config: dict[str, Any]) -> list[str]:
        self.calls.append(("startup_checks", (config["HOOK_TEST_FLAG"],
                                              config["HOOK_TEST_SECRET"])))
        return [] if config["HOOK_TEST_FLAG"] else ["HOOK_TEST_FLAG is false"]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def hearthgate_plugins(recorder: Recorder) -> list[object]:
    return [recorder]


@pytest.fixture
def settings() -> dict[str, Any]:
    """What a test adds to the settings (parametrized indirectly)."""
    return {}


@pytest.fixture
def hearthgate_config(database_url: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"DATABASE_URL": database_url, **settings}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_hook_secret_store(hearthgate_app: Flask, recorder: Recorder) -> None:
    # The core adds cache_ttl from SECRET_STORE_CACHE_TTL_SECONDS to the query.
    assert recorder.called("secret_store") == [("memory", ["0"])]


@pytest.mark.parametrize("settings", [{"SECRET_STORE_URL": "recorded://?cache_ttl=5"}])
def test_hook_secret_store_serves_the_plugins_scheme(
    hearthgate_app: Flask, recorder: Recorder
) -> None:
    assert recorder.called("secret_store") == [("recorded", ["5"])]
    assert isinstance(SECRET_STORE.get(hearthgate_app), RecordedStore)
    assert hearthgate_app.config["HOOK_TEST_SECRET"] == HOOK_SECRET


def test_hook_login_providers(
    hearthgate_app: Flask, hearthgate_client: FlaskClient, hearthgate_token: Callable[..., str],
    recorder: Recorder,
) -> None:
    assert recorder.called("login_providers") == [hearthgate_app]
    hearthgate_token(email="ada@hook.test")  # creates the user
    answer = hearthgate_client.post("/api/auth/login",
                                    json={"email": "ada@hook.test", "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    assert json_object(answer)["token"]
    unknown = hearthgate_client.post("/api/auth/login",
                                     json={"email": "bob@hook.test", "password": PASSWORD})
    assert unknown.status_code == 401


def test_hook_webhook_verifiers(hearthgate_app: Flask, recorder: Recorder) -> None:
    found = verifiers(hearthgate_app)
    assert found["recorded"] is _verify
    assert "hyperbeam" in found  # the built-in's as well
    assert recorder.called("webhook_verifiers") == [hearthgate_app]


@pytest.mark.parametrize("settings", [{"RATELIMIT_ENABLED": True,
                                       "RATELIMIT_STORAGE_URI": "recorded://limits"}])
def test_hook_limiter_storage(hearthgate_client: FlaskClient, recorder: Recorder) -> None:
    assert "recorded://limits" in recorder.called("limiter_storage")
    assert hearthgate_client.get("/api/openapi.json").status_code == 200


def test_hook_permissions_for_user(
    hearthgate_client: FlaskClient, hearthgate_token: Callable[..., str], recorder: Recorder
) -> None:
    hearthgate_token(email="ada@hook.test")
    answer = hearthgate_client.post("/api/auth/login",
                                    json={"email": "ada@hook.test", "password": PASSWORD})
    assert answer.status_code == 200
    assert recorder.called("permissions_for_user") == [("ada@hook.test", None)]


def test_hook_audit_sink(
    hearthgate_app: Flask, hearthgate_client: FlaskClient, hearthgate_token: Callable[..., str],
    hearthgate_audit_events: Callable[[], list[dict[str, Any]]], recorder: Recorder,
) -> None:
    created = hearthgate_client.post("/api/households", json={"name": "Hooked"},
                                     headers=_bearer(hearthgate_token()))
    assert created.status_code == 201
    actions = [event["action"] for event in hearthgate_audit_events()]
    assert "household.created" in actions
    # Each sink gets every event with the application, inside an application context of it.
    assert recorder.called("audit_sink") == [(action, hearthgate_app, True) for action in actions]


@pytest.mark.parametrize("settings", [{"HOOK_TEST_FLAG": True}])
def test_hook_audit_witness(
    hearthgate_app: Flask, hearthgate_client: FlaskClient, hearthgate_token: Callable[..., str],
    recorder: Recorder,
) -> None:
    created = hearthgate_client.post("/api/households", json={"name": "Witnessed"},
                                     headers=_bearer(hearthgate_token()))
    assert created.status_code == 201
    household = json_object(created)["id"]
    result = hearthgate_app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    witnessed = recorder.called("audit_witness")
    assert (household, True, True, True) in witnessed
    assert all(details[1:] == (True, True, True) for details in witnessed)


@pytest.mark.parametrize("settings", [{"AUTH_LOCAL_ACCOUNTS_ENABLED": True}])
def test_hook_mail_sender(
    hearthgate_app: Flask, hearthgate_client: FlaskClient, recorder: Recorder
) -> None:
    from plugins.mail import mail_queue

    answer = hearthgate_client.post("/api/auth/register",
                                    json={"email": "new@example.test", "password": PASSWORD,
                                          "name": "New"})
    assert answer.status_code == 201, answer.json
    assert mail_queue(hearthgate_app).drain(10)
    assert recorder.called("mail_sender") == [hearthgate_app.instance_path]
    assert [to for to, _ in recorder.mail] == ["new@example.test"]


def test_hook_register_blueprints(
    hearthgate_app: Flask, hearthgate_client: FlaskClient, hearthgate_token: Callable[..., str],
    recorder: Recorder,
) -> None:
    assert recorder.called("register_blueprints") == [hearthgate_app]
    answer = hearthgate_client.get("/api/hooktest/whoami",
                                   headers=_bearer(hearthgate_token(email="ada@example.test")))
    assert answer.status_code == 200 and answer.json == {"email": "ada@example.test"}
    assert hearthgate_client.get("/api/hooktest/whoami").status_code == 401  # the gateway's


@pytest.mark.parametrize("settings", [{"HOOK_TEST_FLAG": True}])
def test_hook_register_commands(hearthgate_app: Flask, recorder: Recorder) -> None:
    result = hearthgate_app.test_cli_runner().invoke(args=["hook-test"])
    assert result.exit_code == 0 and result.output == "flag=True\n"
    assert recorder.called("register_commands") == [hearthgate_app.cli]


def test_hook_register_settings(hearthgate_app: Flask, recorder: Recorder) -> None:
    assert recorder.called("register_settings") == [None]
    assert hearthgate_app.config["HOOK_TEST_FLAG"] is False  # its default
    assert hearthgate_app.config["HOOK_TEST_SECRET"] is None  # no store holds it
    result = hearthgate_app.test_cli_runner().invoke(args=["security", "check"])
    lines = [li for li in result.output.splitlines() if li.startswith("plugin setting")]
    # Off is the flag's value, not "set" (and not "unset": it is not missing).
    assert lines == ["plugin setting HOOK_TEST_FLAG (bool) of extra-0-Recorder: false",
                     "plugin setting HOOK_TEST_SECRET (str, secret) of extra-0-Recorder: unset"]


SETTING_VALUES: dict[Kind, list[Any]] = {
    "str": [None, "", "a value"], "int": [None, 0, 7], "bool": [None, False, True],
    "list": [None, [], ["a value"]],
}


@pytest.mark.parametrize("secret", [False, True])
@pytest.mark.parametrize("kind", sorted(SETTING_VALUES))
def test_security_check_shows_a_bools_value_and_of_anything_else_only_whether_it_is_set(
    kind: Kind, secret: bool
) -> None:
    from app.cli import setting_state

    setting = Setting("ANY_SETTING", kind, None, "a setting", secret=secret)
    shown = [setting_state(setting, value) for value in SETTING_VALUES[kind]]
    if kind == "bool" and not secret:
        assert shown == ["unset", "false", "true"]
    elif kind in ("int", "bool"):
        assert shown == ["unset", "set", "set"]  # 0 and a secret False are values, not absences
    else:
        assert shown == ["unset", "unset", "set"]
    assert not any("a value" in state or state in ("0", "7") for state in shown)


def test_hook_register_settings_reads_the_environment_and_the_store(
    database_url: str, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    from app import create_app

    monkeypatch.setenv("HOOK_TEST_FLAG", "yes")
    monkeypatch.setenv("HOOK_TEST_SECRET", "secret:HOOK_TEST_SECRET")
    app = create_app({"HEARTHGATE_ENV": "test", "DATABASE_URL": database_url,
                      "SECRET_STORE_URL": "recorded://", "AUTH_JWT_SECRET": HOOK_SECRET,
                      "AUDIT_CHECKPOINT_INTERVAL_SECONDS": 0}, plugins=[recorder])
    assert app.config["HOOK_TEST_FLAG"] is True  # parsed by its kind
    assert app.config["HOOK_TEST_SECRET"] == HOOK_SECRET  # secret:NAME, read from the store
    assert recorder.called("startup_checks") == [(True, HOOK_SECRET)]
    result = app.test_cli_runner().invoke(args=["security", "check"])
    assert "plugin setting HOOK_TEST_SECRET (str, secret) of extra-0-Recorder: set" in \
        result.output
    assert "plugin setting HOOK_TEST_FLAG (bool) of extra-0-Recorder: true" in result.output
    assert HOOK_SECRET not in result.output


def test_two_plugins_declaring_one_setting_refuse_the_start_naming_both(
    recorder: Recorder,
) -> None:
    class Twin:
        @hookimpl
        def register_settings(self) -> list[Setting]:
            return [Setting("HOOK_TEST_FLAG", "bool", True, "the same name")]

    manager = build_manager(extra=[recorder, Twin()])
    with pytest.raises(ConfigurationRefused) as refused:
        plugin_settings(manager, SETTINGS_BY_NAME)
    assert refused.value.problems == [
        "plugin extra-1-Twin declares the setting HOOK_TEST_FLAG, already declared by plugin "
        "extra-0-Recorder"]


def test_hook_startup_checks(hearthgate_app: Flask, recorder: Recorder) -> None:
    # Every other hook's setting is in the configuration the check sees.
    assert recorder.called("startup_checks") == [(False, None)]
    result = hearthgate_app.test_cli_runner().invoke(args=["security", "check"])
    assert result.exit_code == 1
    assert "UNSAFE: HOOK_TEST_FLAG is false" in result.output


def test_every_hook_has_a_test_that_calls_it() -> None:
    """A new hook specification without a ``test_hook_<name>`` here fails (Datasette's rule)."""
    specs = {name for name, spec in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(spec, "hearthgate_spec")}
    tests = {name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")}
    assert specs - tests == set()
    # ... and the recording plugin implements each of them, so each test sees its hook called.
    assert specs <= {name for name in vars(Recorder) if not name.startswith("_")}
