"""Bodies over ``MAX_CONTENT_LENGTH`` are 413 whether they come with ``Content-Length`` or chunked,
never cut at the limit and processed: on every route that takes a body (Flask client), and under
gunicorn with a raw socket sending ``Transfer-Encoding: chunked``."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.models import Household
from testkit.builders.families import BUYFLOW_TOKEN, ORCHESTRATOR_TOKEN
from testkit.builders.households import AuthActions, json_object, snapshot
from testkit.builders.routes import EVERY_FEATURE, concrete, credential_kind, live_routes
from testkit.builders.webhooks import signed
from testkit.config import TEST_JWT_SECRET
from testkit.servers.processes import free_port, gunicorn_process

MIB = 1024 * 1024


def padded(document: dict[str, Any], size: int) -> bytes:
    """``document`` as JSON followed by whitespace up to ``size`` bytes: valid JSON at any length,
    and still valid when cut anywhere after the document (which is how a cut body got through)."""
    head = json.dumps(document).encode()
    return head + b" " * (size - len(head))


def post_chunked(client: FlaskClient, path: str, body: bytes, headers: dict[str, str],
                 method: str = "POST") -> TestResponse:
    """A body without ``Content-Length``, as gunicorn and werkzeug's server hand a chunked one
    to the application (the stream ends where the body ends: ``wsgi.input_terminated``)."""
    return client.open(path, method=method, input_stream=io.BytesIO(body),
                       headers={**headers, "Transfer-Encoding": "chunked",
                                "Content-Type": "application/json"},
                       environ_overrides={"wsgi.input_terminated": True})


def households(app: Flask) -> int:
    with SESSIONS.get(app)() as session:
        return int(session.scalar(select(func.count()).select_from(Household)) or 0)


def test_a_chunked_body_over_the_limit_is_413_and_creates_nothing(app: Flask) -> None:
    auth = AuthActions(app)
    headers = auth.headers(auth.user("chunked@example.test"))
    client = app.test_client()
    before = snapshot(app)
    r = post_chunked(client, "/api/households", padded({"name": "Cut family"}, 3 * MIB), headers)
    assert r.status_code == 413, r.data
    assert json_object(r)["error"] == "PayloadTooLarge"
    assert json_object(r)["correlationId"] == r.headers["X-Request-ID"]
    assert snapshot(app) == before
    # one byte over is over; exactly the limit is read whole and served
    r = post_chunked(client, "/api/households", padded({"name": "Over"}, MIB + 1), headers)
    assert r.status_code == 413
    assert snapshot(app) == before
    r = post_chunked(client, "/api/households", padded({"name": "At the limit"}, MIB), headers)
    assert r.status_code == 201 and json_object(r)["name"] == "At the limit"
    assert households(app) == 1


def test_every_route_with_a_body_refuses_a_chunked_body_over_the_limit(
    make_app: Callable[..., Flask],
) -> None:
    limit = 16 * 1024
    app = make_app(MAX_CONTENT_LENGTH=limit, **EVERY_FEATURE)
    auth = AuthActions(app)
    bearer = auth.headers(auth.user("sweep@example.test"))
    tokens = {"BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN,
              "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN}
    client = app.test_client()
    routes = [(rule, method, contract) for rule, method, contract in live_routes(app)
              if contract.body is not None]
    assert len(routes) > 15
    before = snapshot(app)
    wrong: list[tuple[object, ...]] = []  # what each failing route answered
    for rule, method, contract in routes:
        over = padded({}, limit + 1)
        kind = credential_kind(contract)
        if kind == "bearer":
            headers = bearer
        elif kind == "internal":
            assert contract.internal_token is not None
            headers = {"X-Internal-Token": tokens[contract.internal_token[0]]}
        elif kind == "signature":
            headers = signed(over[:limit])  # signed as the cut body: a cut must not verify either
        else:
            headers = {}
        path = concrete(rule)
        chunked = post_chunked(client, path, over, headers, method=method)
        announced = client.open(path, method=method, data=over, headers=headers,
                                content_type="application/json")
        if (chunked.status_code, announced.status_code) != (413, 413):
            wrong.append((method, rule.rule, chunked.status_code, announced.status_code))
        elif json_object(chunked)["error"] != "PayloadTooLarge":
            wrong.append((method, rule.rule, chunked.get_json()))
    assert not wrong, wrong
    assert snapshot(app) == before


# -- under gunicorn, with a raw socket ----------------------------------------------------------


def chunked_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """Send ``body`` in 64 KiB chunks from a thread while reading the answer: the server may
    answer (and close) before the whole body is sent."""
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
              for i in range(0, len(body), 65536)]
    return raw_request(port, path, {**headers, "Transfer-Encoding": "chunked"},
                       [*chunks, b"0\r\n\r\n"])


def announced_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    return raw_request(port, path, {**headers, "Content-Length": str(len(body))}, parts)


def raw_request(port: int, path: str, headers: dict[str, str], parts: list[bytes]) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Connection: close\r\n{head}\r\n").encode())

    def send_body() -> None:
        try:
            for part in parts:
                sock.sendall(part)
        except OSError:
            pass  # the server answered and closed before the whole body arrived

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    except ConnectionResetError:
        pass  # after the answer: the unread rest of the body was discarded
    finally:
        sender.join(timeout=30)
        sock.close()
    return answer


def test_gunicorn_answers_413_to_a_chunked_body_over_the_limit(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    auth = AuthActions(app)
    user = auth.user("gunicorn-chunked@example.test")
    headers = auth.headers(user)
    port = free_port()
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("HEARTHGATE", "AUTH_", "RATELIMIT_", "REDIS_", "MAX_"))}
    environ.update({
        "HEARTHGATE_ENV": "test", "DATABASE_URL": database_url, "SECRET_STORE_URL": "memory://",
        "AUTH_JWT_SECRET": TEST_JWT_SECRET, "RATELIMIT_ENABLED": "false", "LOG_JSON": "false",
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
    })
    with gunicorn_process("wsgi:app", environ, tmp_path / "gunicorn.log"):
        answer = chunked_request(port, "/api/households", padded({"name": "Cut"}, 3 * MIB), headers)
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 413"), answer[:300]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"] == "PayloadTooLarge"
        assert households(app) == 0
        # the same body announced with Content-Length: the same answer
        answer = announced_request(port, "/api/households", padded({"name": "Cut"}, 3 * MIB),
                                   headers)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert households(app) == 0
        # a chunked body within the limit is read whole and served
        answer = chunked_request(port, "/api/households", padded({"name": "Whole"}, MIB), headers)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert households(app) == 1


def test_a_schema_validated_outside_a_request_refuses_nul_in_any_string_field() -> None:
    """The request path refuses NUL before validation (app.gateway.jsonbody); the schemas refuse
    it too, for a model validated from any other source: in a plain, optional or listed string,
    whatever the field's name, and they keep every other value as given."""
    import pydantic

    from app.gateway.schemas import Body, Query

    class Probe(Body):
        name: str
        tags: list[str] = []
        note: str | None = None
        count: int = 0

    class ProbeQuery(Query):
        cursor: str | None = None
        limit: int = 20

    for bad in ({"name": "a\x00b"}, {"name": "a", "tags": ["ok", "x\x00"]},
                {"name": "a", "note": "\x00"}):
        with pytest.raises(pydantic.ValidationError, match="NUL characters are not accepted"):
            Probe.model_validate(bad)
    with pytest.raises(pydantic.ValidationError, match="cursor: NUL"):
        ProbeQuery.model_validate({"cursor": "c\x00", "limit": "5"})
    kept = Probe.model_validate({"name": "a", "tags": ["b", "c"], "count": 3})
    assert kept.model_dump() == {"name": "a", "tags": ["b", "c"], "note": None, "count": 3}
    assert ProbeQuery.model_validate({"limit": "5"}).model_dump() == {"cursor": None, "limit": 5}
