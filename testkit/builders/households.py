"""Test helpers: users with tokens, table snapshots for "nothing changed" assertions, and the JSON
object an in-process response carries."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from app.db import SESSIONS, Base, Database, utcnow
from app.gateway.tokens import ACCESS_TOKENS
from app.models import User

CATALOGUE = (
    "households:create households:read households:update households:delete members:read "
    "members:manage items:read items:write outfits:read outfits:write requests:read "
    "requests:create requests:approve purchases:create purchases:confirm audit:read"
).split()

USERS = ("owner", "adult", "child", "outsider")
"""The callers of the BOLA matrices: one user per household role, and one from outside."""


class AuthActions:
    """Creates users directly in the database and mints genuine access tokens for them."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def user(self, email: str, name: str = "", permissions: list[str] | None = None,
             verified: bool = True) -> User:
        """A user as an identity provider that vouches for the address (``verified``) makes."""
        factory = SESSIONS.get(self.app)
        with factory() as session:
            email = email.strip().lower()  # as every real path stores it (normalise_email)
            user = User(
                email=email, name=name or email.split("@")[0], issuer="test", subject=email,
                permissions=list(CATALOGUE if permissions is None else permissions),
                email_verified_at=utcnow() if verified else None,
            )
            session.add(user)
            session.commit()
            session.refresh(user)
            session.expunge(user)
            return user

    def token(self, user: User, permissions: list[str] | None = None, **claims: Any) -> str:
        """A genuine access token of a session whose login is now (``auth_time``), unless
        ``claims`` say otherwise."""
        minted = ACCESS_TOKENS.get(self.app).mint(
            {
                "sub": user.id,
                "email": user.email,
                "name": user.name,
                "permissions": list(user.permissions if permissions is None else permissions),
                "sid": "rtf_test",
                "auth_time": int(time.time()),
                **claims,
            }
        )
        token: str = minted.token
        return token

    def headers(self, user: User, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, **kwargs)}"}

    def find_user(self, email: str) -> User | None:
        with SESSIONS.get(self.app)() as session:
            found: User | None = session.scalars(select(User).where(User.email == email)).first()
            return found


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for comparing before and after a denied call."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with Database.engine(app).connect() as connection:
        for table in Base.metadata.sorted_tables:
            query = f"SELECT * FROM {table.name}"  # noqa: S608 - names from our own metadata
            result = connection.execute(text(query))
            rows[table.name] = sorted((tuple(r) for r in result), key=repr)
    return rows


def make_household(app: Flask, name: str, members: dict[str, str]) -> str:
    """A household with ``{user_id: role}`` members, written directly; returns its id."""
    from app.models import Household, Member

    with SESSIONS.get(app)() as session:
        household = Household(name=name)
        session.add(household)
        session.flush()
        for user_id, role in members.items():
            session.add(Member(household_id=household.id, user_id=user_id, role=role))
        session.commit()
        return household.id


def invite_and_accept(app: Flask, auth: AuthActions, household_id: str, owner: User,
                      member: User, role: str) -> dict[str, Any]:
    """``member`` joins through the API as a person does: the owner invites their address, they
    accept (their address must be verified). Returns the membership."""
    client = app.test_client()
    invited = client.post(f"/api/households/{household_id}/members",
                          json={"email": member.email, "role": role}, headers=auth.headers(owner))
    assert invited.status_code == 201, invited.get_json()
    accepted = client.post(f"/api/invitations/{json_object(invited)['id']}/accept",
                           headers=auth.headers(member))
    assert accepted.status_code == 200, accepted.get_json()
    return json_object(accepted)


def assert_unchanged_but_denials(before: dict[str, list[tuple[Any, ...]]],
                                 after: dict[str, list[tuple[Any, ...]]]) -> None:
    """Every table is as it was, except that the audit trail may have gained denied events."""
    for table in before:
        if table != "audit_events":
            assert after[table] == before[table], f"{table} changed"
    new_events = [row for row in after["audit_events"] if row not in before["audit_events"]]
    assert all("denied" in row for row in new_events), new_events


def json_object(response: TestResponse) -> dict[str, Any]:
    """The JSON object ``response`` carries, as ``response.json`` reads it (``None`` without a JSON
    content type). Anything but an object fails the test, naming the status and the body."""
    body = response.get_json()
    assert isinstance(body, dict), (response.status, response.get_data(as_text=True))
    return body


def without_volatile(body: dict[str, Any]) -> dict[str, Any]:
    """An error body without its per-call fields (``correlationId``, ``timestamp``), for comparing
    two answers byte for byte otherwise."""
    return {k: v for k, v in body.items() if k not in {"correlationId", "timestamp"}}
