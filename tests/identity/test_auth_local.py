"""Local accounts: registration, password login, failed-login throttling, password resets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.models import User
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.builders.mail import mails, reset_token
from testkit.servers.oidc import SecretWatch

pytestmark = pytest.mark.usefixtures("secret_watch")

PASSWORD = "correct horse battery staple"  # noqa: S105 - test values
NEW_PASSWORD = "a brand new passphrase 42"  # noqa: S105


def local_app(make_app: Any, **extra: Any) -> Flask:
    app: Flask = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True, **extra)
    return app


def register(app: Flask, email: str = "lee@example.test", password: str = PASSWORD) -> TestResponse:
    return app.test_client().post("/api/auth/register",
                                  json={"email": email, "password": password, "name": "Lee"})


def login(app: Flask, email: str = "lee@example.test", password: str = PASSWORD) -> TestResponse:
    return app.test_client().post("/api/auth/login", json={"email": email, "password": password})


def resets(app: Flask) -> list[Path]:
    """The password-reset mails sent so far (registration mails its confirmation link too)."""
    return [m for m in mails(app) if "Subject: Reset your Hearthgate password" in m.read_text()]


def test_register_then_log_in(make_app: Any, secret_watch: SecretWatch) -> None:
    secret_watch.add(PASSWORD)
    app = local_app(make_app)
    created = register(app)
    assert created.status_code == 201
    body = json_object(created)
    assert body == {"user": {"id": body["user"]["id"], "email": "lee@example.test", "name": "Lee"}}
    with SESSIONS.get(app)() as session:
        user = session.scalars(select(User)).one()
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    response = login(app, "LEE@example.test")
    assert response.status_code == 200
    secret_watch.add(json_object(response)["token"], json_object(response)["refreshToken"])
    assert json_object(response)["user"]["id"] == user.id


def test_registration_refuses_duplicates_and_weak_passwords(make_app: Any) -> None:
    app = local_app(make_app)
    assert register(app).status_code == 201
    before = snapshot(app)
    assert register(app, "Lee@Example.test").status_code == 409
    assert register(app, "new@example.test", "short").status_code == 400
    assert register(app, "not-an-email").status_code == 400
    assert snapshot(app) == before


def test_local_accounts_disabled_by_default(app: Flask) -> None:
    assert register(app).status_code == 404
    assert login(app).status_code == 403  # well-formed body, method turned off


def test_wrong_password_and_unknown_account_answer_alike(make_app: Any) -> None:
    app = local_app(make_app)
    register(app)
    before = snapshot(app)
    wrong = login(app, password="wrong password!")
    unknown = login(app, email="nobody@example.test")
    assert wrong.status_code == unknown.status_code == 401
    assert json_object(wrong)["message"] == json_object(unknown)["message"]
    after = snapshot(app)
    assert after["users"] == before["users"] and after["refresh_tokens"] == []
    denied = [e for e in after["audit_events"] if e not in before["audit_events"]]
    assert len(denied) == 2


def test_failed_logins_are_limited_per_account(make_app: Any) -> None:
    app = local_app(make_app, AUTH_LOGIN_FAILURES_PER_ACCOUNT="3/hour")
    register(app)
    register(app, "kim@example.test")
    for _ in range(3):
        assert login(app, password="wrong password!").status_code == 401
    blocked = login(app)  # even the right password, while the account is locked out
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0 and json_object(blocked)["retryAfter"] > 0
    assert login(app, "kim@example.test").status_code == 200  # other accounts unaffected


def test_failed_logins_are_limited_per_ip_but_a_correct_password_still_logs_in(
    make_app: Any,
) -> None:
    """Others' failures from the same address (a NAT, a proxy) never lock a user out: once the
    IP's failure budget is spent, further failures answer 429 and a correct password is 200."""
    app = local_app(make_app, AUTH_LOGIN_FAILURES_PER_IP="4/hour")
    register(app)
    for n in range(4):
        assert login(app, f"guess{n}@example.test").status_code == 401
    before = snapshot(app)
    throttled = login(app, "guess9@example.test")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    wrong = login(app, password="wrong password!")
    assert wrong.status_code == 429
    after = snapshot(app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 2
    assert after["refresh_tokens"] == []

    accepted = login(app)
    assert accepted.status_code == 200, accepted.json
    assert len(snapshot(app)["refresh_tokens"]) == 1
    assert login(app, "guess10@example.test").status_code == 429  # a success clears no IP budget


def test_a_spent_ip_budget_keeps_the_per_account_limit(make_app: Any) -> None:
    """The account's own budget still refuses even its correct password."""
    app = local_app(make_app, AUTH_LOGIN_FAILURES_PER_IP="2/hour",
                    AUTH_LOGIN_FAILURES_PER_ACCOUNT="3/hour")
    register(app)
    statuses = [login(app, password=f"wrong password {n}").status_code for n in range(4)]
    assert statuses == [401, 401, 429, 429]
    before = snapshot(app)
    assert login(app).status_code == 429  # the account is locked out, the password is right
    assert snapshot(app)["refresh_tokens"] == before["refresh_tokens"] == []


def test_a_success_clears_the_account_counter(make_app: Any) -> None:
    app = local_app(make_app, AUTH_LOGIN_FAILURES_PER_ACCOUNT="3/hour")
    register(app)
    for _ in range(2):
        assert login(app, password="wrong password!").status_code == 401
    assert login(app).status_code == 200
    for _ in range(2):
        assert login(app, password="wrong password!").status_code == 401
    assert login(app).status_code == 200


def test_password_reset_is_single_use(make_app: Any, secret_watch: SecretWatch) -> None:
    app = local_app(make_app)
    register(app)
    session = json_object(login(app))
    response = app.test_client().post("/api/auth/reset-password",
                                      json={"email": "lee@example.test"})
    assert response.status_code == 202 and response.data == b""
    token = reset_token(app)
    secret_watch.add(token, NEW_PASSWORD, PASSWORD)
    client = app.test_client()
    confirm = client.post("/api/auth/reset-password/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert confirm.status_code == 204
    assert login(app).status_code == 401
    assert login(app, password=NEW_PASSWORD).status_code == 200
    # Refresh tokens from before the reset are revoked.
    assert client.post("/api/auth/refresh",
                       json={"refreshToken": session["refreshToken"]}).status_code == 401
    before = snapshot(app)
    again = client.post("/api/auth/reset-password/confirm",
                        json={"token": token, "password": "yet another password"})
    assert again.status_code == 401
    after = snapshot(app)
    assert after["users"] == before["users"]
    assert login(app, password=NEW_PASSWORD).status_code == 200


def test_expired_reset_token_is_refused(make_app: Any) -> None:
    issuing = local_app(make_app)
    register(issuing)
    issuing.test_client().post("/api/auth/reset-password", json={"email": "lee@example.test"})
    token = reset_token(issuing)
    expiring = local_app(make_app, AUTH_PASSWORD_RESET_TTL_SECONDS=-1)
    expiring.instance_path = issuing.instance_path
    before = snapshot(expiring)
    response = expiring.test_client().post("/api/auth/reset-password/confirm",
                                           json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 401
    assert snapshot(expiring)["users"] == before["users"]
    assert login(issuing).status_code == 200


def test_forged_reset_token_is_refused(make_app: Any) -> None:
    app = local_app(make_app)
    register(app)
    app.test_client().post("/api/auth/reset-password", json={"email": "lee@example.test"})
    token = reset_token(app)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    before = snapshot(app)
    response = app.test_client().post("/api/auth/reset-password/confirm",
                                      json={"token": forged, "password": NEW_PASSWORD})
    assert response.status_code == 401
    assert snapshot(app)["users"] == before["users"]


def test_reset_request_does_not_reveal_accounts(make_app: Any) -> None:
    app = local_app(make_app)
    register(app)
    before = snapshot(app)
    known = app.test_client().post("/api/auth/reset-password", json={"email": "lee@example.test"})
    mailed = len(resets(app))
    unknown = app.test_client().post("/api/auth/reset-password",
                                     json={"email": "ghost@example.test"})
    assert known.status_code == unknown.status_code == 202
    assert known.data == unknown.data == b""
    assert mailed == 1 and len(resets(app)) == 1  # no mail for an unknown address
    after = snapshot(app)
    assert after["users"] == before["users"]


def test_reset_request_does_the_same_work_for_known_and_unknown_addresses(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's timing must not tell whether an account exists: the request path runs the
    same SQL statements and hands one item to the mail queue either way; the mail itself is
    written by the queue's thread, never by the request's."""
    import threading

    import plugins.passwords as passwords
    from app.background import BackgroundQueue
    from testkit.database import statements_sent

    app = local_app(make_app)
    register(app)
    sent_from: list[int] = []
    real_sender = passwords.write_to_instance_folder

    def recording_sender(instance_path: str) -> Any:
        send = real_sender(instance_path)

        def recorded(to: str, subject: str, body: str) -> None:
            sent_from.append(threading.get_ident())
            send(to, subject, body)

        return recorded

    queued: list[str] = []
    real_put = BackgroundQueue.put

    def counted_put(queue: Any, item: Any) -> None:
        queued.append(type(queue).__name__)
        real_put(queue, item)

    monkeypatch.setattr(passwords, "write_to_instance_folder", recording_sender)
    monkeypatch.setattr(BackgroundQueue, "put", counted_put)
    client = app.test_client()

    def work(email: str) -> tuple[list[str], list[str]]:
        statements.clear()
        queued.clear()
        response = client.post("/api/auth/reset-password", json={"email": email})
        assert response.status_code == 202 and response.data == b""
        return list(statements), list(queued)

    with statements_sent(app) as statements:
        work("lee@example.test")  # first use of each path: caches, the queue's thread
        work("ghost@example.test")
        mails(app)
        before = snapshot(app)
        known, unknown = work("lee@example.test"), work("ghost@example.test")
        known_again, unknown_again = work("LEE@example.test"), work("nobody@example.test")
    assert known == unknown == known_again == unknown_again
    assert known[1] == ["MailQueue"]
    # The audit event: a plain INSERT, or on PostgreSQL the one call that links and inserts it.
    assert any(s.startswith("INSERT INTO audit_events") or " FROM audit_append(" in s
               for s in known[0])
    assert threading.get_ident() not in sent_from  # no mail written on the request path

    assert len(resets(app)) == 3  # the known address only: once warming up, twice here
    assert len(sent_from) == 3
    after = snapshot(app)
    assert after["users"] == before["users"] and after["refresh_tokens"] == before["refresh_tokens"]
    events = [e for e in after["audit_events"] if e not in before["audit_events"]]
    assert len(events) == 4 and all("auth.reset.request" in e for e in events)


def test_a_failing_mail_sender_is_logged_by_type_only(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender runs on the queue's thread: its failure changes no answer and its message
    (which may quote the mail and its reset token) never reaches the log."""
    import plugins.passwords as passwords

    def failing_sender(instance_path: str) -> Any:
        def send(to: str, subject: str, body: str) -> None:
            raise RuntimeError(f"relay refused {to}: {body}")

        return send

    monkeypatch.setattr(passwords, "write_to_instance_folder", failing_sender)
    app = local_app(make_app)
    register(app)
    response = app.test_client().post("/api/auth/reset-password",
                                      json={"email": "lee@example.test"})
    assert response.status_code == 202
    assert mails(app) == []  # drained: the sender was called and failed
    logged = [r for r in caplog.records if r.name == "plugins.mail"]
    # The registration's confirmation mail and the reset mail, both refused.
    assert [r.getMessage() for r in logged] == [
        "mail not sent: the sender failed (RuntimeError)"] * 2
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "lee@example.test" not in text and "Use this code" not in text
    assert "confirm it is yours" not in text


def test_failed_logins_stay_throttled_while_the_storage_is_down(
    make_app: Any, secret_watch: SecretWatch
) -> None:
    """The throttle counts on the application's rate-limit storage; with Redis stopped it
    counts in this process: still 429 after the limit, never a 500."""
    from testkit.servers.ratelimit import redis_server

    with redis_server() as redis:
        app = local_app(make_app, RATELIMIT_STORAGE_URI=redis.url,
                        AUTH_LOGIN_FAILURES_PER_ACCOUNT="2/minute")
        assert register(app).status_code == 201
        assert login(app, password="wrong password 1").status_code == 401
        redis.stop()
        statuses = [login(app, password=f"wrong password {n}").status_code for n in range(3)]
        assert statuses == [401, 401, 429]  # counted afresh in this process: 2 allowed, then 429
        assert login(app).status_code == 429  # locked even with the right password


def test_openapi_says_what_the_account_routes_reveal(make_app: Any) -> None:
    document = json_object(local_app(make_app).test_client().get("/api/openapi.json"))
    register_op = document["paths"]["/api/auth/register"]["post"]
    assert "409" in register_op["responses"] and "409" in register_op["summary"]
    assert "RATELIMIT_ANONYMOUS" in register_op["description"]
    reset_op = document["paths"]["/api/auth/reset-password"]["post"]
    assert "same work" in reset_op["description"]
    login_op = document["paths"]["/api/auth/login"]["post"]
    assert "AUTH_LOGIN_FAILURES_PER_IP" in login_op["description"]
