"""The deployed server against raw sockets: ``wsgi:app`` under gunicorn with gunicorn.conf.py
(the Procfile's and scripts/run's configuration), two workers.

Slow clients send their request a few bytes at a time (slowloris). Twenty of them at once must
not keep ordinary requests waiting: each ``/healthz`` probe sent meanwhile is answered within
``PROBE_BOUND`` seconds, a generous bound on this shared 2-core machine (an answer normally takes
milliseconds; the bound only separates "served" from "queued behind the slow clients", which
never answers while they last). A slow client is cut off once its request has taken
``GUNICORN_REQUEST_READ_TIMEOUT`` (set low here to keep the test short).

Requests that gunicorn refuses itself (over its head limits, malformed) are answered as the API
answers errors: JSON, with the request id and the security headers.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.soak_server import AppServer, app_server, server_env
from testkit.slow_clients import (
    ATTACK_SECONDS,
    PROBE_BOUND,
    Probe,
    SlowClient,
    attack,
    report,
)

pytestmark = pytest.mark.slow

READ_TIMEOUT = 5  # GUNICORN_REQUEST_READ_TIMEOUT for this server


@pytest.fixture(scope="module")
def server(migrated_database: str) -> Iterator[AppServer]:
    env = server_env(migrated_database, GUNICORN_REQUEST_READ_TIMEOUT=str(READ_TIMEOUT))
    with app_server(env, workers=2) as running:
        yield running


def assert_held(probes: list[Probe], clients: list[SlowClient]) -> None:
    assert [p.status for p in probes] == [200] * len(probes), probes
    assert len(probes) >= 5
    assert max(p.seconds for p in probes) < PROBE_BOUND
    # Every slot was cut off by the read timeout at least once, never long after it.
    cut = [seconds for c in clients for seconds in c.cut_after]
    assert all(c.cut_after for c in clients), [c.cut_after for c in clients]
    assert max(cut) < READ_TIMEOUT + 3, cut


HEADER_LINES = [f"X-Slow-{n}: {'a' * 20}\r\n".encode() for n in range(int(ATTACK_SECONDS))]


def test_slow_header_senders_do_not_starve_other_requests(server: AppServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: hearthgate\r\n"
    probes, clients = attack(server, head, HEADER_LINES)
    report("slow headers", probes, clients)
    assert_held(probes, clients)
    # Cut off with a JSON 408, or closed before anything could be answered.
    answers = [a for c in clients for a in c.answers if a]
    assert all(a.startswith(b"HTTP/1.1 408 ") and b"application/json" in a for a in answers), \
        answers[:2]


def test_slow_body_senders_do_not_starve_other_requests(server: AppServer) -> None:
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: hearthgate\r\n"
            b"Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{")
    probes, clients = attack(server, head, [b" "] * int(ATTACK_SECONDS))
    report("slow bodies", probes, clients)
    assert_held(probes, clients)


def test_slow_requests_behind_an_answered_one_do_not_starve_other_requests(
    server: AppServer,
) -> None:
    """A first request whose body the application never reads (refused before it: no token),
    with the start of a second request in the same packet; the second then comes one header
    line a second. Neither the unread body nor the early bytes may hand the slow request to a
    thread."""
    body = b'{"name": "' + b"x" * 40 + b'"}'
    first = (b"POST /api/households HTTP/1.1\r\nHost: hearthgate\r\n"
             b"Content-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    probes, clients = attack(server, first + b"GET /healthz HTTP/1.1\r\n", HEADER_LINES)
    report("slow after a pipelined request", probes, clients)
    assert_held(probes, clients)
    probes, clients = attack(server, first, [b"GET /healthz HTTP/1.1\r\n", *HEADER_LINES])
    report("slow on a kept-alive connection", probes, clients)
    assert_held(probes, clients)


def sent_in_pieces(server: AppServer, pieces: list[bytes], pause: float = 0.3) -> RawAnswer:
    """One request sent in ``pieces`` with a pause between them, then read as ``raw_request``."""
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for piece in pieces[:-1]:
            sock.sendall(piece)
            time.sleep(pause)
        return raw_request(server, pieces[-1], sock)


def test_a_request_sent_in_pieces_reaches_the_application_whole(server: AppServer) -> None:
    """The worker reads a request whole before it runs it: the head, a body with
    Content-Length, a chunked body and a keep-alive connection's next request all arrive
    intact (the login's validation error names the field of the body's last bytes)."""
    body = b'{"idToken": 5}'
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: hearthgate\r\n"
            b"Content-Type: application/json\r\n")
    length = sent_in_pieces(server, [
        head[:20], head[20:], b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n",
        body[:5], body[5:]])
    chunked = sent_in_pieces(server, [
        head, b"Transfer-Encoding: chunked\r\n\r\n", b"5\r\n" + body[:5] + b"\r\n",
        f"{len(body) - 5:x}\r\n".encode() + body[5:] + b"\r\n", b"0\r\n\r\n"])
    for answer in (length, chunked):
        assert answer.status == 400, answer
        assert json.loads(answer.body)["error"] == "ValidationError", answer
        assert "idToken" in answer.body.decode()
    # A declared body over MAX_CONTENT_LENGTH is refused at once, not waited for.
    too_large = raw_request(server, head + b"Content-Length: 2097152\r\n\r\n{")
    assert too_large.status == 413 and json.loads(too_large.body)["error"] == "PayloadTooLarge"
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        first = raw_request(server, get("/healthz"), sock)
        second = raw_request(server, get("/healthz?again=1"), sock)  # the same connection
        # A body the application does not read (refused before it) is discarded, and the
        # connection serves the next request.
        refused = raw_request(server, head.replace(b"/api/auth/login", b"/api/households")
                              + b"Content-Length: 13\r\n\r\n{\"name\": \"x\"}", sock)
        after = raw_request(server, get("/healthz"), sock)
    assert (first.status, second.status, refused.status, after.status) == (200, 200, 401, 200)
    # Requests sent ahead (pipelining): the first is answered, then the connection is closed.
    pipelined = raw_request(server, get("/healthz") + get("/healthz?second=1"))
    assert pipelined.status == 200 and pipelined.headers["connection"] == "close"


def test_a_read_left_to_a_thread_stops_at_the_deadline(server: AppServer) -> None:
    """A chunk whose data looks like the last chunk makes the loop hand the request over early;
    the application's read of the rest then ends at the request's deadline with a JSON 408, and
    the connection is closed."""
    data = b'{"a":"\r\n0\r\n\r\nxxxxxxx'
    started = time.monotonic()
    answer = raw_request(server, b"POST /api/auth/login HTTP/1.1\r\nHost: hearthgate\r\n"
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n" % len(data) + data)
    waited = time.monotonic() - started
    assert answer.status == 408, answer
    assert json.loads(answer.body)["error"] == "RequestTimeout"
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert READ_TIMEOUT - 1 < waited < READ_TIMEOUT + 5


def test_a_client_that_expects_100_continue_is_told_to_send_its_body(server: AppServer) -> None:
    body = b'{"idToken": 5}'
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: hearthgate\r\n"
                     b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        sock.sendall(body)
        answer = interim
        while not (b"HTTP/1.1 400 " in answer and answer.endswith(b"}\n")):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    final = answer[answer.index(b"HTTP/1.1 400 "):]
    assert b'"ValidationError"' in final and b"idToken" in final


# -- gunicorn's own refusals ------------------------------------------------------------------


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(server: AppServer, data: bytes, sock: socket.socket | None = None) -> RawAnswer:
    """Sends ``data`` as is (on ``sock``, else a new connection) and reads one answer: its
    Content-Length, else until the server closes the connection."""
    if sock is None:
        port = int(server.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as new:
            return raw_request(server, data, new)
    sock.sendall(data)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
        if b"\r\n\r\n" in answer:
            head_end = answer.index(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", answer[:head_end])
            if length and len(answer) >= head_end + 4 + int(length.group(1)):
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split()[1]), headers, body)


def get(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: hearthgate", *headers]) + "\r\n\r\n").encode()


SECRET_LOOKING = "Bearer eyJhbGciOiJIUzI1NiJ9.refused-header-value"


@pytest.mark.parametrize("request_bytes, status, error", [
    (get("/healthz?q=" + "a" * 4100), 414, "URITooLong"),
    (get("/healthz", "X-Long: " + "a" * 8200), 431, "RequestHeaderFieldsTooLarge"),
    (get("/healthz", f"Authorization: {SECRET_LOOKING}" + "a" * 8200), 431,
     "RequestHeaderFieldsTooLarge"),
    (get("/healthz", *[f"X-Many-{n}: x" for n in range(65)]), 431, "RequestHeaderFieldsTooLarge"),
    (b"NOT A REQUEST\r\n\r\n", 400, "BadRequest"),
    (get("/healthz", "Bad Header Name: x"), 400, "BadRequest"),
    (b"GET /healthz HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br\r\n\r\n", 501,
     "NotImplemented"),
], ids=["request-line", "header-field", "token-in-long-header", "too-many-headers",
        "malformed-line", "malformed-header", "transfer-coding"])
def test_gunicorn_refusals_are_json_with_the_security_headers(
    server: AppServer, request_bytes: bytes, status: int, error: str,
) -> None:
    answer = raw_request(server, request_bytes)
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    assert body["error"] == error and body["message"]
    assert body["correlationId"] == answer.headers["x-request-id"]
    assert set(body) == {"error", "message", "correlationId", "timestamp"}
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["connection"] == "close"
    # Nothing of the refused request is echoed or logged.
    assert b"aaaa" not in answer.body and b"X-Many" not in answer.body
    assert SECRET_LOOKING not in server.log() and "a" * 100 not in server.log()


def test_requests_at_the_configured_limits_are_served(server: AppServer) -> None:
    line = get("/healthz?q=" + "a" * 4000)  # the request line stays under 4094 bytes
    assert raw_request(server, line).status == 200
    many = get("/healthz", *[f"X-Many-{n}: x" for n in range(60)], "X-Long: " + "a" * 8000)
    assert raw_request(server, many).status == 200
