"""``recognition/v2/training-image/``: uploads, listing with filters, labelling."""

from __future__ import annotations

import math
import re
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams, UploadFile
from starlette.responses import Response

from .. import uploads
from ..bodies import (
    body_doc,
    check_uuid,
    json_object_field,
    parse,
    read_body,
    uuid_list,
)
from ..context import Principal, ServerContext, get_ctx
from ..data import imagebulk, imagelist, images
from ..data.imagelist import ImageQuery
from ..errors import APIError, bad_request, field_error, not_found
from ..pagination import (
    AFTER_QUERY,
    PAGE_QUERY,
    PAGE_SIZE_QUERY,
    After,
    decode_after,
    keyset_page_body,
    page_body,
    page_request,
)
from ..schemas import (
    BulkImageUpdate,
    Count,
    ImageLabelRef,
    ImageOut,
    ImageUpdate,
    ImageUpload,
    ImageUploadForm,
    LabelRef,
    Page,
    UploadFields,
)
from .auth import authenticate
from .common import body_workspace, delete_by_id, media_base, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["training images"])

_VALUE_FILTER = re.compile(r"^label_value_(.+)__(gte|lte)$")


# ---- listing -----------------------------------------------------------------------------


def _image_query(request: Request, test: bool | None, real: bool | None) -> ImageQuery:
    """The listing's filters from the query string (400 naming a malformed one)."""
    q = request.query_params
    labels = uuid_list("labels", q.getlist("labels")) + uuid_list("label", q.getlist("label"))
    not_labels = uuid_list("not_labels", q.getlist("not_labels"))
    values: list[tuple[str, str, float]] = []
    for key, raw in q.multi_items():
        match = _VALUE_FILTER.match(key)
        if not match:
            continue
        label_id = check_uuid(key, match.group(1))
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise field_error(key, f"A valid number is required, got {raw!r}.")
        values.append((label_id, ">=" if match.group(2) == "gte" else "<=", number))
    verified = q.get("verified")
    if verified is not None and not (
        verified.isascii() and verified.isdigit() and len(verified) <= 9
    ):
        raise field_error("verified", "A valid integer is required.")
    return ImageQuery(
        labels, not_labels, values, test, real, verified=None if verified is None else int(verified)
    )


def _listing(
    request: Request,
    principal: Principal,
    workspace: str | None,
    test: bool | None,
    real: bool | None,
) -> Response:
    """A page of the listing (in a worker thread): the route's work once its query
    parameters are checked (by FastAPI, or by ``list_images_fast``)."""
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    query = _image_query(request, test, real)
    filters = imagelist.filters_key(ws, query)
    raw_after = request.query_params.get("after")
    after = None if raw_after is None else decode_after(raw_after, filters)
    page = imagelist.image_page(ctx.db, ws, query, pr, media_base(request), after)
    if not page.keyset:
        return ok(page_body(request, pr, page.count, page.results))
    following = None
    if page.next_key is not None:
        following = After(*page.next_key, count=page.count, filters=filters)
    return ok(keyset_page_body(request, pr, page.count, page.results, following))


@router.get("/training-image/", response_model=Page[ImageOut])
def list_images(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    labels: list[str] | None = Query(
        None, description="Images with any of these labels (repeat or comma-separate)."
    ),
    label: list[str] | None = Query(None, description="Same as labels."),
    not_labels: list[str] | None = Query(None, description="Images with none of these labels."),
    test: bool | None = Query(None, description="Only test (true) or training (false) images."),
    real: bool | None = Query(None),
    verified: int | None = Query(
        None, ge=0, le=999_999_999, description="Only images with exactly this many verifications."
    ),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
    after: str | None = AFTER_QUERY,
) -> Response:
    """Also ``label_value_<label id>__gte`` / ``__lte`` = number: images whose value for
    that label is within the bound. A filtered listing's ``next`` link carries a cursor
    (``after``): the next page starts after this one's last image, at the cost of the
    first page at any depth, and answers the first page's count."""
    return _listing(request, principal, workspace, test, real)


# The query parameters FastAPI would validate, in the forms the fast path reads exactly as
# FastAPI does (pydantic takes these booleans in any case); anything else goes to FastAPI.
_PLAIN_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _plain_listing_flags(q: QueryParams) -> tuple[bool | None, bool | None] | None:
    """``test`` and ``real`` if every validated parameter is in a plain form, else None."""
    for key, value in q.multi_items():
        if key in ("page", "page_size", "verified"):
            if not (value.isascii() and value.isdigit() and len(value) <= 9 and int(value) > 0):
                return None
        elif key in ("test", "real") and value.lower() not in _PLAIN_BOOLS:
            return None
    test, real = q.get("test"), q.get("real")
    return (
        None if test is None else _PLAIN_BOOLS[test.lower()],
        None if real is None else _PLAIN_BOOLS[real.lower()],
    )


async def list_images_fast(request: Request) -> Response | None:
    """``list_images`` for the middleware's fast path (no dependency solving: about a
    millisecond a page). A query it cannot read exactly as FastAPI does (None) goes the
    normal way, which answers its validation errors."""
    flags = _plain_listing_flags(request.query_params)
    if flags is None:
        return None
    principal = await authenticate(request, request.headers.get("authorization"))
    workspace = request.query_params.get("workspace")
    return await run_in_threadpool(_listing, request, principal, workspace, *flags)


@router.post(
    "/training-image/",
    status_code=201,
    response_model=ImageOut,
    openapi_extra=body_doc(ImageUpload, multipart_model=ImageUploadForm),
)
async def upload_image(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """JSON ``{"base64": ...}`` or multipart with the file in ``img_path``."""
    ctx = get_ctx(request)
    data, _ = await read_body(request, UploadFields)
    file = data.pop("img_path", None)
    payload: str | bytes
    if isinstance(file, UploadFile):
        payload, field = await file.read(), "img_path"
    elif file is not None:
        raise field_error("img_path", "Must be a file (multipart/form-data).")
    else:
        b64 = data.pop("base64", None)
        if b64 is None or b64 == "":
            raise field_error(
                "base64",
                "This field is required (or send the file as the multipart field img_path).",
            )
        if not isinstance(b64, str):
            raise field_error("base64", "Must be a string of base64 (or a data URI).")
        payload, field = b64, "base64"
    data["meta_data"] = json_object_field("meta_data", data.get("meta_data"))
    fields = parse(UploadFields, data)
    args = (
        ctx,
        principal,
        body_workspace(request, data),
        payload,
        field,
        fields,
        media_base(request),
    )
    return ok(await uploads.store_upload_async(*args), 201)


async def upload_image_fast(request: Request) -> Response:
    """``upload_image`` for the middleware's fast path (same code, header read directly)."""
    principal = await authenticate(request, request.headers.get("authorization"))
    return await upload_image(request, principal)


# ---- one image -----------------------------------------------------------------------------


def _image_or_404(ctx: ServerContext, ws: str, image_id: str, base: str) -> dict[str, Any]:
    found = images.get_image(ctx.db, ws, image_id, base)
    if found is None:
        raise not_found("Image not found.")
    return found


@router.get("/training-image/{image_id}/", response_model=ImageOut)
def get_image(
    request: Request,
    image_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace_of(principal, workspace, "image", image_id)
    return ok(_image_or_404(ctx, ws, path_id(image_id, "Image"), media_base(request)))


async def _update_image_route(request: Request, image_id: str, principal: Principal) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, ImageUpdate)
    if "meta_data" in data:
        data["meta_data"] = json_object_field("meta_data", data["meta_data"])
    body = parse(ImageUpdate, data)
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "image", image_id
    )
    iid = path_id(image_id, "Image")
    changes: dict[str, Any] = {}
    if "meta_data" in body.model_fields_set:
        changes["meta_data"] = body.meta_data
    if body.test_image is not None:
        changes["test_image"] = body.test_image
    if body.real is not None:
        changes["real"] = body.real
    update = partial(images.update_image, user_id=principal.user_id)
    return ok(await run_in_threadpool(update, ctx.db, ws, iid, changes, media_base(request)))


@router.put(
    "/training-image/{image_id}/", response_model=ImageOut, openapi_extra=body_doc(ImageUpdate)
)
async def put_image(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """``meta_data`` replaces the whole object; ``test_image`` and ``real`` as given."""
    return await _update_image_route(request, image_id, principal)


@router.patch(
    "/training-image/{image_id}/", response_model=ImageOut, openapi_extra=body_doc(ImageUpdate)
)
async def patch_image(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _update_image_route(request, image_id, principal)


@router.delete("/training-image/{image_id}/", status_code=204, response_class=Response)
async def delete_image(
    request: Request,
    image_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "image",
        image_id,
        "Image",
        lambda ctx, ws, oid: images.delete_image(ctx.db, ctx.blobs, ws, oid),
    )


# ---- labels of one image --------------------------------------------------------------------


async def _label_route(
    request: Request, image_id: str, principal: Principal, *, mode: str
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, ImageLabelRef)
    body = parse(ImageLabelRef, data)
    label_id = check_uuid("label_id", body.label_id)
    if mode == "update" and "value" not in data:
        raise field_error("value", "This field is required.")
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "image", image_id
    )
    iid = path_id(image_id, "Image")
    base = media_base(request)
    by = principal.user_id
    if mode == "remove":
        unset = partial(images.unset_label, user_id=by)
        return ok(await run_in_threadpool(unset, ctx.db, ws, iid, label_id, base))
    value_given = "value" in data
    args = (ctx.db, ws, iid, label_id, body.value, value_given, base)
    return ok(await run_in_threadpool(partial(images.set_label, user_id=by), *args))


@router.post(
    "/training-image/{image_id}/add-label/",
    response_model=ImageOut,
    openapi_extra=body_doc(ImageLabelRef, form=True),
)
async def image_add_label(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """Attach a label (with ``value`` for a value label); answers the image."""
    return await _label_route(request, image_id, principal, mode="add")


@router.post(
    "/training-image/{image_id}/remove-label/",
    response_model=ImageOut,
    openapi_extra=body_doc(LabelRef, form=True),
)
async def image_remove_label(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _label_route(request, image_id, principal, mode="remove")


@router.post(
    "/training-image/{image_id}/update-value/",
    response_model=ImageOut,
    openapi_extra=body_doc(ImageLabelRef, form=True),
)
async def image_update_value(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """Set the value of a label on the image (attaching it if needed)."""
    return await _label_route(request, image_id, principal, mode="update")


@router.post(
    "/training-image/{image_id}/update-label/",
    response_model=ImageOut,
    openapi_extra=body_doc(ImageLabelRef, form=True),
)
async def image_update_label(
    request: Request, image_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """Alias of ``update-value``."""
    return await _label_route(request, image_id, principal, mode="update")


# ---- bulk update ------------------------------------------------------------------------------


def _bulk_update(
    ctx: ServerContext, ws: str, body: BulkImageUpdate, user_id: str
) -> dict[str, int]:
    ids = uuid_list("images", body.images)
    filter_labels = uuid_list("labels", body.labels)
    add = uuid_list("labels-add", body.labels_add)
    remove = uuid_list("labels-remove", body.labels_remove)
    if not ids and not filter_labels:
        raise APIError(400, {"non_field_errors": ["Give images (ids) or labels (a filter)."]})
    if body.mark_test and body.unmark_test:
        raise bad_request("mark-test and unmark-test contradict each other.")
    if body.mark_real and body.unmark_real:
        raise bad_request("mark-real and unmark-real contradict each other.")
    flags: dict[str, bool] = {}
    if body.mark_test or body.unmark_test:
        flags["test_image"] = body.mark_test
    if body.mark_real or body.unmark_real:
        flags["real"] = body.mark_real
    count = imagebulk.bulk_update(
        ctx.db,
        ws,
        images=ids,
        filter_labels=filter_labels,
        add=add,
        remove=remove,
        flags=flags,
        user_id=user_id,
    )
    return {"count": count}


@router.post(
    "/training-image/update/",
    response_model=Count,
    openapi_extra=body_doc(BulkImageUpdate),
)
async def bulk_update(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """Add/remove labels and set flags on many images: the ones listed in ``images``, or
    else every image with any of the ``labels``. Answers how many images matched."""
    ctx = get_ctx(request)
    data, _ = await read_body(request, BulkImageUpdate)
    body = parse(BulkImageUpdate, data)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    return ok(await run_in_threadpool(_bulk_update, ctx, ws, body, principal.user_id))
