"""The evaluation page of a task (``/web/w/{workspace}/tasks/{task}/evaluation``): a
trained version's figures on its test images, as the worker stored them (per-label
precision, recall and F1, or MAE/RMSE/R² for regression; the confusion matrix as a heat
map); the test images it gets wrong now (a multi_class image's label, a multi_label
image's set of tags) or predicted against actual values; and "Try it": an image
classified by that version through the code of the API's ``classify/``
(``MLService.classify_model`` and ``ml.classify.predict``). The shell of
web/evalview.py's decisions; the workspace and task checks are web/training.py's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from ..context import get_ctx
from ..data import images
from ..data.websessions import SessionUser
from ..decodebudget import DecodeBusy, busy_error
from ..errors import APIError
from ..ml.classify import RecordError, predict
from ..ml.features import BackendUnavailable
from ..ml.heads import MULTI_LABEL
from ..ml.train import outcomes_on_test_split, tag_scores_on_test_split, values_on_test_split
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


GALLERY_MAX = 48  # images shown of a cell or of the mistakes
MEDIA = "/media/"  # api/media.py: the stored images and their thumbnails


def _cell(request: Request, ids: tuple[str, ...]) -> tuple[str, str] | None:
    """The matrix cell ``?true=ID&predicted=ID`` names, if both are the matrix's labels."""
    truth, predicted = request.query_params.get("true"), request.query_params.get("predicted")
    return (truth, predicted) if truth in ids and predicted in ids else None  # type: ignore[return-value]


def _gallery(
    request: Request, task: dict[str, Any], version: int, view: evalview.EvalView
) -> dict[str, Any]:
    """The test images of the chosen cell, or the misclassified ones (multi_label: those
    whose tags the version gets wrong), as this version predicts them now (ml/train.py
    ``outcomes_on_test_split``, ``tag_scores_on_test_split``), with their thumbnails."""
    ctx = get_ctx(request)
    try:
        model = ctx.ml.classify_model(ctx.db, task["workspace"], task["id"], version)
        backend = ctx.ml.backends.get(model.backend)
    except (APIError, BackendUnavailable) as exc:
        note = api_message(exc) if isinstance(exc, APIError) else str(exc)
        return {
            "shots": [],
            "cell": None,
            "gallery_note": f"The test images cannot be shown: {note}",
        }
    names = {lid: info.shown for lid, info in model.labels.items()}
    head, where = model.head, (ctx.db, backend, ctx.blobs, task["id"])
    cell = None
    if head.task_type == MULTI_LABEL:
        scored = tag_scores_on_test_split(*where, head)
        found = evalview.tag_mistakes(scored, head.label_ids, names)
    else:
        cell = _cell(request, view.matrix_ids)
        found = evalview.shots(evalview.picked(outcomes_on_test_split(*where, head), cell), names)
    shown = found[:GALLERY_MAX]
    thumbs = {}
    for shot in shown:
        image = images.get_image(ctx.db, task["workspace"], shot.image_id, MEDIA)
        thumbs[shot.image_id] = image["thumb_img_path"] if image else ""
    return {
        "shots": shown,
        "thumbs": thumbs,
        "cell": (names.get(cell[0], cell[0]), names.get(cell[1], cell[1])) if cell else None,
        "gallery_total": len(found),
        "gallery_note": "",
    }


def _plots(request: Request, task: dict[str, Any], version: int) -> dict[str, Any]:
    """Predicted against actual values of the test images now, a plot per value label."""
    ctx = get_ctx(request)
    try:
        model = ctx.ml.classify_model(ctx.db, task["workspace"], task["id"], version)
        backend = ctx.ml.backends.get(model.backend)
    except (APIError, BackendUnavailable) as exc:
        note = api_message(exc) if isinstance(exc, APIError) else str(exc)
        return {"gallery_note": f"The test images cannot be shown: {note}"}
    found = values_on_test_split(ctx.db, backend, ctx.blobs, task["id"], model.head)
    plots = []
    for lid in model.head.label_ids:
        drawn = evalview.plot([(a, p) for label, a, p in found if label == lid])
        if drawn is not None:
            info = model.labels.get(lid)
            plots.append((info.shown if info else lid, drawn))
    return {"plots": plots}


def _values(
    request: Request, user: SessionUser, ws: str, tid: str, raw_version: str | None
) -> dict[str, Any]:
    task = task_of(request, user, ws, tid)
    versions = versions_of(request, task)
    trained = evalview.trained_choices(versions)
    version = _chosen(raw_version, trained, task["production_version"])
    metrics = next((m["metrics"] for m in versions if m["version"] == version), {})
    view = evalview.evaluation(metrics, task["type"]) if version is not None else None
    gallery: dict[str, Any] = {"shots": [], "cell": None, "gallery_note": "", "thumbs": {}}
    if view is not None and task["type"] in ("multi_class", "multi_label"):
        gallery = _gallery(request, task, version, view)  # type: ignore[arg-type]
    if view is not None and task["type"] == "regression":
        gallery = {**gallery, **_plots(request, task, version)}  # type: ignore[arg-type]
    return {
        "plots": [],
        **gallery,
        "task": task,
        "url": EVALUATION.format(workspace_id=task["workspace"], task_id=task["id"]),
        "training_url": training_url(task["workspace"], task["id"]),
        "trained": trained,
        "version": version,
        "view": view,
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
    try:
        return predict(ctx.ml.backends, model, [data], ctx.decode_budget.reserve)[0]
    except DecodeBusy as exc:
        raise busy_error(exc) from exc


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
