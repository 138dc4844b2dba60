"""Validation messages in the words of the hosted service's framework (Django REST
framework), so that a client written against it reads the same text here (docs/api.md,
"Errors").

Contract: ``drf_message(error)`` takes one pydantic error (a dict of ``type``, ``msg``,
``input``, ``ctx``) and answers DRF's message for the same mistake; an error DRF has no
wording for keeps pydantic's message. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

_TYPE_NAMES = {dict: "dict", list: "list", str: "str", int: "int", float: "float", bool: "bool"}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _length_message(kind: str, ctx: dict[str, Any]) -> str | None:
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        if least == 1:
            return "This field may not be blank."
        return f"Ensure this field has at least {least} characters."
    if kind == "string_too_long":
        return f"Ensure this field has no more than {ctx.get('max_length')} characters."
    if kind == "too_long":
        return f"Ensure this field has no more than {ctx.get('max_length')} elements."
    return None


_TYPE_MESSAGES = {
    "bool_parsing": "Must be a valid boolean.",
    "bool_type": "Must be a valid boolean.",
    "int_parsing": "A valid integer is required.",
    "int_type": "A valid integer is required.",
    "int_from_float": "A valid integer is required.",
    "float_parsing": "A valid number is required.",
    "float_type": "A valid number is required.",
    "finite_number": "A valid number is required.",
    "string_type": "Not a valid string.",
}


def drf_message(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This field is required."
    if value is None and (kind.endswith("_type") or kind.endswith("_parsing")):
        return "This field may not be null."
    by_length = _length_message(kind, ctx)
    if by_length is not None:
        return by_length
    if kind in ("literal_error", "enum"):
        return f'"{value}" is not a valid choice.'
    if kind == "dict_type":
        return f'Expected a dictionary of items but got type "{_type_name(value)}".'
    if kind == "list_type":
        return f'Expected a list of items but got type "{_type_name(value)}".'
    if kind in ("greater_than_equal", "greater_than"):
        return f"Ensure this value is greater than or equal to {ctx.get('ge', ctx.get('gt'))}."
    if kind in ("less_than_equal", "less_than"):
        return f"Ensure this value is less than or equal to {ctx.get('le', ctx.get('lt'))}."
    return _TYPE_MESSAGES.get(kind, str(error.get("msg", "Invalid value.")))
