"""Helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..bodies import maybe_uuid, read_body
from ..context import Principal, ServerContext, get_ctx
from ..errors import json_response, not_found

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": '{"detail": "message"} or, for validation errors, {"field": ["message"]}',
    "additionalProperties": {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _err("Bad input"),
    401: _err("Missing or invalid token"),
    404: _err("Not found (or not yours)"),
    405: _err("Method not allowed"),
    413: _err("Request body too large"),
    415: _err("Unsupported media type"),
    429: _err("Throttled; see the Retry-After header"),
    500: _err("Server error"),
    503: _err("Unavailable (injected fault)"),
}


def ok(body: Any, status: int = 200) -> Response:
    return json_response(status, body)


def no_content() -> Response:
    return Response(status_code=204)


def path_id(value: str, what: str) -> str:
    """A path id: an id that is not a UUID can only be missing."""
    canonical = maybe_uuid(value)
    if canonical is None:
        raise not_found(f"{what} not found.")
    return canonical


def media_base(request: Request) -> str:
    """``<scheme>://<host><root path>/media/`` of this request (what ``request.base_url``
    gives, without building URL objects on every upload)."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/media/"


def body_workspace(request: Request, data: dict[str, Any]) -> Any:
    """The workspace of a POST/PUT: the body's, else the query's."""
    value = data.get("workspace")
    if value is None or value == "":
        return request.query_params.get("workspace")
    return value


async def delete_by_id(
    request: Request,
    principal: Principal,
    workspace: str | None,
    kind: str,
    raw_id: str,
    what: str,
    delete: Callable[[ServerContext, str, str], object],
) -> Response:
    """A DELETE of one object (``kind``, called ``what`` in a 404): its workspace from
    the query, else from a JSON or form body (the hosted service reads either), else
    the one holding the id; then ``delete(ctx, workspace, id)`` in a worker thread."""
    ctx = get_ctx(request)
    named: Any = workspace
    if not named:
        data, _ = await read_body(request)
        named = data.get("workspace")
    object_id = path_id(raw_id, what)
    ws = await run_in_threadpool(ctx.resolve_workspace_of, principal, named, kind, object_id)
    await run_in_threadpool(delete, ctx, ws, object_id)
    return no_content()
