"""``/healthz`` and ``/readyz`` for a load balancer or an orchestrator (docs/server.md,
"Health checks"). They need no token and tell nothing about any account: ``healthz``
says the process answers; ``readyz`` says it can serve, i.e. its database answers a
query and its blob folder is writable, else 503 naming which part is not ready."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..context import get_ctx
from ..errors import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> Response:
    return json_response(200, {"status": "ok"})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    ctx = get_ctx(request)
    problem = await run_in_threadpool(ctx.db.ping)
    checks = {"database": "ok" if problem is None else f"unavailable ({problem})"}
    blobs = ctx.settings.blobs_dir
    writable = blobs.is_dir() and os.access(blobs, os.W_OK | os.X_OK)
    checks["storage"] = "ok" if writable else "not writable"
    ready = problem is None and writable
    return json_response(
        200 if ready else 503, {"status": "ready" if ready else "not ready", **checks}
    )
