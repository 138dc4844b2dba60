"""``recognition/v2/training-image/``: uploads, listing with filters, labelling."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import bindparam, text
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams, UploadFile
from starlette.responses import Response

from ..bodies import (
    body_doc,
    check_uuid,
    dump_json_object,
    json_object_field,
    parse,
    read_body,
    uuid_list,
)
from ..context import Principal, ServerContext, get_ctx
from ..data import imagedocs, queries
from ..data.db import INTEGRITY_ERRORS, fetch_all
from ..data.storage import PendingBlob
from ..data.tables import Image, ImageLabel, Label, now_iso
from ..errors import APIError, bad_request, field_error, log, not_found
from ..imaging import ImageRejected, OverBudget, StoredImage, decode_base64, prepare
from ..pagination import check_page, page_body, page_request
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
from .common import body_workspace, media_base, no_content, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["training images"])

_VALUE_FILTER = re.compile(r"^label_value_(.+)__(gte|lte)$")
_CHUNK = 500


def duplicate_error(image_id: str) -> APIError:
    # Keep this wording: the official SDK extracts the id after "image ID" with a regex.
    return APIError(
        400, {"detail": f"Image already exists in workspace with image ID '{image_id}'."}
    )


# ---- listing -----------------------------------------------------------------------------


def _in_list(name: str, values: list[str], params: dict[str, Any]) -> str:
    """``(:name0, :name1, ...)`` with the values bound (plain named parameters work with
    every driver and need no statement rewriting)."""
    keys = [f"{name}{k}" for k in range(len(values))]
    params.update(zip(keys, values, strict=True))
    return "(" + ", ".join(":" + k for k in keys) + ")"


def _image_filters(request: Request, ws: str) -> tuple[str, dict[str, Any]]:
    q = request.query_params
    where = ["i.workspace_id = :ws"]
    params: dict[str, Any] = {"ws": ws}
    labels = uuid_list("labels", q.getlist("labels")) + uuid_list("label", q.getlist("label"))
    if labels:
        where.append(
            "EXISTS (SELECT 1 FROM image_labels f WHERE f.image_id = i.id AND f.label_id IN "
            + _in_list("fl", list(dict.fromkeys(labels))[:1000], params)
            + ")"
        )
    not_labels = uuid_list("not_labels", q.getlist("not_labels"))
    if not_labels:
        where.append(
            "NOT EXISTS (SELECT 1 FROM image_labels f WHERE f.image_id = i.id AND f.label_id IN "
            + _in_list("nl", list(dict.fromkeys(not_labels))[:1000], params)
            + ")"
        )
    n = 0
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
        op = ">=" if match.group(2) == "gte" else "<="
        where.append(
            f"EXISTS (SELECT 1 FROM image_labels f WHERE f.image_id = i.id "
            f"AND f.label_id = :vl{n} AND f.value {op} :vv{n})"
        )
        params[f"vl{n}"] = label_id
        params[f"vv{n}"] = number
        n += 1
    return " AND ".join(where), params


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
    cond, params = _image_filters(request, ws)
    if test is not None:
        cond += " AND i.test_image = :test"
        params["test"] = test
    if real is not None:
        cond += " AND i.real = :real"
        params["real"] = real
    count_sql = f"SELECT count(*) FROM images i WHERE {cond}"
    window = {**params, "lim": pr.size, "off": pr.offset}
    base = media_base(request)
    results: Any
    if ctx.db.is_sqlite:
        with ctx.db.sqlite_read() as raw:
            count = ctx.db.count(raw, count_sql, params)
            check_page(pr, count)
            expected = max(0, min(pr.size, count - pr.offset))
            window["last"] = pr.offset + expected - 1
            found, items = raw.execute(imagedocs.page_sql(cond), window).fetchone()
            if found != expected:
                # (The triggers keep image_docs complete: only a damaged database lands here.)
                log.warning("image_docs disagrees with images; rendering the page instead")
                items = raw.execute(imagedocs.rendered_page_sql(cond), window).fetchone()[1]
        results = imagedocs.fill_media(items, base)
    else:
        page_sql = (
            f"SELECT {queries.IMAGE_COLUMNS} FROM images i WHERE {cond} "
            "ORDER BY i.created, i.id LIMIT :lim OFFSET :off"
        )
        # The page's labels come from the same page window (no list of ids to bind).
        labels_sql = (
            "SELECT il.image_id, l.id, l.name, l.type, il.value FROM "
            f"(SELECT i.id FROM images i WHERE {cond} ORDER BY i.created, i.id "
            "LIMIT :lim OFFSET :off) p "
            "JOIN image_labels il ON il.image_id = p.id JOIN labels l ON l.id = il.label_id "
            "ORDER BY il.created, il.label_id"
        )
        with ctx.db.read() as session:
            conn = session.connection()
            count = fetch_all(conn, count_sql, params)[0][0]
            check_page(pr, count)
            rows = fetch_all(conn, page_sql, window)
            label_rows = fetch_all(conn, labels_sql, window) if rows else []
            results = queries.image_dicts(conn, rows, base, label_rows)
    return ok(page_body(request, pr, count, results))


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
    page: int = Query(1, ge=1),
    page_size: int | None = Query(None, ge=1),
) -> Response:
    """Also ``label_value_<label id>__gte`` / ``__lte`` = number: images whose value for
    that label is within the bound."""
    return _listing(request, principal, workspace, test, real)


# The query parameters FastAPI would validate, in the forms the fast path reads exactly as
# FastAPI does (pydantic takes these booleans in any case); anything else goes to FastAPI.
_PLAIN_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _plain_listing_flags(q: QueryParams) -> tuple[bool | None, bool | None] | None:
    """``test`` and ``real`` if every validated parameter is in a plain form, else None."""
    for key, value in q.multi_items():
        if key in ("page", "page_size"):
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


# ---- upload ------------------------------------------------------------------------------


def _image_out(row: dict[str, Any], base: str) -> dict[str, Any]:
    prefix = f"{base}{row['blob_sha256']}/{row['media_key']}"
    return {
        "id": row["id"],
        "created": row["created"],
        "img_path": prefix + row["extension"],
        "thumb_img_path": prefix + "_thumb.jpg",
        "img_width": row["img_width"],
        "img_height": row["img_height"],
        "meta_data": queries.json_fragment(row["meta_data"]),
        "test_image": row["test_image"],
        "real": row["real"],
        "verifyCount": 0,
        "workspace": row["workspace_id"],
        "labels": [],
    }


_EXISTING_SQL = text("SELECT id FROM images WHERE workspace_id = :ws AND upload_sha256 = :h")
_BLOB_USED_SQL = text("SELECT 1 FROM images WHERE blob_sha256 = :h LIMIT 1")
_IMAGE_COLUMNS = [c.name for c in Image.__table__.columns]  # type: ignore[attr-defined]
_INSERT_IMAGE = text(
    f"INSERT INTO images ({', '.join(_IMAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _IMAGE_COLUMNS)})"
)


def _existing_image(ctx: ServerContext, ws: str, upload_sha: str) -> str | None:
    row = ctx.db.first(_EXISTING_SQL, {"ws": ws, "h": upload_sha})
    return row[0] if row else None


def _blob_referenced(ctx: ServerContext, sha: str) -> bool:
    return ctx.db.first(_BLOB_USED_SQL, {"h": sha}) is not None


def _checked_upload(
    ctx: ServerContext,
    ws: str,
    payload: str | bytes,
    field: str,
    fields: UploadFields,
    max_pixels: int | None = None,
) -> tuple[str, StoredImage]:
    """Decode, refuse a duplicate, check (fully decode) and maybe resize an upload:
    (sha256 of the uploaded bytes, what to store). ``max_pixels``: see ``prepare``."""
    try:
        raw = decode_base64(payload) if field == "base64" else bytes(payload)  # type: ignore[arg-type]
    except ImageRejected as exc:
        raise field_error(field, f"Upload a valid image: {exc}.") from exc
    upload_sha = hashlib.sha256(raw).hexdigest()
    existing = _existing_image(ctx, ws, upload_sha)
    if existing is not None:
        raise duplicate_error(existing)
    try:
        stored = prepare(
            raw, noresize=fields.noresize, resize_to=ctx.settings.resize_to, max_pixels=max_pixels
        )
    except ImageRejected as exc:
        raise field_error(field, f"Upload a valid image: {exc}.") from exc
    return upload_sha, stored


def _image_row(
    ws: str, upload_sha: str, stored: StoredImage, fields: UploadFields
) -> dict[str, Any]:
    return dict(
        id=str(uuid.uuid4()),
        created=now_iso(),
        workspace_id=ws,
        upload_sha256=upload_sha,
        blob_sha256=stored.sha256,
        media_key=secrets.token_hex(16),
        extension=stored.extension,
        content_type=stored.content_type,
        size_bytes=len(stored.data),
        img_width=stored.width,
        img_height=stored.height,
        meta_data=dump_json_object(fields.meta_data),
        test_image=fields.test_image,
        real=fields.real,
    )


def _insert_failed(
    ctx: ServerContext, exc: BaseException, blob: str, created: bool, ws: str, upload_sha: str
) -> None:
    """After a failed insert (the caller re-raises): leave nothing behind, the blob goes
    unless another image uses it; a lost race with the same upload is a duplicate."""
    if created and not _blob_referenced(ctx, blob):
        ctx.blobs.remove(blob)
    if isinstance(exc, INTEGRITY_ERRORS):
        existing = _existing_image(ctx, ws, upload_sha)
        if existing is not None:
            raise duplicate_error(existing) from None


def _store_checked(
    ctx: ServerContext, ws: str, upload_sha: str, stored: StoredImage, row: dict[str, Any]
) -> None:
    """Blob, then row, under the blob's lock (in a worker thread: it fsyncs and waits)."""
    blobs = ctx.blobs
    with blobs.locked(stored.sha256):
        created = blobs.put(stored.sha256, stored.data)
        try:
            # A plain insert: the ORM unit of work costs more than the row itself.
            ctx.db.write_one(_INSERT_IMAGE, row)
        except BaseException as exc:
            _insert_failed(ctx, exc, stored.sha256, created, ws, upload_sha)
            raise


def _store_upload(
    ctx: ServerContext,
    principal: Principal,
    workspace: object,
    payload: str | bytes,
    field: str,
    fields: UploadFields,
    base: str,
) -> dict[str, Any]:
    """An upload, start to end, in the calling (worker) thread."""
    ws = ctx.resolve_workspace(principal, workspace)
    upload_sha, stored = _checked_upload(ctx, ws, payload, field, fields)
    row = _image_row(ws, upload_sha, stored, fields)
    _store_checked(ctx, ws, upload_sha, stored, row)
    return _image_out(row, base)


# An upload small enough to check on the event loop (a 320x240 JPEG decodes in 0.5 ms):
# handing it to a worker thread costs about as much CPU again (GIL hand-offs between the
# loop and the pool), which is most of an upload's cost for small images. Bigger images,
# resizing, other databases and any lock that would make the loop wait go to the pool.
INLINE_MAX_PIXELS = 1_000_000
INLINE_MAX_BYTES = 2 * 1024 * 1024
# The blob's fsync, when the disk is slow to answer (see BlobStore.fsync_is_fast).
_FLUSHER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-fsync")


async def _store_upload_async(
    ctx: ServerContext,
    principal: Principal,
    workspace: object,
    payload: str | bytes,
    field: str,
    fields: UploadFields,
    base: str,
) -> dict[str, Any]:
    if not ctx.db.is_sqlite or len(payload) > INLINE_MAX_BYTES:
        args = (ctx, principal, workspace, payload, field, fields, base)
        return await run_in_threadpool(_store_upload, *args)
    ws = ctx.resolve_workspace(principal, workspace)
    try:
        upload_sha, stored = _checked_upload(ctx, ws, payload, field, fields, INLINE_MAX_PIXELS)
    except OverBudget:
        upload_sha, stored = await run_in_threadpool(
            _checked_upload, ctx, ws, payload, field, fields
        )
    row = _image_row(ws, upload_sha, stored, fields)
    rest = _commit_without_waiting(ctx, ws, upload_sha, stored, row)
    if rest is not None:
        # Shielded: once the blob is being written, a cancelled request (server
        # shutdown) still ends with blob and row both stored, or neither.
        await asyncio.shield(_commit_rest(ctx, ws, upload_sha, stored, row, rest))
    return _image_out(row, base)


@dataclass
class _Unfinished:
    """What is left of an upload's commit that would have made the event loop wait."""

    lock: threading.Lock | None  # the blob's stripe lock, still held; None: do it all
    pending: PendingBlob | None = None  # a blob still to fsync and rename
    created: bool = False  # this upload wrote the blob (to remove if the row fails)


def _commit_without_waiting(
    ctx: ServerContext, ws: str, upload_sha: str, stored: StoredImage, row: dict[str, Any]
) -> _Unfinished | None:
    """Store the blob, then the row, if nothing has to wait (the common case); otherwise
    what is left for ``_commit_rest``."""
    blobs = ctx.blobs
    lock = blobs.try_lock(stored.sha256)
    if lock is None:  # a thread is storing or removing the same bytes: wait there
        return _Unfinished(None)
    try:
        pending = blobs.begin_put(stored.sha256, stored.data)
        if pending is not None and not blobs.fsync_is_fast():
            rest, lock = _Unfinished(lock, pending, created=True), None
            return rest
        if pending is not None:
            blobs.finish(pending)
        try:
            if ctx.db.try_write_one(_INSERT_IMAGE, row):
                return None
        except BaseException as exc:
            _insert_failed(ctx, exc, stored.sha256, pending is not None, ws, upload_sha)
            raise
        rest, lock = _Unfinished(lock, created=pending is not None), None
        return rest
    finally:
        if lock is not None:
            lock.release()


async def _commit_rest(
    ctx: ServerContext,
    ws: str,
    upload_sha: str,
    stored: StoredImage,
    row: dict[str, Any],
    rest: _Unfinished,
) -> None:
    if rest.lock is None:
        await run_in_threadpool(_store_checked, ctx, ws, upload_sha, stored, row)
        return
    try:
        if rest.pending is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(_FLUSHER, ctx.blobs.finish, rest.pending)
        try:
            await run_in_threadpool(ctx.db.write_one, _INSERT_IMAGE, row)
        except BaseException as exc:
            _insert_failed(ctx, exc, stored.sha256, rest.created, ws, upload_sha)
            raise
    finally:
        rest.lock.release()


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
    return ok(await _store_upload_async(*args), 201)


async def upload_image_fast(request: Request) -> Response:
    """``upload_image`` for the middleware's fast path (same code, header read directly)."""
    principal = await authenticate(request, request.headers.get("authorization"))
    return await upload_image(request, principal)


# ---- one image -----------------------------------------------------------------------------


def _image_or_404(ctx: ServerContext, ws: str, image_id: str, base: str) -> dict[str, Any]:
    with ctx.db.read() as session:
        found = queries.get_image(session.connection(), ws, image_id, base)
    if found is None:
        raise not_found("Image not found.")
    return found


def _locked_image(session: Session, ws: str, image_id: str) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.workspace_id != ws:
        raise not_found("Image not found.")
    return image


@router.get("/training-image/{image_id}/", response_model=ImageOut)
def get_image(
    request: Request,
    image_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    return ok(_image_or_404(ctx, ws, path_id(image_id, "Image"), media_base(request)))


def _update_image(
    ctx: ServerContext, ws: str, image_id: str, body: ImageUpdate, base: str
) -> dict[str, Any]:
    with ctx.db.write() as session:
        image = _locked_image(session, ws, image_id)
        if "meta_data" in body.model_fields_set:
            image.meta_data = dump_json_object(body.meta_data)
        if body.test_image is not None:
            image.test_image = body.test_image
        if body.real is not None:
            image.real = body.real
        session.add(image)
        session.flush()
        found = queries.get_image(session.connection(), ws, image_id, base)
    assert found is not None
    return found


async def _update_image_route(request: Request, image_id: str, principal: Principal) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, ImageUpdate)
    if "meta_data" in data:
        data["meta_data"] = json_object_field("meta_data", data["meta_data"])
    body = parse(ImageUpdate, data)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    iid = path_id(image_id, "Image")
    return ok(await run_in_threadpool(_update_image, ctx, ws, iid, body, media_base(request)))


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


def _delete_image(ctx: ServerContext, ws: str, image_id: str) -> None:
    with ctx.db.write() as session:
        image = _locked_image(session, ws, image_id)
        sha = image.blob_sha256
        session.execute(text("DELETE FROM image_labels WHERE image_id = :i"), {"i": image_id})
        session.delete(image)
    with ctx.blobs.locked(sha):
        if not _blob_referenced(ctx, sha):
            ctx.blobs.remove(sha)
            # Its cached features go with the bytes (a new upload computes them again).
            ctx.db.write_one(text("DELETE FROM embeddings WHERE sha256 = :h"), {"h": sha})


@router.delete("/training-image/{image_id}/", status_code=204, response_class=Response)
def delete_image(
    request: Request,
    image_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    _delete_image(ctx, ws, path_id(image_id, "Image"))
    return no_content()


# ---- labels of one image --------------------------------------------------------------------


def _label_in_ws(session: Session, ws: str, label_id: str) -> Label:
    label = session.get(Label, label_id)
    if label is None or label.workspace_id != ws:
        raise field_error("label_id", f"Label '{label_id}' does not exist in this workspace.")
    return label


def _set_label(
    ctx: ServerContext,
    ws: str,
    image_id: str,
    label_id: str,
    value: float | None,
    value_given: bool,
    base: str,
) -> dict[str, Any]:
    with ctx.db.write() as session:
        _locked_image(session, ws, image_id)
        label = _label_in_ws(session, ws, label_id)
        if value_given and value is not None and label.type != "value":
            raise field_error(
                "value", f"Only value labels take a value; '{label.name}' is a {label.type} label."
            )
        link = session.get(ImageLabel, (image_id, label_id))
        if link is None:
            session.add(
                ImageLabel(image_id=image_id, label_id=label_id, value=value, created=now_iso())
            )
        elif value_given:
            link.value = value
            session.add(link)
        session.flush()
        found = queries.get_image(session.connection(), ws, image_id, base)
    assert found is not None
    return found


def _unset_label(
    ctx: ServerContext, ws: str, image_id: str, label_id: str, base: str
) -> dict[str, Any]:
    with ctx.db.write() as session:
        _locked_image(session, ws, image_id)
        _label_in_ws(session, ws, label_id)
        session.execute(
            text("DELETE FROM image_labels WHERE image_id = :i AND label_id = :l"),
            {"i": image_id, "l": label_id},
        )
        found = queries.get_image(session.connection(), ws, image_id, base)
    assert found is not None
    return found


async def _label_route(
    request: Request, image_id: str, principal: Principal, *, mode: str
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, ImageLabelRef)
    body = parse(ImageLabelRef, data)
    label_id = check_uuid("label_id", body.label_id)
    if mode == "update" and "value" not in data:
        raise field_error("value", "This field is required.")
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    iid = path_id(image_id, "Image")
    base = media_base(request)
    if mode == "remove":
        return ok(await run_in_threadpool(_unset_label, ctx, ws, iid, label_id, base))
    value_given = "value" in data
    return ok(
        await run_in_threadpool(_set_label, ctx, ws, iid, label_id, body.value, value_given, base)
    )


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


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _bulk_update(ctx: ServerContext, ws: str, body: BulkImageUpdate) -> dict[str, int]:
    images = uuid_list("images", body.images)
    filter_labels = uuid_list("labels", body.labels)
    add = uuid_list("labels-add", body.labels_add)
    remove = uuid_list("labels-remove", body.labels_remove)
    if not images and not filter_labels:
        raise APIError(400, {"non_field_errors": ["Give images (ids) or labels (a filter)."]})
    if body.mark_test and body.unmark_test:
        raise bad_request("mark-test and unmark-test contradict each other.")
    if body.mark_real and body.unmark_real:
        raise bad_request("mark-real and unmark-real contradict each other.")
    with ctx.db.write() as session:
        conn = session.connection()
        for name, ids in (("labels-add", add), ("labels-remove", remove)):
            if ids:
                known = {
                    r[0]
                    for r in conn.execute(
                        text(
                            "SELECT id FROM labels WHERE workspace_id = :ws AND id IN :ids"
                        ).bindparams(bindparam("ids", expanding=True)),
                        {"ws": ws, "ids": ids},
                    )
                }
                missing = [i for i in ids if i not in known]
                if missing:
                    raise field_error(
                        name, f"Label '{missing[0]}' does not exist in this workspace."
                    )
        if images:
            targets: list[str] = []
            for chunk in _chunks(list(dict.fromkeys(images))):
                targets.extend(
                    r[0]
                    for r in conn.execute(
                        text(
                            "SELECT id FROM images WHERE workspace_id = :ws AND id IN :ids"
                        ).bindparams(bindparam("ids", expanding=True)),
                        {"ws": ws, "ids": chunk},
                    )
                )
        else:
            targets = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT i.id FROM images i WHERE i.workspace_id = :ws AND EXISTS "
                        "(SELECT 1 FROM image_labels f WHERE f.image_id = i.id "
                        "AND f.label_id IN :labels)"
                    ).bindparams(bindparam("labels", expanding=True)),
                    {"ws": ws, "labels": filter_labels},
                )
            ]
        now = now_iso()
        flags: dict[str, bool] = {}
        if body.mark_test or body.unmark_test:
            flags["test_image"] = body.mark_test
        if body.mark_real or body.unmark_real:
            flags["real"] = body.mark_real
        for chunk in _chunks(targets):
            ids_bind: BindParameter[Any] = bindparam("ids", expanding=True)
            for label_id in remove:
                conn.execute(
                    text(
                        "DELETE FROM image_labels WHERE label_id = :l AND image_id IN :ids"
                    ).bindparams(ids_bind),
                    {"l": label_id, "ids": chunk},
                )
            for label_id in add:
                present = {
                    r[0]
                    for r in conn.execute(
                        text(
                            "SELECT image_id FROM image_labels WHERE label_id = :l "
                            "AND image_id IN :ids"
                        ).bindparams(ids_bind),
                        {"l": label_id, "ids": chunk},
                    )
                }
                rows = [{"i": i, "l": label_id, "c": now} for i in chunk if i not in present]
                if rows:
                    conn.execute(
                        text(
                            "INSERT INTO image_labels (image_id, label_id, value, created) "
                            "VALUES (:i, :l, NULL, :c)"
                        ),
                        rows,
                    )
            for column, flag in flags.items():
                conn.execute(
                    text(f"UPDATE images SET {column} = :v WHERE id IN :ids").bindparams(ids_bind),
                    {"v": flag, "ids": chunk},
                )
    return {"count": len(targets)}


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
    return ok(await run_in_threadpool(_bulk_update, ctx, ws, body))
