"""``MAX_CONTENT_LENGTH`` for every request body, whether it comes with ``Content-Length`` or
chunked (API.md "Conventions": 413 either way, never cut and processed).

werkzeug answers 413 before reading when ``Content-Length`` exceeds the limit. A body without one
(``Transfer-Encoding: chunked``; gunicorn and werkzeug's server then set
``wsgi.input_terminated``) is read through a stream that stops *silently* at the limit, so a
larger body was cut there and processed. ``BoundedRequest`` reads such a body up to one byte past
the limit instead: at most the limit is accepted whole, anything longer is 413 before any handler
sees a byte of it. Every reader of the body (``get_data``, the JSON reader, the webhook's raw
bytes, the idempotency hash) goes through ``Request.stream``, so they all get the same answer.
"""

from __future__ import annotations

import io
import typing as t

from flask import Flask, Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property

_READ_SIZE = 64 * 1024


class BoundedRequest(Request):
    _over_limit = False

    @cached_property
    def stream(self) -> t.IO[bytes]:
        limit = self.max_content_length
        if (
            limit is None
            or self.content_length is not None  # werkzeug checks an announced length itself
            or "wsgi.input_terminated" not in self.environ  # no server-ended stream: read as empty
            or self.shallow
        ):
            return super().stream
        if self._over_limit:
            raise RequestEntityTooLarge()
        body = _read_at_most(self.environ["wsgi.input"], limit + 1)
        if len(body) > limit:
            self._over_limit = True
            raise RequestEntityTooLarge()
        return io.BytesIO(body)


def _read_at_most(stream: t.IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the stream (a WSGI input may return short
    reads before its end)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = stream.read(min(left, _READ_SIZE))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def init_body_limit(app: Flask) -> None:
    app.request_class = BoundedRequest
