"""Errors: exceptions raised by the routes and the handlers that turn every failure
(including unknown routes, wrong methods and crashes) into JSON in the contract's shape:
``{"detail": "..."}`` or the DRF validation shape ``{"field": ["message"]}``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .drfmessages import drf_message

log = logging.getLogger("localrepo.server")


class APIError(Exception):
    """An answer other than success. ``body`` is the JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> APIError:
    return APIError(status, {"detail": message}, headers)


def not_found(what: str = "Not found.") -> APIError:
    return detail(404, what)


def bad_request(message: str) -> APIError:
    return detail(400, message)


def field_error(field: str, message: str) -> APIError:
    return APIError(400, {field: [message]})


def field_errors(errors: dict[str, list[str]]) -> APIError:
    return APIError(400, dict(errors))


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def too_large_body(limit: int) -> dict[str, str]:
    return {"detail": f"Request body is too large (limit {limit} bytes)."}


def _validation_body(exc: RequestValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        key = loc[0] if loc else "non_field_errors"
        out.setdefault(key, []).append(drf_message(dict(err)))
    return out or {"non_field_errors": ["Invalid request."]}


# The web interface's error page for a request it served (server/web/render.py), or None
# for the API's JSON answer: (request, status, message) -> response.
HtmlError = Callable[[Request, int, str], Response | None]


def install_handlers(app: FastAPI, html_error: HtmlError | None = None) -> None:
    def as_html(request: Request, status: int, message: str) -> Response | None:
        return html_error(request, status, message) if html_error else None

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> Response:
        return json_response(exc.status, exc.body, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> Response:
        return json_response(413, too_large_body(exc.limit), {"Connection": "close"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = "Not found."
        elif exc.status_code == 405:
            message = f'Method "{request.method}" not allowed.'
        else:
            message = str(exc.detail) if exc.detail else "Error."
        page = as_html(request, exc.status_code, message)
        if page is not None:
            return page
        return json_response(exc.status_code, {"detail": message}, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        page = as_html(request, 400, "The request was not understood.")
        return page or json_response(400, _validation_body(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        page = as_html(request, 500, "Something went wrong on the server; it has been logged.")
        return page or json_response(500, {"detail": "Internal server error."})
