"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts, styles and icon served by
this server (static/vendor/), so both work with no network; and ``/favicon.ico``."""

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

router = APIRouter(include_in_schema=False)


def _assets(request: Request) -> Assets:
    return request.app.state.assets  # type: ignore[no-any-return]


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    assets = _assets(request)
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=assets.url("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=assets.url("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=assets.url(FAVICON),
        # No badge from the public validator: it is another host.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    assets = _assets(request)
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=assets.url("vendor/redoc/redoc.standalone.js"),
        redoc_favicon_url=assets.url(FAVICON),
        with_google_fonts=False,
    )


@router.get("/favicon.ico")
async def favicon(request: Request) -> RedirectResponse:
    return RedirectResponse(_assets(request).url(FAVICON), status_code=308)
