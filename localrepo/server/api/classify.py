"""``recognition/v2/classify/``: runs in the server process. Records are fetched or
decoded, their features computed with the backend that trained the model, and the
model's head applied (``ml/classify.py``); ``store_images`` stores them through the
upload pipeline."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import uploads
from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import images, models
from ..errors import bad_request, field_error
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
from ..schemas import ClassifyOut, ClassifyRequest, UploadFields
from .auth import authenticate
from .common import body_workspace, media_base, ok

router = APIRouter(prefix="/recognition/v2", tags=["models"])


def _classify_model(
    ctx: ServerContext, ws: str, task_id: str, version: int | None
) -> ClassifyModel:
    model, head, label_rows = models.classify_model(
        ctx.db, ws, task_id, version, lambda model_id: ctx.ml.head(ctx.db, model_id)
    )
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
    image_id, new = uploads.store_unless_duplicate(
        ctx, principal, ws, data, "_base64", fields, base
    )
    if new:  # (already stored: its labels are kept as they are)
        labels = labels_to_store(model.head, answer, model.negative)
        images.link_labels(ctx.db, ws, image_id, labels)
    return image_id


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
