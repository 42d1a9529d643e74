"""The pages for people: the reference SPA at ``/`` and the API docs at ``/api/docs`` (each with
its own Content-Security-Policy, both off in production unless asked for), and the developer
commands ``flask openapi`` and ``flask demo seed``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from app.config import load_settings
from app.gateway.headers import API_CSP, DOCS_CSP, SITE_CSP
from testkit.builders.households import json_object
from testkit.config import production_config

ROOT = Path(__file__).resolve().parent.parent
AppFactory = Callable[..., Flask]


def test_development_turns_on_what_a_newcomer_needs_and_production_none_of_it() -> None:
    dev = load_settings({})
    test = load_settings({"HEARTHGATE_ENV": "test"})
    prod = load_settings({"HEARTHGATE_ENV": "production"})
    for name in ("AUTH_LOCAL_ACCOUNTS_ENABLED", "DEMO_HELPERS_ENABLED"):
        assert (dev[name], test[name], prod[name]) == (True, False, False), name
    for name in ("API_DOCS_ENABLED", "SPA_ENABLED"):
        assert (dev[name], prod[name]) == (True, False), name
    # One newcomer plays several people from one address; production keeps the tight limit.
    assert (dev["RATELIMIT_ANONYMOUS"], test["RATELIMIT_ANONYMOUS"],
            prod["RATELIMIT_ANONYMOUS"]) == ("60/minute", "10/minute", "10/minute")
    # An explicit value wins in every environment.
    assert load_settings({"AUTH_LOCAL_ACCOUNTS_ENABLED": "false"})["AUTH_LOCAL_ACCOUNTS_ENABLED"] is False


def test_the_spa_is_served_at_the_root_with_a_strict_policy(make_app: AppFactory) -> None:
    client = make_app().test_client()
    index = client.get("/", buffered=True)
    assert index.status_code == 200 and index.mimetype == "text/html"
    assert index.headers["Content-Security-Policy"] == SITE_CSP
    assert "'unsafe-inline'" not in SITE_CSP and "connect-src 'self'" in SITE_CSP
    page = index.get_data(as_text=True)
    assert "<script" in page and "<script>" not in page  # modules from files, nothing inline
    assert "style=" not in page
    for asset in ("app.js", "api.js", "dom.js", "app.css"):
        response = client.get(f"/assets/{asset}", buffered=True)
        assert response.status_code == 200, asset
        assert (ROOT / "web" / "assets" / asset).read_bytes() == response.get_data()
    for escape in ("/assets/../../setup.cfg", "/assets/%2e%2e/%2e%2e/setup.cfg", "/assets/missing.js"):
        response = client.get(escape)
        assert response.status_code == 404 and json_object(response)["error"] == "NotFound", escape
    # The API keeps its own policy and its 405s (no catch-all route in front of them).
    assert client.get("/api/openapi.json").headers["Content-Security-Policy"] == API_CSP
    assert client.get("/api/auth/login").status_code == 405


def test_no_page_keeps_a_token_in_browser_storage() -> None:
    """Tokens live in a module's memory; the only thing a page stores is the code flow's verifier
    (sessionStorage, this tab, removed on return), which is useless without the one-time code."""
    for source in (ROOT / "web" / "assets").glob("*.js"):
        code = [line for line in source.read_text().splitlines() if not line.lstrip().startswith("//")]
        text = "\n".join(code)
        for place in ("localStorage", "document.cookie", ".innerHTML"):
            assert place not in text, (source.name, place)
        # sessionStorage holds the code flow's verifier only, for the round trip to the provider
        assert all("VERIFIER_KEY" in line for line in code if "sessionStorage" in line), source.name


def test_the_docs_are_swagger_ui_from_the_package_with_their_own_policy(make_app: AppFactory) -> None:
    client = make_app().test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == DOCS_CSP
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "http" not in html  # no inline script, no other host
    start = client.get("/api/docs/start.js")
    assert start.status_code == 200 and "/api/openapi.json" in start.get_data(as_text=True)
    assert "validatorUrl: null" in start.get_data(as_text=True)
    bundle = client.get("/api/docs/swagger-ui-bundle.js", buffered=True)
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.get_data()
    assert bundle.headers["Content-Security-Policy"] == DOCS_CSP
    # Only Swagger UI's own files; nothing else of the package or the disk.
    for other in ("/api/docs/LICENSE", "/api/docs/..%2f__init__.py", "/api/docs/oauth2-redirect.html"):
        assert client.get(other).status_code == 404, other
    # The relaxation is the docs' alone: the API next to it keeps default-src 'none'.
    assert client.get("/api/openapi.json").headers["Content-Security-Policy"] == API_CSP


def test_production_serves_neither_page_unless_asked(make_app: AppFactory) -> None:
    client = make_app(**production_config()).test_client()
    for path in ("/", "/api/docs", "/assets/app.js", "/api/docs/swagger-ui-bundle.js"):
        response = client.get(path)
        assert response.status_code == 404 and json_object(response)["error"] == "NotFound", path
    opted_in = make_app(**production_config(API_DOCS_ENABLED=True)).test_client()
    assert opted_in.get("/api/docs").status_code == 200
    assert opted_in.get("/").status_code == 404


def test_flask_openapi_writes_the_served_document(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    target = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(args=["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == app.test_client().get("/api/openapi.json").json
    printed = app.test_cli_runner().invoke(args=["openapi"])
    assert json.loads(printed.output) == json.loads(target.read_text())


def _seed(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["demo", "seed"])


def test_demo_seed_creates_a_household_through_the_api(make_app: AppFactory) -> None:
    app = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True, RATELIMIT_ENABLED=True)
    result = _seed(app)
    assert result.exit_code == 0, result.output
    logins = dict(line.split()[1::2] for line in result.output.splitlines()[1:])
    assert set(logins) == {"alex@demo.test", "sam@demo.test", "kim@demo.test"}
    client = app.test_client()
    login = client.post("/api/auth/login", json={"email": "alex@demo.test",
                                                  "password": logins["alex@demo.test"]})
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {json_object(login)['token']}"}
    household = json_object(client.get("/api/households", headers=headers))["items"]
    assert [h["name"] for h in household] == ["The Demo Family"]
    base = f"/api/households/{household[0]['id']}"
    roles = sorted(m["role"] for m in json_object(client.get(f"{base}/members", headers=headers))["items"])
    assert roles == ["adult", "child", "owner"]
    assert len(json_object(client.get(f"{base}/items", headers=headers))["items"]) == 3
    statuses = sorted(r["status"] for r in json_object(client.get(f"{base}/requests", headers=headers))["items"])
    assert statuses == ["APPROVED", "SUBMITTED"]
    # Seeded through the API: the trail has the household's story, and it verifies.
    actions = {e["action"] for e in json_object(client.get(f"{base}/audit", headers=headers))["items"]}
    assert {"household.created", "invitation.created", "invitation.accepted",
            "request.approved"} <= actions, actions
    # A second run changes nothing and says why.
    again = _seed(app)
    assert again.exit_code != 0 and "seeded already" in again.output
    assert len(json_object(client.get("/api/households", headers=headers))["items"]) == 1


def test_demo_seed_never_runs_in_production(make_app: AppFactory) -> None:
    app = make_app(**production_config())
    result = _seed(app)
    assert result.exit_code != 0
    assert "production" in result.output or "No such command" in result.output
