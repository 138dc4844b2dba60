"""The upload pipeline of ``training-image/`` (and of ``classify/``'s ``store_images``).

An upload, start to end: its bytes decoded from base64 (or taken as sent), the
duplicate check by content (identical uploaded bytes in the workspace answer the
duplicate error the official SDK parses), the full decode check within the pixel
limit, the resize (``imaging.prepare``), then the blob stored (fsynced, renamed into
place) before its row is committed, so that a crash never leaves a row without its
bytes; a failed insert leaves no blob behind, and a lost race with the same bytes is a
duplicate. A full disk answers 507 (``disk_full_is_507``), with nothing left behind.

A small upload is checked and committed on the event loop when nothing has to wait (see
``INLINE_MAX_PIXELS``; the data folder's blobs only); everything else runs in a worker
thread (a bucket's PUT always: it is a network round trip). The rows are read and
written by ``data/images.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from .bodies import dump_json_object
from .context import Principal, ServerContext
from .data import images
from .data.db import INTEGRITY_ERRORS, database_full
from .data.queries import json_fragment
from .data.storage import BlobStore, PendingBlob, StorageFull
from .data.storage.locks import Held
from .decodebudget import DecodeBusy, busy_error
from .errors import APIError, field_error
from .imaging import ImageRejected, OverBudget, StoredImage, decode_base64, prepare
from .schemas import UploadFields


def duplicate_error(image_id: str) -> APIError:
    # Keep this wording: the official SDK extracts the id after "image ID" with a regex.
    return APIError(
        400, {"detail": f"Image already exists in workspace with image ID '{image_id}'."}
    )


@contextlib.contextmanager
def disk_full_is_507() -> Iterator[None]:
    """A blob or a row that did not fit on the disk (the blob store has removed its temp
    file, a failed insert its blob): 507, which the client may retry later."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, StorageFull) and not database_full(exc):
            raise
        raise APIError(
            507,
            {
                "detail": "The server's disk is full: the image was not stored. Send it "
                "again once the server's operator has freed space."
            },
        ) from None


def _image_out(row: dict[str, Any], base: str) -> dict[str, Any]:
    prefix = f"{base}{row['blob_sha256']}/{row['media_key']}"
    return {
        "id": row["id"],
        "created": row["created"],
        "img_path": prefix + row["extension"],
        "thumb_img_path": prefix + "_thumb.jpg",
        "img_width": row["img_width"],
        "img_height": row["img_height"],
        "meta_data": json_fragment(row["meta_data"]),
        "test_image": row["test_image"],
        "real": row["real"],
        "verifyCount": 0,
        "workspace": row["workspace_id"],
        "labels": [],
    }


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
    existing = images.existing_image(ctx.db, ws, upload_sha)
    if existing is not None:
        raise duplicate_error(existing)
    try:
        stored = prepare(
            raw,
            noresize=fields.noresize,
            resize_to=ctx.settings.resize_to,
            max_pixels=max_pixels,
            reserve=ctx.decode_budget.reserve,
        )
    except ImageRejected as exc:
        raise field_error(field, f"Upload a valid image: {exc}.") from exc
    except DecodeBusy as exc:
        raise busy_error(exc) from exc
    return upload_sha, stored


def _image_row(
    ws: str, upload_sha: str, stored: StoredImage, fields: UploadFields
) -> dict[str, Any]:
    meta = dump_json_object(fields.meta_data)
    return images.new_row(
        ws, upload_sha, stored, meta, test_image=fields.test_image, real=fields.real
    )


def _insert_failed(
    ctx: ServerContext, exc: BaseException, blob: str, created: bool, ws: str, upload_sha: str
) -> None:
    """After a failed insert (the caller re-raises): leave nothing behind, the blob goes
    unless another image uses it; a lost race with the same upload is a duplicate."""
    if created and not images.blob_referenced(ctx.db, blob):
        ctx.blobs.remove(blob)
    if isinstance(exc, INTEGRITY_ERRORS):
        existing = images.existing_image(ctx.db, ws, upload_sha)
        if existing is not None:
            raise duplicate_error(existing) from None


def _store_checked(
    ctx: ServerContext,
    ws: str,
    upload_sha: str,
    stored: StoredImage,
    row: dict[str, Any],
    user_id: str | None,
    label_id: str = "",
) -> None:
    """Blob, then row (with its label ``label_id``, if any, in the same transaction),
    under the blob's lock (in a worker thread: it fsyncs and waits)."""
    blobs = ctx.blobs
    with disk_full_is_507(), blobs.locked(stored.sha256):
        created = blobs.put(stored.sha256, stored.data)
        try:
            if label_id:
                images.insert_labelled_image(ctx.db, row, label_id, user_id=user_id)
            else:
                images.insert_image(ctx.db, row, user_id=user_id)
        except BaseException as exc:
            _insert_failed(ctx, exc, stored.sha256, created, ws, upload_sha)
            raise


def store_upload(
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
    _store_checked(ctx, ws, upload_sha, stored, row, principal.user_id)
    return _image_out(row, base)


def store_in_workspace(
    ctx: ServerContext,
    ws: str,
    payload: bytes,
    fields: UploadFields,
    user_id: str,
    label_id: str = "",
) -> str:
    """An upload of raw bytes into the workspace ``ws`` (already checked to be the
    caller's, ``user_id``: the web interface's upload form), in the calling (worker)
    thread: the new image's id. ``label_id``: attached in the image's own transaction
    (both or neither). The API's errors: the duplicate error, 400 for bytes not an
    image, or 400 on ``label`` for a label no longer in the workspace."""
    upload_sha, stored = _checked_upload(ctx, ws, payload, "file", fields)
    row = _image_row(ws, upload_sha, stored, fields)
    _store_checked(ctx, ws, upload_sha, stored, row, user_id, label_id)
    return str(row["id"])


# An upload small enough to check on the event loop (a 320x240 JPEG decodes in 0.5 ms):
# handing it to a worker thread costs about as much CPU again (GIL hand-offs between the
# loop and the pool), which is most of an upload's cost for small images. Bigger images,
# resizing, other databases and any lock that would make the loop wait go to the pool.
INLINE_MAX_PIXELS = 1_000_000
INLINE_MAX_BYTES = 2 * 1024 * 1024
# The blob's fsync, when the disk is slow to answer (see BlobStore.fsync_is_fast).
_FLUSHER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-fsync")


async def store_upload_async(
    ctx: ServerContext,
    principal: Principal,
    workspace: object,
    payload: str | bytes,
    field: str,
    fields: UploadFields,
    base: str,
) -> dict[str, Any]:
    if not ctx.db.is_sqlite or len(payload) > INLINE_MAX_BYTES or not _local(ctx):
        args = (ctx, principal, workspace, payload, field, fields, base)
        return await run_in_threadpool(store_upload, *args)
    ws = ctx.resolve_workspace(principal, workspace)
    try:
        upload_sha, stored = _checked_upload(ctx, ws, payload, field, fields, INLINE_MAX_PIXELS)
    except OverBudget:
        upload_sha, stored = await run_in_threadpool(
            _checked_upload, ctx, ws, payload, field, fields
        )
    row = _image_row(ws, upload_sha, stored, fields)
    user = principal.user_id
    with disk_full_is_507():
        rest = _commit_without_waiting(ctx, ws, upload_sha, stored, row, user)
        if rest is not None:
            # Shielded: once the blob is being written, a cancelled request (server
            # shutdown) still ends with blob and row both stored, or neither.
            await asyncio.shield(_commit_rest(ctx, ws, upload_sha, stored, row, rest, user))
    return _image_out(row, base)


def _local(ctx: ServerContext) -> BlobStore | None:
    return ctx.blobs if isinstance(ctx.blobs, BlobStore) else None


@dataclass
class _Unfinished:
    """What is left of an upload's commit that would have made the event loop wait."""

    lock: Held | None  # the blob's lock, still held; None: do it all
    pending: PendingBlob | None = None  # a blob still to fsync and rename
    created: bool = False  # this upload wrote the blob (to remove if the row fails)


def _commit_without_waiting(
    ctx: ServerContext,
    ws: str,
    upload_sha: str,
    stored: StoredImage,
    row: dict[str, Any],
    user_id: str,
) -> _Unfinished | None:
    """Store the blob, then the row, if nothing has to wait (the common case); otherwise
    what is left for ``_commit_rest``."""
    blobs = _local(ctx)
    assert blobs is not None  # store_upload_async checked
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
            if images.try_insert_image(ctx.db, row, user_id=user_id):
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
    user_id: str,
) -> None:
    if rest.lock is None:
        await run_in_threadpool(_store_checked, ctx, ws, upload_sha, stored, row, user_id)
        return
    try:
        if rest.pending is not None:
            loop = asyncio.get_running_loop()
            blobs = _local(ctx)
            assert blobs is not None  # store_upload_async checked
            await loop.run_in_executor(_FLUSHER, blobs.finish, rest.pending)
        try:
            await run_in_threadpool(
                functools.partial(images.insert_image, ctx.db, row, user_id=user_id)
            )
        except BaseException as exc:
            _insert_failed(ctx, exc, stored.sha256, rest.created, ws, upload_sha)
            raise
    finally:
        rest.lock.release()


_DUPLICATE_ID = re.compile(r"image ID '([0-9a-f-]{36})'")


def store_unless_duplicate(
    ctx: ServerContext,
    principal: Principal,
    ws: str,
    payload: bytes,
    field: str,
    fields: UploadFields,
    base: str,
) -> tuple[str, bool]:
    """``store_upload``, with bytes already stored in the workspace taken as the image
    they are: (image id, whether it is new)."""
    try:
        stored = store_upload(ctx, principal, ws, payload, field, fields, base)
    except APIError as exc:
        found = _DUPLICATE_ID.search(str(exc.body.get("detail", "")))
        if found is None:
            raise
        return found.group(1), False
    return str(stored["id"]), True
