"""``flask demo seed``: a household with people, wardrobe items and purchase requests, for a
developer's local service (never in production).

The data goes in through the HTTP API itself (Flask's test client, in process), so every rule,
audit event and default that a real client meets applies to it too. The people are local
accounts with generated passwords, printed once; each confirms their address with the code the
registration mails (made here with the same function, instead of read from the mail) and accepts
the owner's invitation, as a person would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask.testing import FlaskClient

from app.models import HouseholdRole

demo_cli = AppGroup("demo", help="Development data (never in production).")

SEED_CLIENT_IP = "127.0.0.2"  # a limiter bucket of its own, apart from the developer's browser


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    role: HouseholdRole


PEOPLE = (
    Person("alex@demo.test", "Alex (owner)", HouseholdRole.OWNER),
    Person("sam@demo.test", "Sam (adult)", HouseholdRole.ADULT),
    Person("kim@demo.test", "Kim (child)", HouseholdRole.CHILD),
)
ITEMS = (
    {"name": "Rain jacket", "category": "outerwear", "size": "M", "color": "navy"},
    {"name": "Walking boots", "category": "shoes", "size": "42", "color": "brown"},
    {"name": "Wool scarf", "category": "accessories", "size": "one size", "color": "green"},
)


class SeedFailed(click.ClickException):
    def __init__(self, what: str, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{what}: HTTP {status}: {message}")


def _call(client: FlaskClient, method: str, path: str, what: str, token: str | None = None,
          json: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.open(path, method=method, json=json, headers=headers,
                           environ_base={"REMOTE_ADDR": SEED_CLIENT_IP})
    if response.status_code not in expect:
        raise SeedFailed(what, response.status_code, response.get_json(silent=True))
    return response.get_json(silent=True)


def _confirm_email(app: Flask, client: FlaskClient, user_id: str, email: str) -> None:
    from app.models import User
    from plugins.passwords import email_verification_token

    with app.app_context():
        user = User(id=user_id, email=email)
        token = email_verification_token(user)
    _call(client, "POST", "/api/auth/verify-email", f"confirm {email}", json={"token": token},
          expect=(204,))


def seed(app: Flask) -> dict[str, str]:
    """Create the demo people and household; returns each person's email and password."""
    if app.config["HEARTHGATE_ENV"] == "production":
        raise click.ClickException("demo seed never runs in production")
    if not app.config.get("AUTH_LOCAL_ACCOUNTS_ENABLED"):
        raise click.ClickException("demo seed needs AUTH_LOCAL_ACCOUNTS_ENABLED=true")
    client = app.test_client()
    passwords: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for person in PEOPLE:
        password = secrets.token_urlsafe(12)
        body = {"email": person.email, "password": password, "name": person.name}
        registered = _call(client, "POST", "/api/auth/register", f"register {person.email}",
                           json=body, expect=(201, 409))
        if registered is None or "user" not in registered:
            raise click.ClickException(
                f"{person.email} already exists: the demo data is seeded already "
                "(delete instance/hearthgate.sqlite3 and run `flask db upgrade` to start over)")
        passwords[person.email] = password
        _confirm_email(app, client, registered["user"]["id"], person.email)
        login = _call(client, "POST", "/api/auth/login", f"log in {person.email}",
                      json={"email": person.email, "password": password}, expect=(200,))
        tokens[person.email] = login["token"]
    owner, adult, child = (tokens[p.email] for p in PEOPLE)
    household = _call(client, "POST", "/api/households", "create household", owner,
                      json={"name": "The Demo Family"})
    base = f"/api/households/{household['id']}"
    for person in PEOPLE[1:]:
        invitation = _call(client, "POST", f"{base}/members", f"invite {person.email}", owner,
                           json={"email": person.email, "role": person.role})
        _call(client, "POST", f"/api/invitations/{invitation['id']}/accept",
              f"accept for {person.email}", tokens[person.email], json={})
    item_ids = [_call(client, "POST", f"{base}/items", f"item {item['name']}", owner,
                      json=item)["id"] for item in ITEMS]
    _call(client, "POST", f"{base}/outfits", "outfit", owner,
          json={"name": "Autumn walk", "itemIds": item_ids[:2]})
    _call(client, "POST", f"{base}/requests", "request", child,
          json={"title": "New trainers", "amountMinor": 5999, "currency": "EUR"})
    wanted = _call(client, "POST", f"{base}/requests", "request", adult,
                   json={"title": "Winter gloves", "amountMinor": 2499, "currency": "EUR"})
    _call(client, "POST", f"{base}/requests/{wanted['id']}/approve", "approve", owner, json={})
    return passwords


@demo_cli.command("seed")
def seed_command() -> None:
    """Create a demo household (owner, adult, child; items, an outfit, two requests)."""
    passwords = seed(current_app)
    click.echo("Demo household 'The Demo Family' created. Log in as:")
    for person in PEOPLE:
        click.echo(f"  {person.role:<6} {person.email}  password: {passwords[person.email]}")
