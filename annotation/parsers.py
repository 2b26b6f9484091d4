"""The API's JSON parser: every malformed body is a 400 that names the problem, never a 500.

DRF's own parser lets ``RecursionError`` (very deep nesting) through as a server error and
accepts numbers such as ``1e999`` (infinity), which a JSON column cannot store. This one also
refuses nesting deeper than the data ever needs and strings with NUL characters (PostgreSQL's
text and jsonb refuse them), so whatever it returns can be validated and stored.

Kept free of views and serializers: the settings name it, and DRF loads it while its own views
module is still being imported.
"""

from __future__ import annotations

import json
import math
from itertools import chain
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_problem(value: Any, max_depth: int = MAX_DEPTH) -> str:
    """Why parsed JSON is unfit to validate and store ('' when it is fine)."""
    # Iterative, so a value that parsing allowed cannot exhaust the stack here either; only
    # containers are queued, so a long flat list costs no extra memory.
    nul = "strings may not contain NUL (\\u0000) characters"
    if isinstance(value, str):
        return nul if "\x00" in value else ""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        children = chain(node.keys(), node.values()) if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, str):
                if "\x00" in child:
                    return nul
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return ""


def json_loads(text: str | bytes, encoding: str = "utf-8") -> Any:
    """Strict ``json.loads``: raises ``ValueError`` with a readable message for anything bad."""
    try:
        if isinstance(text, bytes):
            text = text.decode(encoding)
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"the body is not valid {encoding} text ({exc.reason} at byte {exc.start})"
        ) from None
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with every failure turned into a ``ParseError`` (400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            # Only text encodings: a bytes codec such as zlib_codec would inflate the body.
            "".encode(encoding)
        except (LookupError, UnicodeError):
            raise ParseError(f"unsupported charset {encoding!r}: send JSON as UTF-8") from None
        try:
            return json_loads(stream.read() if stream is not None else b"", encoding)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
