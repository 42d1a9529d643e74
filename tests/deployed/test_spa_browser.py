"""The reference SPA (``web/``, served at ``/`` on the API's own origin) and the interactive API
docs, in a real headless Chromium against the service under gunicorn on its development defaults:
nothing but the database and the limits' generosity is set, so these journeys are what a
newcomer's ``scripts/run`` offers. Each journey saves a screenshot under ``test-artifacts/``."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit import ROOT
from testkit.servers.browser import ARTIFACTS
from testkit.servers.oidc import CLIENT_ID, CLIENT_SECRET, start_provider
from testkit.servers.processes import free_port, gunicorn_process

pytestmark = pytest.mark.slow

STEP_TIMEOUT_MS = 60_000  # generous: the machine may be busy
PASSWORD = "correct horse battery staple"
# The development mail sender writes each message here (the service's instance folder).
MAIL = ROOT / "instance" / "mail"
LINK = re.compile(r"^(http://\S+/#/verify-email\?token=\S+)$", re.M)


@contextmanager
def dev_server(database_url: str, log: Path, port: int | None = None,
               **settings: str) -> Iterator[str]:
    """``wsgi:app`` under gunicorn in development with its defaults; only the database, the
    anonymous limit (several people share 127.0.0.1 here) and ``settings`` are set."""
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(
        ("AUTH_", "DEMO_", "SPA_", "API_DOCS_", "CORS_", "RATELIMIT_"))}
    env |= {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
            "HEARTHGATE_ENV": "development", "DATABASE_URL": database_url,
            "RATELIMIT_ANONYMOUS": "1000/minute", "PUBLIC_SPA_URL": f"http://127.0.0.1:{port}/",
            **settings}
    with gunicorn_process("wsgi:app", env, log):
        url = f"http://127.0.0.1:{port}"
        assert requests.get(url + "/readyz", timeout=30).status_code == 200
        yield url


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[str]:
    with dev_server(database_url, tmp_path / "api.log") as url:
        yield url


class Person:
    """One person in their own browser context (their own device)."""

    def __init__(self, browser: Any, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.email = f"{name.lower()}@example.test"
        self.context = browser.new_context(viewport={"width": 1100, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/")
        self.tokens: list[str] = []  # every token the API handed to this page

    @contextmanager
    def keeping_tokens(self, path: str) -> Iterator[None]:
        """Keeps the tokens of the response to ``path`` that the enclosed steps cause."""
        with self.page.expect_response(lambda r: r.url.endswith(path)) as response:
            yield
        body = response.value.json()
        self.tokens += [body[k] for k in ("token", "refreshToken", "confirmationToken") if k in body]

    def settle(self) -> None:
        """Wait until the page has drawn what it is loading (no route in flight)."""
        self.page.wait_for_function("() => !document.querySelector('#main[aria-busy]')")

    def fill(self, form_heading: str, **values: str) -> None:
        self.settle()
        section = self.page.locator("section", has=self.page.get_by_role("heading", name=form_heading))
        for label, value in values.items():
            control = section.get_by_label(label, exact=True)
            if control.evaluate("e => e.tagName") == "SELECT":
                control.select_option(value)
            else:
                control.fill(value)
        section.locator("button[type=submit]").click()

    def register(self) -> None:
        """Register, then open the confirmation link from the mail in another tab."""
        since = time.time() - 1
        with self.keeping_tokens("/api/auth/login"):
            self.fill("Create an account", Name=self.name, Email=self.email,
                      **{"Password (10 characters or more)": PASSWORD})
        self.page.get_by_role("heading", name="Your households").wait_for()
        tab = self.context.new_page()
        tab.set_default_timeout(STEP_TIMEOUT_MS)
        tab.goto(self.confirmation_link(since))
        tab.wait_for_function(
            "t => document.querySelector('#notice').textContent.includes(t)",
            arg="Your email address is confirmed.")
        tab.close()

    def confirmation_link(self, since: float) -> str:
        """The link of the newest confirmation mail to this person (written by the service's
        mail thread, so it may take a moment)."""
        deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            for path in sorted(MAIL.glob("*.eml"), reverse=True) if MAIL.exists() else []:
                if path.stat().st_mtime < since:
                    continue
                text = path.read_text()
                if text.startswith(f"To: {self.email}\n") and (found := LINK.search(text)):
                    return found.group(1)
            time.sleep(0.1)
        raise AssertionError(f"no confirmation mail for {self.email}")

    def log_in(self) -> None:
        with self.keeping_tokens("/api/auth/login"):
            self.fill("Log in", Email=self.email, Password=PASSWORD)
        self.page.get_by_role("heading", name="Your households").wait_for()

    def accept_invitation(self, household: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name="Households").click()
        self.click(f"Accept {household}")
        self.wait_notice(f"You joined {household}.")

    def notice(self) -> str:
        return str(self.page.locator("#notice").text_content())

    def wait_notice(self, text: str) -> None:
        try:
            self.page.wait_for_function(
                "t => document.querySelector('#notice').textContent.includes(t)", arg=text)
        except Exception:
            self.screenshot(f"failed-{self.name.lower()}")
            raise AssertionError(f"{self.name} waited for {text!r}; the notice says "
                                 f"{self.notice()!r} on {self.page.url}") from None

    def open_household(self, name: str, tab: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name="Households").click()
        self.page.get_by_role("link", name=name).click()
        self.page.get_by_role("navigation", name="Household").get_by_role("link", name=tab).click()
        self.page.get_by_role("link", name=tab).and_(self.page.locator("[aria-current=page]")).wait_for()
        self.settle()  # both clicks above draw the page: act on the last drawing

    def click(self, name: str) -> None:
        self.settle()
        self.page.get_by_role("button", name=name, exact=True).click()

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"spa-{name}.png"), full_page=True)

    def storage_is_empty(self) -> bool:
        kept = self.page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
        return bool(kept == [0, 0, ""])


def create_household_with(owner: Person, other: Person, role: str) -> None:
    """The owner creates the household and invites ``other``, who accepts on their own page."""
    owner.fill("New household", Name="The Testers")
    owner.page.get_by_role("heading", name="Invite someone").wait_for()
    owner.fill("Invite someone", Email=other.email, Role=role)
    owner.wait_notice(f"Invited {other.email}.")
    owner.page.get_by_role("button", name=f"Revoke {other.email}").wait_for()  # listed, pending
    other.accept_invitation("The Testers")


def status_of(person: Person, title: str) -> str:
    row = person.page.locator("section", has=person.page.get_by_role("heading", name="Requests")) \
        .locator("tr", has_text=title)
    return str(row.locator("td.status").text_content())


def wait_status(person: Person, title: str, status: str) -> None:
    person.page.wait_for_function(
        """([title, status]) => [...document.querySelectorAll('tr')].some(
             r => r.textContent.includes(title) && r.querySelector('td.status')
                  && r.querySelector('td.status').textContent === status)""",
        arg=[title, status])


def api_get(url: str, path: str, token: str) -> Any:
    response = requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_two_people_one_invitation_one_purchase(service: str, browser: Any) -> None:
    alex, blair = Person(browser, service, "Alex"), Person(browser, service, "Blair")
    alex.register()
    blair.register()
    create_household_with(alex, blair, "adult")
    blair.screenshot("invitation-accepted")

    blair.open_household("The Testers", "Requests")
    blair.fill("Ask for something", What="Walking boots", Price="89.00", Currency="EUR")
    blair.wait_notice("Asked for Walking boots.")
    assert status_of(blair, "Walking boots") == "SUBMITTED"

    alex.open_household("The Testers", "Requests")
    alex.click("Approve Walking boots")
    wait_status(alex, "Walking boots", "APPROVED")
    with alex.keeping_tokens("/purchase-intents"):
        alex.click("Start purchase of Walking boots")
    wait_status(alex, "Walking boots", "PURCHASING")
    alex.click("Fill the cart (development orchestrator)")
    wait_status(alex, "Walking boots", "CART_READY")
    alex.click("Confirm purchase of Walking boots")
    wait_status(alex, "Walking boots", "COMPLETED")
    assert alex.notice() == "Purchase of Walking boots confirmed."
    alex.screenshot("purchase-completed")

    # The server agrees, and the trail shows every step of it to the owner.
    token = alex.tokens[0]
    household = api_get(service, "/api/households", token)["items"][0]
    base = f"/api/households/{household['id']}"
    assert [r["status"] for r in api_get(service, f"{base}/requests", token)["items"]] == ["COMPLETED"]
    members = {m["email"]: m["role"] for m in api_get(service, f"{base}/members", token)["items"]}
    assert members == {alex.email: "owner", blair.email: "adult"}
    actions = {e["action"] for e in api_get(service, f"{base}/audit?limit=100", token)["items"]}
    assert {"request.approved", "intent.cart_ready", "checkout.completed"} <= actions, actions
    alex.open_household("The Testers", "Audit trail")
    alex.page.get_by_role("cell", name="checkout.completed").first.wait_for()

    for person in (alex, blair):
        assert person.storage_is_empty()
        for secret in person.tokens:
            assert secret not in person.page.url and secret not in person.page.content()
        assert person.errors == []


def test_a_child_cannot_approve(service: str, browser: Any) -> None:
    parent, child = Person(browser, service, "Parent"), Person(browser, service, "Kid")
    parent.register()
    child.register()
    create_household_with(parent, child, "child")
    parent.open_household("The Testers", "Requests")
    parent.fill("Ask for something", What="Sofa", Price="400", Currency="EUR")
    parent.wait_notice("Asked for Sofa.")

    child.open_household("The Testers", "Requests")
    child.page.get_by_text("You are child here.").wait_for()
    assert child.page.get_by_role("heading", name="Approvals queue").count() == 0
    assert child.page.get_by_role("button", name="Approve Sofa").count() == 0
    assert child.page.get_by_role("link", name="Audit trail").count() == 0
    child.screenshot("child-requests")

    assert child.page.get_by_role("cell", name="Sofa").count() == 0  # others' requests are not theirs to see

    # The API itself refuses, whatever a page offers: the child's own token gets 403.
    token, parent_token = child.tokens[0], parent.tokens[0]
    household = api_get(service, "/api/households", token)["items"][0]
    base = f"{service}/api/households/{household['id']}/requests"
    sofa = api_get(service, f"/api/households/{household['id']}/requests", parent_token)["items"][0]
    refused = requests.post(f"{base}/{sofa['id']}/approve", json={},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert refused.status_code == 403, refused.text
    assert api_get(service, f"/api/households/{household['id']}/requests/{sofa['id']}",
                   parent_token)["status"] == "SUBMITTED"


def test_an_expired_confirmation_says_so_after_a_step_up(
    database_url: str, tmp_path: Path, browser: Any
) -> None:
    """Logins older than 2 s are too old for money here: the confirmation, 3 s after the login,
    meets the step-up challenge, the page asks for the password, logs in again and retries; the
    retry finds the 2 s confirmation expired."""
    with dev_server(database_url, tmp_path / "api.log", CHECKOUT_CONFIRMATION_TTL_SECONDS="2",
                    STEP_UP_MAX_AGE_SECONDS="2") as url:
        owner, adult = Person(browser, url, "Owner"), Person(browser, url, "Adult")
        prompts: list[str] = []

        def answer(dialog: Any) -> None:
            prompts.append(dialog.message)
            dialog.accept(PASSWORD)

        owner.page.on("dialog", answer)
        owner.register()
        adult.register()
        create_household_with(owner, adult, "adult")
        adult.open_household("The Testers", "Requests")
        adult.fill("Ask for something", What="Raincoat", Price="50", Currency="EUR")
        adult.wait_notice("Asked for Raincoat.")
        owner.open_household("The Testers", "Requests")
        owner.click("Approve Raincoat")
        wait_status(owner, "Raincoat", "APPROVED")
        owner.click("Start purchase of Raincoat")
        wait_status(owner, "Raincoat", "PURCHASING")
        time.sleep(3)  # past the 2 s confirmation lifetime and the 2 s step-up age
        owner.click("Confirm purchase of Raincoat")
        owner.wait_notice("This has expired")
        owner.screenshot("expired-confirmation")
        assert status_of(owner, "Raincoat") != "COMPLETED"
        assert "Please confirm your password to continue." in prompts


def test_the_api_docs_try_it_with_a_bearer_token(service: str, browser: Any) -> None:
    person = Person(browser, service, "Docs")
    person.register()
    token = person.tokens[0]
    page = person.context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    other_hosts: list[str] = []
    page.on("request", lambda r: other_hosts.append(r.url) if not r.url.startswith(service) else None)
    response = page.goto(service + "/api/docs")
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-eval" not in csp
    page.locator(".opblock").first.wait_for()

    page.locator("button.authorize").first.click()
    bearer = page.locator(".modal-ux form", has_text="bearer")
    bearer.locator("input").fill(token)
    bearer.locator("button.authorize").click()
    page.locator(".modal-ux button.btn-done").first.click()
    operation = page.locator(".opblock", has=page.locator("[data-path='/api/auth/me']")).first
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.text_content().strip() == "200"
    assert person.email in str(operation.locator(".live-responses-table").text_content())
    page.screenshot(path=str(ARTIFACTS / "api-docs-try-it.png"))
    assert blocked == [] and other_hosts == []


def test_ending_a_session_on_another_device(
    database_url: str, tmp_path: Path, browser: Any
) -> None:
    """One person on two devices: on the laptop they end the phone's session on the Sessions
    page; the phone's next refresh fails and it lands on the login page. Access tokens live 2 s
    here, so the phone needs a refresh soon after."""
    with dev_server(database_url, tmp_path / "api.log", AUTH_ACCESS_TOKEN_TTL_SECONDS="2") as url:
        laptop = Person(browser, url, "Robin")
        laptop.register()
        phone = Person(browser, url, "Robin")
        phone.log_in()

        laptop.page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
        laptop.page.get_by_role("heading", name="Where you are logged in").wait_for()
        laptop.page.get_by_role("cell", name="this session").wait_for()
        assert laptop.page.get_by_role("button", name="End session").count() == 1
        laptop.click("End session")
        laptop.wait_notice("Session ended.")
        laptop.page.get_by_role("button", name="End session").wait_for(state="detached")
        laptop.screenshot("session-ended")

        # The phone's access token expires (2 s); its next call needs a refresh, which fails.
        time.sleep(2.2)
        phone.page.get_by_role("navigation", name="Main").get_by_role("link", name="Households").click()
        phone.page.get_by_role("heading", name="Log in", exact=True).first.wait_for()
        assert phone.page.locator("#nav").is_hidden()
        phone.screenshot("session-ended-elsewhere")
        # The laptop carries on (its own refreshes work).
        laptop.page.get_by_role("navigation", name="Main").get_by_role("link", name="Households").click()
        laptop.page.get_by_role("heading", name="Your households").wait_for()
        for person in (laptop, phone):
            assert person.storage_is_empty()


def test_a_login_through_the_identity_provider(database_url: str, tmp_path: Path,
                                               browser: Any) -> None:
    """The authorization-code flow from the SPA's button through the real provider and back; the
    code is bound to this page by its verifier, which leaves no trace in the browser."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = start_provider(tmp_path, callback_url=url + "/api/auth/oidc/callback")
    try:
        with dev_server(database_url, tmp_path / "api.log", port=port,
                        AUTH_OIDC_ISSUER=provider.issuer, AUTH_OIDC_AUDIENCE=CLIENT_ID,
                        AUTH_OIDC_CLIENT_SECRET=CLIENT_SECRET,
                        AUTH_OIDC_CALLBACK_URL=url + "/api/auth/oidc/callback",
                        AUTH_OIDC_REDIRECT_URIS=url + "/"):
            person = Person(browser, url, "Alice")
            with person.keeping_tokens("/api/auth/oidc/exchange"):
                person.page.get_by_role("button", name="Log in with your identity provider").click()
            person.page.get_by_role("heading", name="Your households").wait_for()
            assert person.page.text_content("#who") == "alice@example.test"
            assert "code=" not in person.page.url
            assert person.storage_is_empty()  # the verifier is gone once the page is back
            for secret in person.tokens:
                assert secret not in person.page.content()
            assert person.errors == []
            person.screenshot("oidc-login")
            me = api_get(url, "/api/auth/me", person.tokens[0])
            assert me["email"] == "alice@example.test"
    finally:
        provider.stop()
