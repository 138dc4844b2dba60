"""Rendering the web interface's pages: the Jinja2 templates (templates/), the headers
every page carries, and the answers to its two exceptions: ``WebError`` (an error page
with a status) and ``SignInRequired`` (to the sign-in page, coming back afterwards).

Pages are never cached (``no-store``: they show a user's data) and carry a Content
Security Policy that allows only this server's own scripts, styles and images: what the
offline promise needs (docs/web.md) and a second line against injected markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .security import HOME

TEMPLATES = Path(__file__).resolve().parent / "templates"
WEB_PREFIX = "/web"
SIGN_IN = "/web/sign-in"

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class WebError(Exception):
    """An error page: ``status`` and a message the user can act on."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class SignInRequired(Exception):
    """No signed-in user: to the sign-in page, then back to ``next_path``."""

    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


def page(
    request: Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    user = getattr(request.state, "web_user", None)
    context = {
        "user": user,
        "csrf_token": user.csrf_token if user is not None else "",
        "static": request.app.state.assets.url,
        "path": request.url.path,
        "active": "",
        **(values or {}),
    }
    body = _ENV.get_template(template).render(context)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", {"status": status, "message": message}, status=status)


def html_error(request: Request, status: int, message: str) -> Response | None:
    """The error page for a request to the web interface; None for any other (the API
    answers JSON). The hook errors.install_handlers takes."""
    path = request.url.path
    if path == "/" or path == WEB_PREFIX or path.startswith(WEB_PREFIX + "/"):
        return error_page(request, status, message)
    return None


def sign_in_url(next_path: str) -> str:
    return SIGN_IN if next_path == HOME else f"{SIGN_IN}?{urlencode({'next': next_path})}"


def install_handlers(app: FastAPI) -> None:
    async def _web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        response = error_page(request, exc.status, exc.message)
        response.headers.update(exc.headers)
        return response

    async def _sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = sign_in_url(exc.next_path)
        if request.headers.get("hx-request"):
            # htmx swaps answers into the page: tell it to load the sign-in page instead.
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    app.add_exception_handler(WebError, _web_error)
    app.add_exception_handler(SignInRequired, _sign_in_required)
