"""The rules every parsed JSON body (and ``meta_data`` sent inside a form) must keep, as
one pure check (no I/O): what would otherwise fail later as a 5xx (a database that cannot
store it, a response encoder that cannot write it, a recursive walk that overflows) is
named up front, with the field and the rule (docs/reliability.md, "Server limits").

- nesting: at most ``MAX_DEPTH`` levels of objects and arrays, counted from the body;
- numbers: finite (``1e999`` parses as infinity), integers within signed 64 bits,
  except under a field kept verbatim as JSON text (``meta_data``: its integers are kept
  exactly, up to the parser's 4,300 digits; tests/server/test_server_images.py);
- text: valid Unicode (no lone surrogate such as ``"\\ud800"``) and no NUL character
  (PostgreSQL text cannot hold one), in keys and values;
- ``meta_data``: its JSON text at most ``MAX_META_BYTES``.

``first_violation(body)`` walks iteratively (a stack, never recursion), so any depth the
parser accepted is checked without overflowing; it returns the first rule broken, as a
``Violation``, or None.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64
MAX_META_BYTES = 1024 * 1024
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

NUL_MESSAGE = "Null characters are not allowed."
DEPTH_MESSAGE = f"Nested deeper than {MAX_DEPTH} levels of objects and arrays (too deep)."


@dataclass(frozen=True)
class Violation:
    """``path``: the keys and indexes from the body down to the value (``path[0]`` is the
    field); ``message``: the rule broken, in words."""

    path: tuple[str | int, ...]
    message: str

    @property
    def field(self) -> str:
        return str(self.path[0]) if self.path else "non_field_errors"

    @property
    def text(self) -> str:
        """The message, with where inside the field it applies."""
        inner = ".".join(str(p) for p in self.path[1:])
        return f"{self.message} (at {inner})" if inner else self.message


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"Text must be valid Unicode: a lone surrogate (U+{code:04X}) is not a character."
    return None


# Top-level fields stored and served as their JSON text: any integer fits.
VERBATIM_FIELDS = frozenset({"meta_data"})


def _scalar_problem(value: Any, verbatim: bool) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if verbatim:
            return None
        if not INT_MIN <= value <= INT_MAX:
            return f"Integers must be 64-bit ({INT_MIN} to {INT_MAX})."
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite (no NaN, Infinity or values beyond 1.8e308)."
    return None


def first_violation(body: Any, max_depth: int = MAX_DEPTH) -> Violation | None:
    """The first rule ``body`` (parsed JSON) breaks, or None."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= max_depth:
                return Violation(path[:1], DEPTH_MESSAGE)
            items = list(value.items() if isinstance(value, dict) else enumerate(value))
            for key, item in reversed(items):  # (popped in the body's order)
                if isinstance(key, str):
                    problem = _text_problem(key)
                    if problem is not None:
                        return Violation((*path, _printable(key)), problem)
                stack.append(((*path, key), item))
            continue
        problem = _scalar_problem(value, bool(path) and path[0] in VERBATIM_FIELDS)
        if problem is not None:
            return Violation(tuple(_printable(p) for p in path), problem)
    return None


# A JSON string, or one structural character (what the depth scan needs to see).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]')


def too_deep(text: str | bytes, max_depth: int = MAX_DEPTH) -> Violation | None:
    """For a body the parser could not take (nested past its own recursion limit): the
    top-level field where nesting passes ``max_depth``, found by scanning the text
    (strings skipped by a regular expression, no recursion)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = 0
    key: str | None = None
    last_string: str | None = None
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                return Violation((key,) if key is not None else (), DEPTH_MESSAGE)
        elif token in "]}":
            depth -= 1
        elif token == ":":
            if depth == 1 and last_string is not None:
                key = _decoded(last_string)
        else:
            last_string = token
    return None


def _decoded(token: str) -> str:
    try:
        return str(_printable(json.loads(token)))
    except ValueError:
        return token.strip('"')


def _printable(part: str | int) -> str | int:
    """A key as it can be shown (and encoded) in an answer."""
    if isinstance(part, int):
        return part
    return part.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def meta_size_violation(field: str, text: str) -> Violation | None:
    """``meta_data`` whose JSON text is over ``MAX_META_BYTES``."""
    if len(text) > MAX_META_BYTES // 4 and len(text.encode("utf-8")) > MAX_META_BYTES:
        return Violation((field,), "Must be at most 1 MiB of JSON text.")
    return None
