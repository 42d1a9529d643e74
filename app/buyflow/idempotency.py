"""``Idempotency-Key`` for the buy-flow's POSTs.

The key row is inserted first, in the request's own transaction, and the response is written into
it before the gateway commits: a key is stored together with the change it answers for, or not at
all (an error rolls both back, and the client may retry). ``(user_id, key)`` is unique, so a
concurrent duplicate blocks on the index until the first transaction ends and then replays what
it stored; it never runs the handler a second time.

A key names one request: same method, path and body (SHA-256 ``fingerprint``). The same key with
anything else is 422. A key replays for ``IDEMPOTENCY_KEY_RETENTION_SECONDS``; after that it is
free again (the stale row is replaced on reuse, and ``flask buyflow purge-idempotency-keys``
deletes stale rows in bulk).

Confirmation tokens are never stored: fields listed in ``withhold`` are dropped from the stored
body, and such a route answers a replay with 409 naming what it created (``replay="conflict"``)
rather than a body without its token.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from flask import current_app, request
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.buyflow import clock
from app.db import db
from app.gateway.contracts import Call, Reply
from app.gateway.errors import BadRequest, Conflict, Unprocessable
from app.models import IdempotencyKey
from app.sqltypes import rows_changed

HEADER = "Idempotency-Key"
_SANE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint() -> str:
    """SHA-256 of method, path and body; JSON bodies are canonicalized (key order, spacing)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def stale_before() -> datetime:
    """Keys created before this moment no longer replay."""
    return clock.now() - timedelta(seconds=current_app.config["IDEMPOTENCY_KEY_RETENTION_SECONDS"])


def _claim(call: Call, key: str, print_: str) -> tuple[IdempotencyKey, IdempotencyKey | None]:
    """Insert the key row; on a unique conflict, the row someone else committed (a stale one is
    deleted and the insert tried once more)."""
    assert call.principal is not None and call.household is not None  # noqa: S101 - bearer+household
    user_id = call.principal.user_id
    session = db.session
    for _attempt in range(2):
        row = IdempotencyKey(
            user_id=user_id, household_id=call.household.id, key=key, fingerprint=print_,
            status_code=0, created_at=clock.now(),
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row, None
        except IntegrityError:
            if row in session:
                session.expunge(row)
        existing = session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                         IdempotencyKey.key == key)
        ).one()
        if existing.created_at >= stale_before():
            return row, existing
        session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.id == existing.id, IdempotencyKey.created_at < stale_before()))
        session.expunge(existing)
    raise Conflict(f"This {HEADER} is being reused by another request; retry")


def purge_stale_keys() -> int:
    """Delete every key past its retention; returns how many."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < stale_before())
    )
    db.session.commit()
    return rows_changed(result)


def _replay(existing: IdempotencyKey, print_: str, mode: str) -> Reply:
    if existing.fingerprint != print_:
        raise Unprocessable(f"This {HEADER} was used with another request")
    stored = json.loads(existing.response_body) if existing.response_body else None
    if mode == "conflict":
        named = {k: v for k, v in (stored or {}).items() if k.endswith("Id")}
        raise Conflict(
            f"This {HEADER} already created a resource; its confirmation token is shown once only",
            **named,
        )
    return Reply(body=stored, status=existing.status_code)


def idempotent(
    response: type[BaseModel],
    *,
    replay: Literal["response", "conflict"] = "response",
    withhold: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a household-scoped POST handler (under ``@endpoint``) with Idempotency-Key handling."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(view)
        view_wants_call = "call" in signature.parameters

        @functools.wraps(view)
        def wrapper(call: Call, **kwargs: Any) -> Any:
            if view_wants_call:
                kwargs["call"] = call
            key = request.headers.get(HEADER)
            if key is None:
                return view(**kwargs)
            if not _SANE_KEY.match(key):
                raise BadRequest(f"{HEADER} must be 1-255 printable ASCII characters")
            print_ = fingerprint()
            row, existing = _claim(call, key, print_)
            if existing is not None:
                return _replay(existing, print_, replay)
            result = view(**kwargs)
            status = call.contract.status
            body = result
            if isinstance(result, Reply):
                status = result.status or status
                body = result.body
            db.session.flush()
            stored: dict[str, Any] | None = None
            if body is not None:
                model = body if isinstance(body, response) else response.model_validate(
                    body, from_attributes=True
                )
                stored = model.model_dump(mode="json", by_alias=True)
                for name in withhold:
                    stored.pop(name, None)
            row.status_code = status
            row.response_body = json.dumps(stored) if stored is not None else None
            return result

        params = list(signature.parameters.values())
        if not view_wants_call:
            params.append(inspect.Parameter("call", inspect.Parameter.KEYWORD_ONLY))
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate
