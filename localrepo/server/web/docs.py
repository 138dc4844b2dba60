"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts, styles and icon served by
this server (static/vendor/), so both work with no network; and ``/favicon.ico``.

Both pages carry a Content Security Policy that keeps the browser on this server: ReDoc
shows a logo from its makers' CDN (and hides it when it fails to load), which the
policy blocks before any request leaves the machine. Inline scripts stay allowed: the
pages FastAPI builds start the libraries with one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse, RedirectResponse

from .assets import Assets

OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
FAVICON = "vendor/swagger-ui/favicon-32x32.png"

DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; font-src 'self' data:; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
)

router = APIRouter(include_in_schema=False)


def _local_only(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


def _assets(request: Request) -> Assets:
    return request.app.state.assets  # type: ignore[no-any-return]


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    assets = _assets(request)
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=assets.url("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=assets.url("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=assets.url(FAVICON),
        # No badge from the public validator: it is another host.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _local_only(page)


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    assets = _assets(request)
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=assets.url("vendor/redoc/redoc.standalone.js"),
        redoc_favicon_url=assets.url(FAVICON),
        with_google_fonts=False,
    )
    return _local_only(page)


@router.get("/favicon.ico")
async def favicon(request: Request) -> RedirectResponse:
    return RedirectResponse(_assets(request).url(FAVICON), status_code=308)
