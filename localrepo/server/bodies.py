"""Reading request bodies (JSON, urlencoded or multipart form) and query values."""

from __future__ import annotations

import json
import types
import typing
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from .drfmessages import drf_message
from .errors import APIError, BodyTooLarge, detail, field_error

M = TypeVar("M", bound=BaseModel)

# Starlette's multipart parser keeps non-file parts in memory up to this size.
MAX_FORM_FIELD_BYTES = 64 * 1024 * 1024


def _is_list_field(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    if field is None:
        for f in model.model_fields.values():
            if f.alias == name:
                field = f
                break
    if field is None:
        return False
    ann = field.annotation
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is list for a in typing.get_args(ann))
    return origin is list


def form_to_dict(form: FormData, model: type[BaseModel] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        if model is not None and _is_list_field(model, key):
            flat: list[Any] = []
            for v in values:
                if isinstance(v, str):
                    flat.extend(p for p in (s.strip() for s in v.split(",")) if p)
                else:
                    flat.append(v)
            out[key] = flat
        else:
            out[key] = values[-1]
    return out


async def read_body(
    request: Request, model: type[BaseModel] | None = None
) -> tuple[dict[str, Any], FormData | None]:
    """The body as a dict (and the raw form, whose files the caller may read)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_part_size=MAX_FORM_FIELD_BYTES)
        except (APIError, BodyTooLarge):
            raise
        except Exception as exc:
            raise detail(400, f"Malformed form body: {exc}") from exc
        return form_to_dict(form, model), form
    raw = await request.body()
    if not raw.strip():
        return {}, None
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise detail(415, f'Unsupported media type "{ctype}" in request.')
    try:
        # The stdlib parser keeps big integers exact (meta_data is kept verbatim).
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise detail(400, f"JSON parse error - {exc}") from exc
    if not isinstance(data, dict):
        raise APIError(
            400,
            {
                "non_field_errors": [
                    f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
                ]
            },
        )
    return data, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def dump_json_object(value: dict[str, Any] | None) -> str:
    """Compact JSON text of an object, as stored (and served verbatim)."""
    return json.dumps(value or {}, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = err.get("loc") or ()
        key = str(loc[0]) if loc else "non_field_errors"
        msg = drf_message(dict(err))
        if len(loc) > 1:
            msg = f"{msg} (at {'.'.join(str(p) for p in loc[1:])})"
        out.setdefault(key, []).append(msg)
    return out


def _has_null(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in str(k) or _has_null(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def refuse_nulls(data: dict[str, Any]) -> None:
    """A 400 naming the fields of a parsed body that hold a NUL character anywhere:
    PostgreSQL text and JSON cannot store one (it would fail as a 500), so every
    database refuses it, with DRF's message."""
    nulls = [str(k) for k, v in data.items() if "\x00" in str(k) or _has_null(v)]
    if nulls:
        raise APIError(
            400, {k.replace("\x00", "\\x00"): ["Null characters are not allowed."] for k in nulls}
        )


def parse(model: type[M], data: dict[str, Any]) -> M:
    refuse_nulls(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise APIError(400, dict(validation_errors(exc))) from exc


def check_uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise field_error(name, f"{value!r} is not a valid UUID.") from exc


def maybe_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def uuid_list(name: str, values: list[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        for part in raw.split(","):
            part = part.strip()
            if part:
                out.append(check_uuid(name, part))
    return out


def json_object_field(name: str, value: Any) -> dict[str, Any] | None:
    """``meta_data`` as sent in a form: a JSON object in a string."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, UploadFile):
        raise field_error(name, "Must be a JSON object, not a file.")
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = json.loads(value, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise field_error(name, f"Must be a JSON object ({exc}).") from exc
        if parsed is None or isinstance(parsed, dict):
            return parsed
    raise field_error(name, "Must be a JSON object.")


# ---- OpenAPI documentation of bodies ---------------------------------------------------


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        if "anyOf" in prop:
            non_null = [p for p in prop["anyOf"] if p.get("type") != "null"]
            merged = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            if len(non_null) == 1:
                merged.update(non_null[0])
            prop = merged
        if prop.get("type") in ("object", "array"):
            prop = {"type": "string", "description": prop.get("description", "JSON text")}
        props[name] = prop
    out = {"type": "object", "properties": props}
    if schema.get("required"):
        out["required"] = list(schema["required"])
    return out


def body_doc(
    model: type[BaseModel],
    *,
    form: bool = False,
    multipart_model: type[BaseModel] | None = None,
    required: bool = True,
) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema.pop("title", None)
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if form:
        fs = _form_schema(schema)
        content["application/x-www-form-urlencoded"] = {"schema": fs}
        content["multipart/form-data"] = {"schema": fs}
    if multipart_model is not None:
        ms = multipart_model.model_json_schema(by_alias=True)
        ms.pop("title", None)
        mp = _form_schema(ms)
        mp["properties"]["img_path"] = {"type": "string", "format": "binary"}
        content["multipart/form-data"] = {"schema": mp}
    return {"requestBody": {"required": required, "content": content}}
