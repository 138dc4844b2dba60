"""The training page of a task (``/web/w/{workspace}/tasks/{task}/training``): the Train
button, the latest training's status (an htmx fragment polled every 2 s while it moves,
with a progress bar of what the worker last reported: ``data/training.progress_of``),
the versions, promoting one to production and rolling back. The shell of
web/trainview.py's decisions.

The same rules as the API: the Train button queues through ``queue_task_training``
(trainqueue.py, what ``POST task/{id}/train/`` runs: the same checks and messages), and
promote and roll back set the production version through ``data/tasks.update_task``
(what ``PATCH task/{id}/`` runs: only a trained version). The workspace must be the
signed-in user's and the task in it, else 404 as the API answers.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ..bodies import maybe_uuid
from ..context import get_ctx
from ..data import models, tasks, training
from ..data.websessions import SessionUser
from ..errors import APIError
from ..pagination import PageRequest
from ..trainqueue import queue_task_training
from . import trainview
from .render import WebError, page
from .scope import owned_workspace
from .session import checked_form, require_user

TRAINING = "/web/w/{workspace_id}/tasks/{task_id}/training"
NO_TASK = "There is no such task in your workspaces."
ALL_VERSIONS = PageRequest(page=1, size=100_000)  # every version of one task on one page
NOTICES = {
    "queued": "Training queued.",
    "promoted": "The production version changed: classify answers with it now.",
}

router = APIRouter(include_in_schema=False)


def training_url(workspace_id: str, task_id: str) -> str:
    return TRAINING.format(workspace_id=workspace_id, task_id=task_id)


def task_of(request: Request, user: SessionUser, workspace_id: str, task_id: str) -> dict[str, Any]:
    """The task, when the workspace is the user's and the task in it; else 404."""
    ctx = get_ctx(request)
    ws, tid = owned_workspace(ctx, user, workspace_id), maybe_uuid(task_id)
    found = None if tid is None else tasks.get_task(ctx.db, ws, tid)
    if found is None:
        raise WebError(404, NO_TASK)
    return found


def versions_of(request: Request, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's versions, their metrics parsed (the API embeds them as stored JSON)."""
    db = get_ctx(request).db
    rows = models.model_page(db, task["workspace"], ALL_VERSIONS, task=task["id"])[1]
    return [{**row, "metrics": orjson.loads(orjson.dumps(row["metrics"]))} for row in rows]


def _panel_values(request: Request, user: SessionUser, ws: str, tid: str) -> dict[str, Any]:
    task = task_of(request, user, ws, tid)
    versions = versions_of(request, task)
    production = task["production_version"]
    latest = max(versions, key=lambda m: m["version"], default=None)
    moving = latest is not None and latest["train_status"] == trainview.IN_TRAINING
    progress = training.progress_of(get_ctx(request).db, latest["id"]) if moving else None
    return {
        "task": task,
        "url": training_url(task["workspace"], task["id"]),
        "status": trainview.job_status(
            versions,
            progress.progress if progress is not None else None,
            progress.stage if progress is not None else "",
        ),
        "versions": trainview.version_rows(versions, production),
        "rollback_to": trainview.rollback_target(versions, production),
    }


async def _training_page(
    request: Request,
    user: SessionUser,
    ws: str,
    tid: str,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    values = await run_in_threadpool(_panel_values, request, user, ws, tid)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return page(
        request,
        "training.html",
        {**values, "errors": errors or {}, "notice": notice},
        status=status,
    )


def api_message(exc: APIError) -> str:
    """The API's words of a 4xx: its ``detail`` or its one field's first message."""
    for value in exc.body.values():
        return str(value[0] if isinstance(value, list) else value)
    return "The request was refused."


@router.get(TRAINING)
async def training_page(
    request: Request, workspace_id: str, task_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    return await _training_page(request, user, workspace_id, task_id)


@router.get(TRAINING + "/status")
async def training_status(
    request: Request, workspace_id: str, task_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    """The status and versions (htmx swaps it in; it polls while a training moves)."""
    values = await run_in_threadpool(_panel_values, request, user, workspace_id, task_id)
    return page(request, "training_panel.html", {**values, "errors": {}})


@router.post(TRAINING + "/train")
async def train(
    request: Request,
    workspace_id: str,
    task_id: str,
    _form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    task = await run_in_threadpool(task_of, request, user, workspace_id, task_id)
    try:
        await run_in_threadpool(
            queue_task_training, get_ctx(request), task["workspace"], task["id"]
        )
    except APIError as exc:
        errors = {"train": api_message(exc)}
        return await _training_page(
            request, user, workspace_id, task_id, errors=errors, status=exc.status
        )
    url = training_url(task["workspace"], task["id"])
    return RedirectResponse(f"{url}?done=queued", status_code=303)


async def _set_production(
    request: Request,
    user: SessionUser,
    workspace_id: str,
    task_id: str,
    version: int | None,
    field: str,
) -> Response:
    task = await run_in_threadpool(task_of, request, user, workspace_id, task_id)
    if version is None:
        raise APIError(400, {field: ["Choose a version: a whole number such as 2."]})
    db = get_ctx(request).db
    change = {"production_version": version}
    await run_in_threadpool(tasks.update_task, db, task["workspace"], task["id"], change)
    url = training_url(task["workspace"], task["id"])
    return RedirectResponse(f"{url}?done=promoted", status_code=303)


@router.post(TRAINING + "/promote")
async def promote(
    request: Request,
    workspace_id: str,
    task_id: str,
    form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    raw = form.get("version")
    text = raw.strip() if isinstance(raw, str) else ""
    version = int(text) if text.isdigit() and len(text) < 10 else None
    try:
        return await _set_production(request, user, workspace_id, task_id, version, "version")
    except APIError as exc:
        errors = {"versions": api_message(exc)}
        return await _training_page(
            request, user, workspace_id, task_id, errors=errors, status=exc.status
        )


@router.post(TRAINING + "/rollback")
async def rollback(
    request: Request,
    workspace_id: str,
    task_id: str,
    _form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    values = await run_in_threadpool(_panel_values, request, user, workspace_id, task_id)
    target = values["rollback_to"]
    if target is None:
        errors = {"versions": "There is no trained version older than production to roll back to."}
        return await _training_page(request, user, workspace_id, task_id, errors=errors, status=400)
    try:
        return await _set_production(request, user, workspace_id, task_id, target, "version")
    except APIError as exc:
        errors = {"versions": api_message(exc)}
        return await _training_page(
            request, user, workspace_id, task_id, errors=errors, status=exc.status
        )
