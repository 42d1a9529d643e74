"""The demo SPA in a real headless Chromium, served from another origin than the API (gunicorn),
so every CORS preflight is real: the whole buy-flow reaches COMPLETED, no token is left in any
browser storage, the URL or the server's log, and a page of an origin not in CORS_ORIGINS reads
no API response at all."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit import ROOT
from testkit.config import TEST_JWT_SECRET
from testkit.servers.browser import (
    ARTIFACTS,
    ApiServer,
    api_server,
    chromium_path,
    require_playwright,
    static_server,
)

pytestmark = pytest.mark.slow

PASSWORDS = {"a": "correct horse battery A", "b": "correct horse battery B"}  # demo/index.html
EMAILS = {"a": "alex@example.test", "b": "blair@example.test"}
STEP_TIMEOUT_MS = 30_000

# Runs in the page: every kind of API call a script could make, and whether it could read the answer.
PROBE_JS = """
async ({api, token, email}) => {
  const json = {"Content-Type": "application/json"};
  const calls = [
    ["GET", "/healthz", {}, undefined],
    ["GET", "/api/openapi.json", {}, undefined],
    ["GET", "/api/households", {"Authorization": "Bearer " + token}, undefined],
    ["GET", "/api/auth/me", {"Authorization": "Bearer " + token}, undefined],
    ["POST", "/api/auth/register", json,
     JSON.stringify({email, password: "probe password 2", name: "Probe"})],
    ["POST", "/api/auth/login", json,
     JSON.stringify({email: "probe@example.test", password: "probe password 1"})],
  ];
  const results = [];
  for (const [method, path, headers, body] of calls) {
    try {
      const response = await fetch(api + path, {method, headers, body, credentials: "omit"});
      results.push({path, read: true, status: response.status, text: await response.text()});
    } catch (error) {
      results.push({path, read: false, error: error.name});
    }
  }
  // Without CORS a script still gets an opaque answer: no status, no headers, no body.
  const opaque = await fetch(api + "/healthz", {mode: "no-cors"});
  results.push({path: "no-cors /healthz", read: opaque.type !== "opaque", status: opaque.status,
                text: await opaque.text()});
  return results;
}
"""

STORAGE_JS = """
() => ({
  local: Object.keys(localStorage).map(k => k + "=" + localStorage.getItem(k)),
  session: Object.keys(sessionStorage).map(k => k + "=" + sessionStorage.getItem(k)),
  cookie: document.cookie,
  url: location.href,
  history: history.length,
})
"""


@dataclass
class Stack:
    api: ApiServer
    spa: str
    foreign: str


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    require_playwright()
    chromium_path()
    with static_server() as spa, static_server() as foreign:
        assert spa != foreign  # two ports: two origins
        with api_server(database_url, TEST_JWT_SECRET, [spa], tmp_path / "api.log") as api:
            assert requests.get(api.url + "/readyz", timeout=30).status_code == 200
            yield Stack(api=api, spa=spa, foreign=foreign)


def open_demo(browser: Any, origin: str, api: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.goto(f"{origin}/index.html?api={api}")
    return context, page


def flow_error(page: Any) -> str | None:
    failed = page.locator("#flow-status.err")
    return str(failed.text_content()) if failed.count() else None


def click_and_wait(page: Any, button: str, ready: str) -> None:
    """Click ``button``, then wait until ``ready`` (a JS condition) holds or the page shows an
    error, which fails the test with the page's own message."""
    page.click(button)
    page.wait_for_function(f"() => ({ready}) || document.querySelector('#flow-status.err')")
    assert flow_error(page) is None, f"after {button}: {flow_error(page)}"


def enabled(selector: str) -> str:
    return f"!document.querySelector('{selector}').disabled"


def api_post_json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data


MAIL = ROOT / "instance" / "mail"


def confirmation_code(email: str, since: float) -> str:
    """The code of the newest confirmation mail to ``email`` (the development sender writes it
    to the service's instance folder from its mail thread: it may take a moment)."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for path in sorted(MAIL.glob("*.eml"), reverse=True) if MAIL.exists() else []:
            text = path.read_text()
            if path.stat().st_mtime >= since and text.startswith(f"To: {email}\n"):
                codes = re.findall(r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$", text,
                                   re.M)
                if codes:
                    return str(codes[-1])
        time.sleep(0.1)
    raise AssertionError(f"no confirmation mail for {email}")


def test_the_whole_flow_reaches_completed_from_another_origin(stack: Stack, browser: Any) -> None:
    since = time.time() - 1
    context, page = open_demo(browser, stack.spa, stack.api.url)
    tokens: dict[str, str] = {}
    secrets: list[str] = []  # every token the API handed to the page

    for who in ("a", "b"):
        with page.expect_response(lambda r: r.url.endswith("/api/auth/login")) as login:
            click_and_wait(page, f"#{who}-login", f"document.querySelector('#{who}-status').textContent")
        assert login.value.status == 200
        # The browser let the page read it because the API named the SPA's origin.
        assert login.value.headers["access-control-allow-origin"] == stack.spa
        body = api_post_json(login.value)
        tokens[who] = body["token"]
        secrets += [body["token"], body["refreshToken"]]
        assert page.text_content(f"#{who}-status") == f"logged in as {EMAILS[who]}"

    page.fill("#a-code", confirmation_code(EMAILS["a"], since))
    click_and_wait(page, "#a-confirm", enabled("#create-household"))
    assert "address confirmed" in str(page.text_content("#a-status"))
    click_and_wait(page, "#create-household", enabled("#create-request"))
    assert "Home" in str(page.text_content("#household-status"))
    click_and_wait(page, "#create-request", enabled("#approve"))
    click_and_wait(page, "#approve", enabled("#intent"))
    with page.expect_response(lambda r: r.url.endswith("/purchase-intents")) as created:
        click_and_wait(page, "#intent", enabled("#cart-ready"))
    intent = api_post_json(created.value)
    secrets.append(intent["confirmationToken"])
    click_and_wait(page, "#cart-ready", enabled("#confirm"))
    click_and_wait(page, "#confirm",
                   "document.querySelector('#flow-status').dataset.state === 'COMPLETED'")

    final = str(page.text_content("#flow-status"))
    assert "Checkout COMPLETED" in final and "is COMPLETED" in final, final

    # The server agrees: the request and its intent are COMPLETED.
    headers = {"Authorization": f"Bearer {tokens['b']}"}
    households = requests.get(f"{stack.api.url}/api/households", headers=headers, timeout=10).json()
    household_id = households["items"][0]["id"]
    listed = requests.get(f"{stack.api.url}/api/households/{household_id}/requests",
                          headers=headers, timeout=10).json()["items"]
    assert [r["status"] for r in listed] == ["COMPLETED"]
    seen = requests.get(
        f"{stack.api.url}/api/households/{household_id}/requests/{listed[0]['id']}"
        f"/purchase-intents/{intent['intentId']}", headers=headers, timeout=10,
    ).json()
    assert seen["status"] == "COMPLETED" and seen["cart"]["totalMinor"] == 8900

    # No token anywhere the browser keeps things: storage, cookies (any origin), the URL.
    storage = page.evaluate(STORAGE_JS)
    assert storage["local"] == [] and storage["session"] == [], storage
    assert storage["cookie"] == ""
    assert context.cookies() == []
    for secret in secrets:
        assert secret not in storage["url"]
        assert secret not in str(page.content())  # not even rendered into the page

    # The preflights were real: the API under gunicorn answered OPTIONS for the SPA's calls.
    log = stack.api.log_text()
    for path in ("/api/auth/register", "/api/auth/login", "/api/households",
                 f"/api/dev/purchase-intents/{intent['intentId']}/cart-ready"):
        assert f'"OPTIONS {path} ' in log, path
    for secret in [*secrets, *PASSWORDS.values()]:
        assert secret not in log

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-final.png"), full_page=True)
    context.close()


def registered_token(api: str) -> str:
    login_body = {"email": "probe@example.test", "password": "probe password 1"}
    registered = requests.post(f"{api}/api/auth/register", json=login_body | {"name": "Probe"},
                               timeout=10)
    assert registered.status_code == 201, registered.text
    login = requests.post(f"{api}/api/auth/login", json=login_body, timeout=10)
    assert login.status_code == 200, login.text
    token: str = login.json()["token"]
    return token


def test_a_page_of_another_origin_reads_no_api_response(stack: Stack, browser: Any) -> None:
    token = registered_token(stack.api.url)

    # The same probe from the allowed origin reads every answer: the probe itself works.
    context, page = open_demo(browser, stack.spa, stack.api.url)
    allowed = page.evaluate(PROBE_JS, {"api": stack.api.url, "token": token,
                                       "email": "allowed@example.test"})
    assert [(r["path"], r["read"]) for r in allowed if not r["read"]] == [
        ("no-cors /healthz", False)
    ]
    statuses = {r["path"]: r["status"] for r in allowed}
    assert statuses["/api/households"] == 200 and statuses["/api/auth/login"] == 200
    assert statuses["/api/auth/register"] == 201
    context.close()

    context, page = open_demo(browser, stack.foreign, stack.api.url)
    denied = page.evaluate(PROBE_JS, {"api": stack.api.url, "token": token,
                                      "email": "mallory@example.test"})
    assert [r for r in denied if r["read"]] == [], denied
    assert {r["error"] for r in denied if "error" in r} == {"TypeError"}
    opaque = next(r for r in denied if r["path"].startswith("no-cors"))
    assert opaque["status"] == 0 and opaque["text"] == ""

    # The demo itself, opened from that origin, cannot log in and says so.
    page.click("#a-login")
    page.wait_for_function("() => document.querySelector('#flow-status.err')")
    assert "API unreachable" in str(page.text_content("#flow-status"))
    assert page.text_content("#a-status") == ""

    # A refused preflight means the request itself was never sent: nobody was registered.
    mallory = requests.post(f"{stack.api.url}/api/auth/login", timeout=10,
                            json={"email": "mallory@example.test", "password": "probe password 2"})
    assert mallory.status_code == 401
    alex = requests.post(f"{stack.api.url}/api/auth/login", timeout=10,
                         json={"email": EMAILS["a"], "password": PASSWORDS["a"]})
    assert alex.status_code == 401
    context.close()
