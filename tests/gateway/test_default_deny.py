"""Default deny: every rule of the URL map is an endpoint contract or on the explicit list of
uncontracted routes; anything else, a plugin's blueprints included, refuses the start by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pluggy
import pytest
from flask import Blueprint, Flask

import app.plugins
from app.config import ConfigurationRefused
from app.gateway.contracts import contract_of, endpoint
from app.gateway.defaultdeny import UNCONTRACTED_ROUTES, uncontracted_rules
from app.gateway.schemas import Schema
from testkit.apps.plugins import BlueprintPlugin, raw_blueprint
from testkit.builders.households import json_object
from testkit.builders.routes import EVERY_FEATURE
from testkit.servers.processes import PROJECT_ROOT, free_port, stop


class Hello(Schema):
    hello: str


def contracted_blueprint() -> Blueprint:
    bp = Blueprint("contracted_plugin", __name__, url_prefix="/api/plugin")

    @bp.get("/hello")
    @endpoint(auth="bearer", response=Hello)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return bp


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    build = app.plugins.build_manager

    def install(*blueprints: Callable[[], Blueprint]) -> None:
        def build_with_plugin(
            allow: list[str] | None = None, extra: Iterable[object] = ()
        ) -> pluggy.PluginManager:
            pm = build(allow, extra)
            pm.register(BlueprintPlugin(*blueprints), name="blueprint-plugin")
            return pm

        monkeypatch.setattr(app.plugins, "build_manager", build_with_plugin)

    yield install


def test_a_plugins_plain_route_refuses_the_start_naming_it(
    with_plugin: Callable[..., None], make_app: Callable[..., Flask]
) -> None:
    with_plugin(raw_blueprint)
    with pytest.raises(ConfigurationRefused) as refused:
        make_app()
    assert len(refused.value.problems) == 1
    assert "GET /hello-raw (raw_plugin.hello_raw)" in refused.value.problems[0]


def test_a_plugins_contracted_route_is_served_behind_the_gateway(
    with_plugin: Callable[..., None], make_app: Callable[..., Flask]
) -> None:
    with_plugin(contracted_blueprint)
    client = make_app().test_client()
    r = client.get("/api/plugin/hello")
    assert r.status_code == 401 and json_object(r)["error"] == "Unauthorized"
    assert "/api/plugin/hello" in json_object(client.get("/api/openapi.json"))["paths"]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_listed_path_with_another_method_is_refused(
    with_plugin: Callable[..., None], make_app: Callable[..., Flask], method: str
) -> None:
    def shadow() -> Blueprint:
        bp = Blueprint("shadow", __name__)
        bp.add_url_rule("/healthz", "healthz", lambda: "", methods=[method])
        return bp

    with_plugin(shadow)
    with pytest.raises(ConfigurationRefused, match=f"{method} /healthz \\(shadow.healthz\\)"):
        make_app()


def test_a_route_added_after_create_app_is_never_served(make_app: Callable[..., Flask]) -> None:
    application = make_app()
    application.register_blueprint(raw_blueprint())
    client = application.test_client()
    for path in ("/hello-raw", "/healthz", "/api/openapi.json"):
        r = client.get(path)
        assert r.status_code == 500, path
        assert json_object(r)["error"] == "InternalError" and b"world" not in r.data


def test_every_rule_of_the_live_url_map_is_a_contract_or_listed(
    make_app: Callable[..., Flask],
) -> None:
    """Coverage: the application with every feature on has no uncontracted rule but the list's,
    and every entry of the list is a live rule (no stale allowances)."""
    application = make_app(**EVERY_FEATURE)
    assert uncontracted_rules(application) == []
    live = {(rule.rule, rule.endpoint): rule for rule in application.url_map.iter_rules()}
    uncontracted = {key for key, rule in live.items()
                    if contract_of(application.view_functions[rule.endpoint]) is None}
    assert uncontracted == {(route.rule, route.endpoint) for route in UNCONTRACTED_ROUTES}
    assert len(UNCONTRACTED_ROUTES) <= 10  # a short list: anything else gets a contract
    for route in UNCONTRACTED_ROUTES:
        assert route.why and route.methods <= {"GET"}, route
    # every contracted API route is in the OpenAPI document
    paths = json_object(application.test_client().get("/api/openapi.json"))["paths"]
    contracted = {
        (re.sub(r"<[^>]+>", "{}", rule.rule), method.lower())
        for rule in live.values() if contract_of(application.view_functions[rule.endpoint])
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(re.sub(r"\{[^}]+\}", "{}", path), method)
                  for path, operations in paths.items() for method in operations}
    assert contracted == documented


DENIED_APP = '''
import app.plugins
from testkit.apps.plugins import BlueprintPlugin, raw_blueprint
from app import create_app

app = create_app(plugins=[BlueprintPlugin(raw_blueprint)])
'''


def test_gunicorn_halts_on_a_plugins_plain_route(tmp_path: Any, database_url: str) -> None:
    (tmp_path / "denied_app.py").write_text(DENIED_APP)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("HEARTHGATE", "AUTH_", "RATELIMIT_", "REDIS_"))}
    environ.update({
        "HEARTHGATE_ENV": "test", "DATABASE_URL": database_url, "SECRET_STORE_URL": "memory://",
        "AUTH_JWT_SECRET": "default-deny-test-secret-0123456789abcdef", "LOG_JSON": "false",
        "HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": "2",
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT_ROOT}",
    })
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "denied_app:app"],
        cwd=PROJECT_ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail("gunicorn went on serving an application with an uncontracted route")
    assert proc.returncode != 0
    assert b"GET /hello-raw (raw_plugin.hello_raw)" in output
