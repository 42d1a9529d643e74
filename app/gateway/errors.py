"""The JSON error shape of API.md, for every error: ours, werkzeug's and unexpected ones.

``ApiError`` subclasses werkzeug's ``HTTPException`` (as Flask-Limiter's do), so Flask
routes them to one handler; werkzeug's own 404/405/413 are mapped to the same body.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from app.context import request_id
from app.crypto.fields import FieldDecryptionError
from app.secrets import SecretStoreError

log = logging.getLogger(__name__)

ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict",
    410: "Gone",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}

DEFAULT_MESSAGES = {
    400: "The request could not be understood",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class ApiError(HTTPException):
    """An error with the API.md body. ``extra`` fields join the body; ``headers`` the response."""

    code = 500
    error: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description=message or DEFAULT_MESSAGES.get(self.code or 500))
        if error:
            self.error = error
        self.extra = extra
        self.extra_headers = headers or {}


class BadRequest(ApiError):
    code = 400


class ValidationError(ApiError):
    code = 400
    error = "ValidationError"


class Unauthorized(ApiError):
    code = 401

    def __init__(self, message: str | None = None, *, invalid_token: bool = False, **kw: Any):
        if invalid_token:
            kw.setdefault("error", "InvalidToken")
            kw.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="hearthgate"'})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    code = 403


class NotFound(ApiError):
    code = 404


class Conflict(ApiError):
    code = 409


class Gone(ApiError):
    code = 410


class UnsupportedMediaType(ApiError):
    code = 415


class Unprocessable(ApiError):
    code = 422


class ServiceUnavailable(ApiError):
    code = 503


def error_body(status: int, message: str, error: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": error or ERROR_NAMES.get(status, "Error"),
        "message": message,
        "correlationId": request_id(),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body.update(extra)
    return body


def error_response(
    status: int, message: str, error: str | None = None, headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    response = jsonify(error_body(status, message, error, **extra))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, ApiError):
        return error_response(
            status, str(exc.description), exc.error, exc.extra_headers, **exc.extra
        )
    headers = {k: v for k, v in exc.get_headers() if k.lower() in {"allow", "retry-after"}}
    # werkzeug's descriptions are generic texts of its own, never exception details.
    message = DEFAULT_MESSAGES.get(status, str(exc.description))
    return error_response(status, message, headers=headers)


def _database_down(exc: Exception) -> Response:
    log.error("database unavailable: %s", type(exc).__name__)
    return error_response(503, "A dependency is unavailable: database", component="database")


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    sqlstate = _rollback_sqlstate(exc)
    if sqlstate is not None:
        # A deadlock victim or a serialization failure: the database is up, and a concurrent
        # write won. The lock order (app.gateway.tenancy) keeps this from happening; should a
        # path still break it, the loser gets the losers' answer and the log says what it was.
        log.warning("transaction rolled back by the database (SQLSTATE %s): a concurrent write "
                    "won", sqlstate)
        return error_response(409, "A concurrent change won; retry")
    if _is_connection_error(exc):
        return _database_down(exc)
    log.exception("unhandled error")
    return error_response(500, DEFAULT_MESSAGES[500])


def _rollback_sqlstate(exc: Exception) -> str | None:
    """The SQLSTATE of a transaction the database rolled back (class 40: serialization failure,
    deadlock detected), else ``None``."""
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    return sqlstate if sqlstate.startswith("40") else None


def _is_connection_error(exc: Exception) -> bool:
    if isinstance(exc, PoolTimeout | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _undecryptable(_exc: FieldDecryptionError) -> Response:
    # app.crypto.fields logged which row and column; the answer names neither, nor the value.
    return error_response(500, "A stored value could not be decrypted")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(FieldDecryptionError, _undecryptable)
    app.register_error_handler(Exception, _unexpected)


def secret_store_unavailable(exc: SecretStoreError) -> Response:
    """A request that needed a secret the store could not give (backend down, secret missing or
    refused to our credentials): 503 naming the component. The log (the secret store's logger)
    says which names, the response does not."""
    logging.getLogger("app.secrets").error("%s", exc)
    return error_response(503, "A dependency is unavailable: secrets", component="secrets")
