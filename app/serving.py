"""The gunicorn worker that gunicorn.conf.py runs: gunicorn's threaded worker (gthread), with two
changes.

**Requests are read whole before a thread runs them.** gthread hands a connection to a thread as
soon as its first byte arrives, and the thread then reads the head (and the application the
body) with blocking reads and no time limit: twenty clients sending one header line a second hold
twenty threads, and a worker with fewer threads serves nobody else (a sync worker, one request
at a time, even sooner). Here the worker's event loop reads every connection without blocking
until its request is complete: the head, and a body of up to ``MAX_CONTENT_LENGTH`` bytes
(``Content-Length``, or chunked up to its last chunk). Only then does a thread parse and run it,
from memory. A slow client costs a socket and its buffer, never a thread. A request that is not
complete ``GUNICORN_REQUEST_READ_TIMEOUT`` seconds (default 10) after its connection was accepted,
or after its keep-alive connection woke up, is answered 408 and closed; reads that still happen in
a thread (a body above the limit, an unusual framing) stop at the same deadline. A connection is
kept alive only after a request that arrived exactly (its body whole, nothing after it): a
request sent ahead on the same connection (pipelining) gets its connection closed after the
first answer, to be sent again.

**gunicorn's own error answers are JSON.** Requests that gunicorn refuses before the application
sees them (a request line over ``limit_request_line``, a header over ``limit_request_field_size``
or more than ``limit_request_fields`` headers, a malformed request) are answered with the API's
error body and the security headers (``app.gateway.headers``), as the application's own errors
are, instead of gunicorn's HTML page. gunicorn's message, which quotes the request, is neither
sent nor logged.

Buffered requests cost memory: at most ``worker_connections`` times (the head limits plus
``MAX_CONTENT_LENGTH``) per worker, and only while the bytes arrive within the read timeout.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import selectors
import socket
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import HTTPException

from app.gateway.headers import REQUEST_ID_HEADER, api_headers

READ_TIMEOUT_SETTING = "GUNICORN_REQUEST_READ_TIMEOUT"
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_BODY_LIMIT = 1024 * 1024  # the application's MAX_CONTENT_LENGTH default
_RECV = 65536


class RequestTimeout(HTTPException):
    """The request was not received before its deadline. Raised from a read in a thread: while
    gunicorn parses the head (answered by ``handle_error``), or while the application reads the
    body (answered by the application's error handler, as any HTTP error)."""

    code = 408
    description = "the request was not received in time"


class _DeadlineUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, holding the bytes the event loop read, whose further reads (in
    a thread) end at the request's deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__(sock, max_chunk=_RECV)
        self.deadline = deadline

    def chunk(self) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout
        self.sock.settimeout(remaining)
        try:
            data: bytes = self.sock.recv(self.mxchunk)
            return data
        except TimeoutError:
            raise RequestTimeout from None
        finally:
            self.sock.settimeout(None)


class _Conn(TConn):  # type: ignore[misc]
    """A connection and the bytes of its next request read so far."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.received = bytearray()
        self.deadline: float | None = None  # set while a request is being read in the loop
        self.continued = False  # "100 Continue" already sent for this request
        self.exact = False  # the request handed to the thread was exactly the bytes read

    def init(self) -> None:
        super().init()
        if not isinstance(self.parser.unreader, _DeadlineUnreader):
            self.parser.unreader = _DeadlineUnreader(self.sock, 0.0)


class Status(NamedTuple):
    complete: bool  # a thread can run it now (or reading on cannot help: it will be refused)
    exact: bool  # the buffer holds exactly one whole request, body included, nothing after it
    expects_continue: bool  # "Expect: 100-continue" with its body still to come


def request_status(data: bytes | bytearray, body_limit: int, head_limit: int) -> Status:
    """What the bytes of a request read so far allow. A head over the limits, a malformed
    framing or a body over ``body_limit`` is complete (the parser or the application refuses
    it) but not exact; so are bytes after the request (pipelining)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return Status(len(data) > head_limit, False, False)
    fields: dict[bytes, bytes] = {}
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    body = len(data) - end - 4
    expects = fields.get(b"expect") == b"100-continue"
    coding = fields.get(b"transfer-encoding")
    if coding is not None:
        if coding != b"chunked" or b"content-length" in fields:
            return Status(True, False, False)
        # Up to the last chunk (no trailers: this API reads none), or more than the limit.
        last = data.find(b"\r\n0\r\n\r\n", end)
        if last >= 0:
            return Status(True, last + 7 == len(data), False)
        return Status(body > body_limit + 8192, False, expects)
    length = fields.get(b"content-length", b"0")
    if not length.isdigit() or int(length) > body_limit:
        return Status(True, False, False)  # refused by the parser, or by the application (413)
    return Status(body >= int(length), body == int(length), expects and body < int(length))


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, reading each request whole in the event loop (see the module docstring)."""

    def init_process(self) -> None:
        self.read_timeout = float(os.environ.get(READ_TIMEOUT_SETTING, DEFAULT_READ_TIMEOUT))
        self.reading: set[_Conn] = set()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        config = getattr(self.wsgi, "config", {})
        self.body_limit = int(config.get("MAX_CONTENT_LENGTH") or DEFAULT_BODY_LIMIT)
        self.error_headers = api_headers(hsts=config.get("HEARTHGATE_ENV") == "production")
        cfg = self.cfg
        self.head_limit = (cfg.limit_request_line + 2
                           + cfg.limit_request_fields * (cfg.limit_request_field_size + 2) + 2)

    # -- reading in the event loop ------------------------------------------------------------

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = _Conn(self.cfg, sock, client, server)
        self.nr_conns += 1
        self._start_reading(conn)

    def _start_reading(self, conn: _Conn) -> None:
        conn.deadline = time.monotonic() + self.read_timeout
        conn.continued = False
        if conn.parser is not None and conn.parser.unreader.buf.tell():
            # Bytes the parser read past the last request: the loop judges them with the rest.
            conn.received = bytearray(conn.parser.unreader.buf.getvalue()) + conn.received
            conn.parser.unreader.buf = io.BytesIO()
        self.reading.add(conn)
        with self._lock:
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _: self._readable(conn))

    def on_client_socket_readable(self, conn: _Conn, client: socket.socket) -> None:
        """A kept-alive connection woke up: read its next request in the loop as well."""
        with self._lock:
            self.poller.unregister(client)
            try:
                self._keep.remove(conn)
            except ValueError:  # closed by murder_keepalived meanwhile
                return
        self._start_reading(conn)
        self._readable(conn)

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_reading(conn)
            return
        conn.received += data
        status = request_status(conn.received, self.body_limit, self.head_limit)
        if status.complete:
            conn.exact = status.exact
            self._hand_over(conn)
        elif status.expects_continue and not conn.continued:
            conn.continued = True
            util.write_nonblock(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _hand_over(self, conn: _Conn) -> None:
        self.reading.discard(conn)
        with self._lock:
            self.poller.unregister(conn.sock)
        conn.init()
        unreader = conn.parser.unreader
        unreader.deadline = conn.deadline
        unreader.unread(bytes(conn.received))
        conn.received = bytearray()
        conn.deadline = None
        self._wrap_future(self.tpool.submit(self.handle, conn), conn)

    # -- in a thread ---------------------------------------------------------------------------

    def handle_request(self, req: Any, conn: _Conn) -> bool:
        """gthread's, keeping the connection alive only after a request that was read exactly:
        its body, whether the application read it or not, is then discarded from memory (never
        read from the socket in a thread), and nothing follows it. After any other request
        (pipelined, over a limit, unusually framed) the connection is closed."""
        if not conn.exact:
            req.force_close()
        keepalive: bool = super().handle_request(req, conn)
        if keepalive:
            try:
                while req.body.read(_RECV):
                    pass
            except (RequestTimeout, OSError):  # cannot happen to an exact request: close
                return False
            if conn.parser.unreader.buf.tell():
                return False
        return keepalive

    def _close_reading(self, conn: _Conn, answer: bytes = b"") -> None:
        self.reading.discard(conn)
        with self._lock:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        if answer:
            try:
                conn.sock.setblocking(False)
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        now = time.monotonic()
        for conn in [c for c in self.reading if c.deadline is not None and c.deadline <= now]:
            # Nothing received: a connection opened and left idle, closed without an answer.
            answer = self._json_error(408, "RequestTimeout", RequestTimeout.description
                                      ) if conn.received else b""
            self._close_reading(conn, answer)

    # -- gunicorn's own error answers ---------------------------------------------------------

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        status, error, message = self._refusal(exc)
        ip = addr[0] if addr else ""
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            # gunicorn's message quotes the request (its line or a header): not logged.
            self.log.warning("Refused request from ip=%s: %s %s", ip, status, type(exc).__name__)
        try:
            util.write_nonblock(client, self._json_error(status, error, message))
        except Exception:  # noqa: BLE001 - the client may be gone; nothing else to do
            self.log.debug("Failed to send error message.")

    def _refusal(self, exc: BaseException) -> tuple[int, str, str]:
        cfg = self.cfg
        if isinstance(exc, RequestTimeout):
            return 408, "RequestTimeout", RequestTimeout.description
        if isinstance(exc, http_errors.LimitRequestLine):
            return (414, "URITooLong",
                    f"the request line is longer than {cfg.limit_request_line} bytes")
        if isinstance(exc, http_errors.LimitRequestHeaders):
            return (431, "RequestHeaderFieldsTooLarge",
                    f"more than {cfg.limit_request_fields} header fields, or one longer than "
                    f"{cfg.limit_request_field_size} bytes")
        if isinstance(exc, http_errors.UnsupportedTransferCoding):
            return 501, "NotImplemented", "unsupported transfer coding"
        if isinstance(exc, http_errors.ForbiddenProxyRequest):
            return 403, "Forbidden", "request forbidden"
        if isinstance(exc, (http_errors.ParseException, http_errors.NoMoreData,
                            http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator)):
            return 400, "BadRequest", "malformed HTTP request"
        return 500, "InternalError", "internal error"

    def _json_error(self, status: int, error: str, message: str) -> bytes:
        rid = "cor_" + secrets.token_hex(12)
        body = json.dumps({
            "error": error, "message": message, "correlationId": rid,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        reason = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout",
                  414: "URI Too Long", 431: "Request Header Fields Too Large",
                  500: "Internal Server Error", 501: "Not Implemented"}[status]
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("Connection", "close"), (REQUEST_ID_HEADER, rid),
                   *getattr(self, "error_headers", api_headers(hsts=False))]
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        return head.encode("latin-1") + b"\r\n" + body
