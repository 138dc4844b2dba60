"""``recognition/v2/classify/``: runs in the server process. The records are fetched
or decoded, their features computed with the backend that trained the model and the
model's head applied (``ml/classify.py``); ``store_images`` stores them through the
upload pipeline."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import uploads
from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import images
from ..decodebudget import DecodeBusy, busy_error
from ..errors import field_error
from ..ml.classify import (
    ClassifyModel,
    RecordError,
    UrlPolicy,
    gather_bytes,
    labels_to_store,
    predict,
)
from ..schemas import ClassifyOut, ClassifyRequest, UploadFields
from .auth import authenticate
from .common import body_workspace, media_base, ok

router = APIRouter(prefix="/recognition/v2", tags=["models"])


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
        images.link_labels(ctx.db, ws, image_id, labels, user_id=principal.user_id)
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
    model = await run_in_threadpool(ctx.ml.classify_model, ctx.db, ws, task_id, body.version)
    settings = ctx.settings
    policy = UrlPolicy(settings.allow_private_urls, settings.url_timeout, settings.url_max_bytes)
    raw = await gather_bytes(body.records, policy)
    try:
        reserve = ctx.decode_budget.reserve
        results = await run_in_threadpool(predict, ctx.ml.backends, model, raw, reserve)
    except DecodeBusy as exc:
        raise busy_error(exc) from exc
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
