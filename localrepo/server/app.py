"""The FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .api import account, annotate, classify, health, images, labels, media, models, tasks
from .api import auth as api_auth
from .api.common import ERROR_RESPONSES
from .config import Settings
from .context import ServerContext, TokenBucketLimiter
from .data.db import Database
from .data.storage import open_storage
from .decodebudget import DecodeBudget
from .errors import crash_answer, install_handlers
from .imaging import configure_pillow
from .methods import MethodsMiddleware
from .middleware import ApiMiddleware
from .ml.classify import MLService
from .ml.features import Backends
from .requestids import RequestIds
from .web import account as web_account
from .web import assets, docs, pages, render
from .web import evaluation as web_evaluation
from .web import images as web_images
from .web import tasks as web_tasks
from .web import training as web_training

API_VERSION = "2"


def build_context(settings: Settings, db: Database | None = None) -> ServerContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = db or Database.from_settings(settings)
    database.create_all()
    blobs = open_storage(settings, database)
    limiter = (
        TokenBucketLimiter(settings.rate_limit.rate, settings.rate_limit.burst)
        if settings.rate_limit
        else None
    )
    ml = MLService(Backends(settings.feature_backend, settings.torch_threads))
    login = settings.login_rate_limit
    return ServerContext(
        settings=settings,
        db=database,
        blobs=blobs,
        limiter=limiter,
        ml=ml,
        login_limiter=TokenBucketLimiter(login.rate, login.burst),
        decode_budget=DecodeBudget(settings.decode_budget_bytes, settings.decode_wait_seconds),
    )


def create_app(settings: Settings, ctx: ServerContext | None = None) -> FastAPI:
    configure_pillow(settings.max_image_pixels)
    context = ctx or build_context(settings)
    app = FastAPI(
        title="localrepo-server",
        version=API_VERSION,
        description=(
            "A self-hosted implementation of the Recognition v2 API (tasks, labels, "
            "training images, workspaces, models, training and classification). Every "
            "route takes an optional trailing slash."
        ),
        redirect_slashes=False,
        responses=ERROR_RESPONSES,
        # Served by web/docs.py with this server's own copies of their scripts.
        docs_url=None,
        redoc_url=None,
    )
    app.router.redirect_slashes = False
    app.state.ctx = context
    install_handlers(app, html_error=render.html_error)
    render.install_handlers(app)
    for module in (tasks, labels, images, models, classify, account, annotate):
        app.include_router(module.router)
    app.include_router(media.router)
    app.include_router(health.router)
    app.state.assets = assets.Assets()
    for web_module in (
        assets,
        docs,
        pages,
        web_account,
        web_tasks,
        web_images,
        web_training,
        web_evaluation,
    ):
        app.include_router(web_module.router)
    # Inside ApiMiddleware (added after it, so wrapped by it): paths have their slash.
    app.add_middleware(
        MethodsMiddleware, routes=lambda: app.routes, authenticate=api_auth.authenticate
    )
    app.add_middleware(
        ApiMiddleware,
        max_body_bytes=settings.max_body_bytes,
        fail_every=settings.fail_every,
        latency_ms=settings.latency_ms,
        fast_routes={
            ("POST", "/recognition/v2/training-image/"): images.upload_image_fast,
            ("GET", "/recognition/v2/training-image/"): images.list_images_fast,
        },
    )

    # Outermost (added last): every answer, the middleware's own included, has its id.
    app.add_middleware(RequestIds, on_crash=crash_answer(render.html_error))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
