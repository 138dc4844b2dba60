"""``/healthz`` and ``/readyz`` for a load balancer or an orchestrator (docs/server.md,
"Health checks"). They need no token and tell nothing about any account: ``healthz``
says the process answers; ``readyz`` says it can serve, i.e. its database answers a
query and its blob store answers (a writable folder, or a bucket that lists), else 503
naming which part is not ready."""

from __future__ import annotations

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
    storage = await run_in_threadpool(ctx.blobs.check)
    checks["storage"] = "ok" if storage is None else storage
    ready = problem is None and storage is None
    return json_response(
        200 if ready else 503, {"status": "ready" if ready else "not ready", **checks}
    )
