"""The evaluation page of a task (``/web/w/{workspace}/tasks/{task}/evaluation``): a
trained version's figures on its test images, as the worker stored them (per-label
precision, recall and F1, or MAE/RMSE/R² for regression; the confusion matrix as a heat
map), and "Try it": an image classified by that version through the code of the API's
``classify/`` (``MLService.classify_model`` and ``ml.classify.predict``). The shell of
web/evalview.py's decisions; the workspace and task checks are web/training.py's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from ..context import get_ctx
from ..data.websessions import SessionUser
from ..errors import APIError
from ..ml.classify import RecordError, predict
from . import evalview
from .render import WebError, page
from .session import checked_form, require_user
from .training import api_message, task_of, training_url, versions_of

EVALUATION = "/web/w/{workspace_id}/tasks/{task_id}/evaluation"

router = APIRouter(include_in_schema=False)


def _chosen(raw: str | None, trained: list[int], production: int | None) -> int | None:
    """The version asked for (``?version=``), else production, else the newest trained."""
    if raw:
        if not raw.isdigit() or int(raw) not in trained:
            listed = ", ".join(map(str, trained)) or "none"
            raise WebError(
                404, f"Version {raw} of this task has not trained (trained versions: {listed})."
            )
        return int(raw)
    if production in trained:
        return production
    return trained[0] if trained else None


def _values(
    request: Request, user: SessionUser, ws: str, tid: str, raw_version: str | None
) -> dict[str, Any]:
    task = task_of(request, user, ws, tid)
    versions = versions_of(request, task)
    trained = evalview.trained_choices(versions)
    version = _chosen(raw_version, trained, task["production_version"])
    metrics = next((m["metrics"] for m in versions if m["version"] == version), {})
    return {
        "task": task,
        "url": EVALUATION.format(workspace_id=task["workspace"], task_id=task["id"]),
        "training_url": training_url(task["workspace"], task["id"]),
        "trained": trained,
        "version": version,
        "view": evalview.evaluation(metrics, task["type"]) if version is not None else None,
        "guesses": [],
        "tried": "",
        "try_error": "",
    }


@router.get(EVALUATION)
async def evaluation_page(
    request: Request, workspace_id: str, task_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    raw = request.query_params.get("version")
    values = await run_in_threadpool(_values, request, user, workspace_id, task_id, raw)
    return page(request, "evaluation.html", values)


def _classify(request: Request, task: dict[str, Any], version: int, data: bytes) -> Any:
    """What classify/ answers for one image (its dict), or the RecordError."""
    ctx = get_ctx(request)
    model = ctx.ml.classify_model(ctx.db, task["workspace"], task["id"], version)
    return predict(ctx.ml.backends, model, [data])[0]


@router.post(EVALUATION + "/try")
async def try_it(
    request: Request,
    workspace_id: str,
    task_id: str,
    form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    raw = form.get("version")
    values = await run_in_threadpool(
        _values, request, user, workspace_id, task_id, raw if isinstance(raw, str) else None
    )
    upload = form.get("image")
    status = 400
    if values["version"] is None:
        values["try_error"] = "There is no trained version yet: train the task first."
    elif not isinstance(upload, UploadFile) or not upload.filename:
        values["try_error"] = "Choose an image (or drop one on the field)."
    else:
        data = await upload.read()
        values["tried"] = upload.filename
        try:
            result = await run_in_threadpool(
                _classify, request, values["task"], values["version"], data
            )
        except APIError as exc:
            values["try_error"] = api_message(exc)
        else:
            if isinstance(result, RecordError):
                values["try_error"] = f"{upload.filename}: {result.text}"
            else:
                values["guesses"] = evalview.guesses(result)
                status = 200
    if request.headers.get("hx-request"):
        status = 200  # htmx swaps only a 2xx answer in; the error shows in the result
    return page(request, "evaluation.html", values, status=status)
