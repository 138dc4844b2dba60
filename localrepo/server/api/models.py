"""``recognition/v2/model/`` and ``classify/``.

Models are the trained versions of a task (the worker trains them: ml/worker.py).
``classify/`` runs in the server process: records are fetched or decoded, their features
computed with the backend that trained the model, and the model's head applied.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from PIL import Image
from sqlalchemy import bindparam, text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import queries, training
from ..data.tables import now_iso
from ..errors import APIError, bad_request, field_error, not_found
from ..imaging import ImageRejected, decode_base64
from ..ml.classify import (
    RecordError,
    UrlPolicy,
    answer_record,
    fetch_url,
    labels_to_store,
)
from ..ml.features import BackendUnavailable, decode_rgb
from ..ml.heads import Head, LabelInfo
from ..pagination import check_page, page_body, page_request
from ..schemas import ClassifyOut, ClassifyRequest, ModelOut, Page, UploadFields
from .auth import authenticate
from .common import body_workspace, media_base, no_content, ok, path_id
from .images import _store_upload

router = APIRouter(prefix="/recognition/v2", tags=["models"])

_DUPLICATE_ID = re.compile(r"image ID '([0-9a-f-]{36})'")
_MODEL_FROM = "models m JOIN tasks t ON t.id = m.task_id"


@router.get("/model/", response_model=Page[ModelOut])
def list_models(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    task: str | None = Query(None, description="Only the models of this task."),
    page: int = Query(1, ge=1),
    page_size: int | None = Query(None, ge=1),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    cond = "t.workspace_id = :ws"
    params: dict[str, object] = {"ws": ws}
    if task:
        cond += " AND m.task_id = :task"
        params["task"] = check_uuid("task", task)
    with ctx.db.read() as session:
        conn = session.connection()
        count = conn.execute(
            text(f"SELECT count(*) FROM {_MODEL_FROM} WHERE {cond}"), params
        ).scalar_one()
        check_page(pr, count)
        rows = conn.execute(
            text(
                f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} WHERE {cond} "
                "ORDER BY m.task_id, m.version LIMIT :lim OFFSET :off"
            ),
            {**params, "lim": pr.size, "off": pr.offset},
        ).all()
    return ok(page_body(request, pr, count, [queries.model_dict(r) for r in rows]))


def _get_model(ctx: ServerContext, ws: str, model_id: str) -> dict[str, object]:
    with ctx.db.read() as session:
        row = (
            session.connection()
            .execute(
                text(
                    f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} "
                    "WHERE m.id = :id AND t.workspace_id = :ws"
                ),
                {"id": model_id, "ws": ws},
            )
            .first()
        )
    if row is None:
        raise not_found("Model not found.")
    return queries.model_dict(row)


@router.get("/model/{model_id}/", response_model=ModelOut)
def get_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    return ok(_get_model(ctx, ws, path_id(model_id, "Model")))


def _delete_model(ctx: ServerContext, ws: str, model_id: str) -> None:
    with ctx.db.write() as session:
        conn = session.connection()
        row = conn.execute(
            text(
                "SELECT m.task_id, m.version, t.production_version, m.train_status FROM models m "
                "JOIN tasks t ON t.id = m.task_id WHERE m.id = :id AND t.workspace_id = :ws"
            ),
            {"id": model_id, "ws": ws},
        ).first()
        if row is None:
            raise not_found("Model not found.")
        if row[1] == row[2]:
            raise bad_request("This model is the task's production version; it cannot be deleted.")
        if row[3] in (training.WAITING, training.IN_TRAINING):
            raise bad_request("This model is queued or training; delete it when it has finished.")
        conn.execute(
            text("UPDATE training_jobs SET model_id = NULL WHERE model_id = :id"), {"id": model_id}
        )
        conn.execute(text("DELETE FROM model_heads WHERE model_id = :id"), {"id": model_id})
        conn.execute(text("DELETE FROM models WHERE id = :id"), {"id": model_id})


@router.delete("/model/{model_id}/", status_code=204, response_class=Response)
def delete_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    _delete_model(ctx, ws, path_id(model_id, "Model"))
    return no_content()


def _classify_model(
    ctx: ServerContext, ws: str, task_id: str, version: int | None
) -> ClassifyModel:
    with ctx.db.read() as session:
        conn = session.connection()
        task = conn.execute(
            text(
                "SELECT id, type, production_version FROM tasks "
                "WHERE id = :t AND workspace_id = :ws"
            ),
            {"t": task_id, "ws": ws},
        ).first()
        if task is None:
            raise not_found("Task not found.")
        trained = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT version FROM models WHERE task_id = :t AND train_status = :s "
                    "ORDER BY version"
                ),
                {"t": task_id, "s": training.TRAINED},
            )
        ]
        wanted = version if version is not None else task[2]
        if wanted is None:
            raise bad_request(
                f"The task has no trained model yet: train it first (POST task/{task_id}/train/)."
            )
        model = conn.execute(
            text(
                "SELECT id, version, backend FROM models "
                "WHERE task_id = :t AND version = :v AND train_status = :s"
            ),
            {"t": task_id, "v": wanted, "s": training.TRAINED},
        ).first()
        if model is None:
            listed = ", ".join(str(v) for v in trained) or "none"
            raise field_error(
                "version",
                f"Version {wanted} of this task does not exist or is not trained "
                f"(trained versions: {listed}).",
            )
        head = ctx.ml.head(ctx.db, model[0])
        if head is None:
            raise bad_request(f"Version {wanted} of this task has no stored model; train it again.")
        # The model's labels (even if detached from the task since) and the negative one.
        label_rows = conn.execute(
            text(
                "SELECT l.id, l.name, l.output_name, l.negative_for_task FROM labels l "
                "WHERE l.workspace_id = :ws AND (l.negative_for_task = :t OR l.id IN :ids)"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ws": ws, "t": task_id, "ids": head.label_ids or [""]},
        ).all()
    labels = {r[0]: LabelInfo(r[0], r[1], r[2], r[3] == task_id) for r in label_rows}
    negative = next((lid for lid, info in labels.items() if info.negative), None)
    return ClassifyModel(task_id, model[1], model[2] or head.backend, head, labels, negative)


def _record_bytes(record: dict[str, Any]) -> bytes:
    payload = record.get("_base64")
    if not isinstance(payload, str) or not payload:
        raise RecordError(400, "_base64: must be a non-empty string of base64 (or a data URI)")
    try:
        return decode_base64(payload)
    except ImageRejected as exc:
        raise RecordError(400, f"_base64: {exc}") from exc


async def _gather_bytes(
    ctx: ServerContext, records: list[dict[str, Any]]
) -> list[bytes | RecordError]:
    settings = ctx.settings
    policy = UrlPolicy(settings.allow_private_urls, settings.url_timeout, settings.url_max_bytes)
    out: list[bytes | RecordError] = []
    urls: dict[int, str] = {}
    for k, record in enumerate(records):
        out.append(RecordError(400, "record: give _base64 (an image) or _url"))
        try:
            if "_base64" in record:
                out[k] = _record_bytes(record)
            elif "_url" in record:
                url = record["_url"]
                if not isinstance(url, str) or not url.strip():
                    raise RecordError(400, "_url: must be a non-empty string")
                urls[k] = url.strip()
        except RecordError as exc:
            out[k] = exc
    if urls:
        timeout = httpx.Timeout(policy.timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as c:
            fetched = await asyncio.gather(
                *(fetch_url(c, url, policy) for url in urls.values()), return_exceptions=True
            )
        for k, got in zip(urls, fetched, strict=True):
            if isinstance(got, RecordError | bytes):
                out[k] = got
            else:
                out[k] = RecordError(502, f"_url: cannot fetch ({type(got).__name__})")
    return out


def _decode(data: bytes) -> Image.Image:
    try:
        return decode_rgb(data, draft=448)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RecordError(400, f"the image is too large to decode safely ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise RecordError(400, "the data is not an image Pillow can identify") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RecordError(400, f"the image does not decode ({exc})") from exc


def _predict(
    ctx: ServerContext, model: ClassifyModel, raw: list[bytes | RecordError]
) -> list[dict[str, Any] | RecordError]:
    """Per record: its answer (labels, size) or its error."""
    results: list[dict[str, Any] | RecordError] = []
    images: list[Image.Image] = []
    slots: list[int] = []
    for item in raw:
        if isinstance(item, RecordError):
            results.append(item)
            continue
        try:
            im = _decode(item)
        except RecordError as exc:
            results.append(exc)
            continue
        slots.append(len(results))
        results.append({"_width": im.width, "_height": im.height})
        images.append(im)
    if images:
        try:
            backend = ctx.ml.backends.get(model.backend)
        except BackendUnavailable as exc:
            raise bad_request(
                f"Version {model.version} of this task was trained with the "
                f"'{model.backend}' features, which this server cannot compute: {exc}."
            ) from exc
        outputs = model.head.predict(backend.embed(images))
        for slot, row in zip(slots, outputs, strict=True):
            entry = results[slot]
            assert isinstance(entry, dict)
            entry.update(answer_record(model.head, model.labels, row))
    return results


def _store_classified(
    ctx: ServerContext,
    principal: Principal,
    ws: str,
    model: ClassifyModel,
    data: bytes,
    answer: dict[str, Any],
    base: str,
) -> str:
    fields = UploadFields(
        meta_data={"classified": {"task": model.task_id, "version": model.version}}
    )
    try:
        stored = _store_upload(ctx, principal, ws, data, "_base64", fields, base)
    except APIError as exc:
        found = _DUPLICATE_ID.search(str(exc.body.get("detail", "")))
        if found is None:
            raise
        return found.group(1)  # already stored: keep its labels as they are
    now = now_iso()
    with ctx.db.write_conn() as conn:
        for label_id, value in labels_to_store(model.head, answer, model.negative):
            exists = conn.execute(
                text("SELECT 1 FROM labels WHERE id = :l AND workspace_id = :ws"),
                {"l": label_id, "ws": ws},
            ).first()
            if exists is None:
                continue  # deleted since the training
            conn.execute(
                text(
                    "INSERT INTO image_labels (image_id, label_id, value, created) "
                    "VALUES (:i, :l, :v, :c)"
                ),
                {"i": stored["id"], "l": label_id, "v": value, "c": now},
            )
    return str(stored["id"])


@router.post("/classify/", response_model=ClassifyOut, openapi_extra=body_doc(ClassifyRequest))
async def classify(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """Classify up to ``--classify-max-records`` records (``_base64`` or ``_url``) with
    the task's production version (or ``version``). A record that cannot be classified
    gets its own ``_status`` and no labels; the others are still answered."""
    started = time.perf_counter()
    ctx = get_ctx(request)
    data, _ = await read_body(request, ClassifyRequest)
    body = parse(ClassifyRequest, data)
    task_ref = body.task_id or body.task
    if not task_ref:
        raise field_error("task_id", "This field is required (the task's id; or 'task').")
    task_id = check_uuid("task_id" if body.task_id else "task", task_ref)
    limit = ctx.settings.classify_max_records
    if not body.records:
        raise field_error(
            "records", f"Give 1 to {limit} records ({{'_base64': ...}} or {{'_url': ...}})."
        )
    if len(body.records) > limit:
        raise field_error(
            "records", f"At most {limit} records per request; got {len(body.records)}."
        )
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    model = await run_in_threadpool(_classify_model, ctx, ws, task_id, body.version)
    raw = await _gather_bytes(ctx, body.records)
    results = await run_in_threadpool(_predict, ctx, model, raw)
    base = media_base(request)
    records = []
    for record, item, result in zip(body.records, raw, results, strict=True):
        out = {k: v for k, v in record.items() if k != "_base64"}
        if isinstance(result, RecordError):
            out["_status"] = {"code": result.code, "text": result.text}
        else:
            out.update(result)
            out["_status"] = {"code": 200, "text": "OK"}
            if body.store_images:
                assert isinstance(item, bytes)
                out["_stored_image_id"] = await run_in_threadpool(
                    _store_classified, ctx, principal, ws, model, item, result, base
                )
        records.append(out)
    return ok(
        {
            "task_id": task_id,
            "version": model.version,
            "model_format": f"localrepo/{model.backend}/{model.head.task_type}",
            "status": {"code": 200, "text": "OK", "request_id": str(uuid.uuid4())},
            "statistics": {"processing time": round(time.perf_counter() - started, 4)},
            "records": records,
        }
    )


@dataclass(frozen=True)
class ClassifyModel:
    task_id: str
    version: int
    backend: str
    head: Head
    labels: dict[str, LabelInfo]
    negative: str | None
