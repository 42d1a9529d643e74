"""Reading a JSON body safely: media type, strict UTF-8, size (MAX_CONTENT_LENGTH) and depth.

``json.loads`` recurses on nesting and raises ``RecursionError`` deep down; the depth is therefore
measured on the raw text before parsing, in one linear pass.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from app.gateway.errors import BadRequest, UnsupportedMediaType


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
    return int(value) if value.is_integer() else value


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
        return json.loads(text, parse_float=_number)
    except (ValueError, RecursionError):
        raise BadRequest("Malformed JSON") from None
