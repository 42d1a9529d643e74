"""Reading a JSON body safely: media type, strict UTF-8, size (MAX_CONTENT_LENGTH), depth, finite
numbers, and strings that can be stored and served again.

``json.loads`` recurses on nesting and raises ``RecursionError`` deep down; the depth is therefore
measured on the raw text before parsing, in one linear pass.

Strict UTF-8 keeps invalid bytes out, but JSON escapes can still spell a lone surrogate
(``"\\ud800"``) or NUL (``"\\u0000"``): neither can be encoded as UTF-8 or stored in a PostgreSQL
text column, so a row holding one would fail every later read. ``refuse_unstorable`` refuses them
in every string of the parsed body, keys and free-form objects included, and the contract applies
the same test to every query parameter and declared header (app.gateway.contracts).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from flask import current_app, request

from app.gateway.errors import BadRequest, UnsupportedMediaType, ValidationError

# A lone surrogate or NUL; a valid surrogate pair in the JSON text is one code point once parsed.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_UNSTORABLE_MESSAGE = "must be valid Unicode without NUL characters"
_SHOWN_NAME = 64  # a field name shown in the error, at most this long


def _depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _number(text: str) -> int | float:
    # JSON Schema counts 5000.0 as an integer: integral numbers become ints, so that strict int
    # fields accept every value the OpenAPI document calls valid (strict floats accept ints).
    value = float(text)
    if not math.isfinite(value):  # 1e400: no JSON column or serializer can hold infinity
        raise ValueError("number out of range")
    return int(value) if value.is_integer() else value


def _constant(name: str) -> Any:
    # NaN, Infinity and -Infinity are Python's extensions, not JSON.
    raise ValueError(f"{name} is not JSON")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds NUL or a lone surrogate."""
    return _UNSTORABLE.search(text) is not None


def _shown(name: str) -> str:
    return name[:_SHOWN_NAME] if not unstorable(name) else "(name)"


def _first_unstorable(value: Any) -> list[str] | None:
    """The path to the first string (key or value) holding NUL or a lone surrogate, else None.

    Iterative: the depth is already bounded (MAX_JSON_DEPTH), but a walk without recursion needs
    no such assumption."""
    pending: list[tuple[Any, list[str]]] = [(value, [])]
    while pending:
        current, path = pending.pop()
        if isinstance(current, str):
            if unstorable(current):
                return path
        elif isinstance(current, dict):
            for key, item in current.items():
                if unstorable(key):
                    return [*path, "(name)"]
                pending.append((item, [*path, key]))
        elif isinstance(current, list):
            pending.extend((item, [*path, str(index)]) for index, item in enumerate(current))
    return None


def refuse_unstorable(value: Any, where: str = "(body)") -> None:
    """400 ValidationError naming the field when any string in ``value`` (a parsed JSON document,
    its keys included) holds NUL or a lone surrogate."""
    path = _first_unstorable(value)
    if path is not None:
        field = ".".join(_shown(p) for p in path) or where
        raise ValidationError(
            "Request failed validation",
            details=[{"field": field, "message": _UNSTORABLE_MESSAGE}],
        )


def refuse_unstorable_pairs(pairs: Iterable[tuple[str, str]], where: str) -> None:
    """The same refusal for name/value pairs (query parameters, headers); ``where`` names a
    field whose own name cannot be shown."""
    for name, value in pairs:
        if unstorable(name) or unstorable(value):
            field = where if unstorable(name) else _shown(name)
            raise ValidationError(
                "Request failed validation",
                details=[{"field": field, "message": _UNSTORABLE_MESSAGE}],
            )


def read_json_body(*, required: bool = True) -> Any:
    """The request's JSON body; ``None`` when empty and not required."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw:
        if required:
            raise BadRequest("A JSON body is required")
        return None
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Body is not valid UTF-8") from None
    limit = current_app.config["MAX_JSON_DEPTH"]
    if text.count("[") + text.count("{") > limit:  # cheap test first: most bodies are small
        if _depth_exceeds(text, limit):
            raise BadRequest("JSON nested too deeply")
    try:
        parsed = json.loads(text, parse_float=_number, parse_constant=_constant)
    except (ValueError, RecursionError):
        raise BadRequest("Malformed JSON") from None
    if "\\u" in text:  # NUL and lone surrogates can only arrive escaped: strict UTF-8 and JSON
        refuse_unstorable(parsed)  # (raw control characters are malformed) keep them out otherwise
    return parsed
