"""The images of a task in the web interface: the gallery (paginated, filtered by label,
unlabelled or text in the metadata), thumbnails and full images behind the session
(ETag, ``private`` cache), the upload form (many files, one label chosen up front, a
report per file), the bulk relabel and delete, and one image's page.

Everything goes through the API's data layer with the workspace of the URL once it is
known to be the user's (404 otherwise, as the API answers): uploads through
``uploads.store_in_workspace`` (the API's duplicate check and image checks), deletes
through ``images.delete_image``. So a change here is what ``repo sync`` brings to the
clones' folders.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..api.media import ensure_thumbnail, stored_response
from ..context import ServerContext, get_ctx
from ..data import imagebulk, imageevents, imagelist, images, labels, tasks
from ..data.tables import iso_at
from ..data.websessions import SessionUser
from ..errors import APIError
from ..pagination import PageRequest
from ..schemas import UploadFields
from ..uploads import store_in_workspace
from . import imagehistory
from .render import WebError, page
from .scope import workspace_of
from .session import checked_form, require_user
from .taskforms import notice_query, notice_text

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 48
META_NAME = "original_file_name"  # what `repo` records as an image's file name
NO_TASK = "This workspace has no such task (it may have been deleted)."
NO_IMAGE = "This workspace has no such image (it may have been deleted)."
# The stored bytes of an image never change: a day in the browser's private cache, then
# a revalidation that the ETag answers with 304.
THUMB_CACHE = "private, max-age=86400"


@dataclass(frozen=True)
class FileReport:
    """One uploaded file's outcome: ``added``, ``duplicate`` or ``rejected``."""

    name: str
    outcome: str
    message: str
    image_id: str = ""


def _task_and_labels(
    ctx: ServerContext, ws: str, task_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    task = tasks.get_task(ctx.db, ws, task_id) if len(task_id) <= 64 else None
    if task is None:
        raise WebError(404, NO_TASK)
    found = [labels.get_label(ctx.db, ws, label_id) for label_id in task["labels"]]
    return task, [label for label in found if label is not None]


def _gallery_url(ws: str, task_id: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v and not (k == "page" and v == 1)}
    query = urlencode(kept)
    return f"/web/w/{ws}/tasks/{task_id}/images" + (f"?{query}" if query else "")


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or "1")
    except ValueError:
        raise WebError(400, f"The page number must be a whole number, not {raw!r}.") from None
    if number < 1 or number > 1_000_000:
        raise WebError(400, f"There is no page {number}.")
    return number


def _query(show: str, text: str, task_labels: list[dict[str, Any]]) -> imagelist.ImageQuery:
    ids = [label["id"] for label in task_labels]
    if show == "unlabelled":
        return imagelist.ImageQuery(not_labels=ids, text=text)
    if show:
        if show not in ids:
            raise WebError(400, "Choose one of the task's labels to filter by.")
        return imagelist.ImageQuery(labels=[show], text=text)
    return imagelist.ImageQuery(text=text)


def file_name(image: dict[str, Any]) -> str:
    meta = image.get("meta_data")
    if isinstance(meta, dict) and isinstance(meta.get(META_NAME), str):
        return str(meta[META_NAME])
    return ""


async def _gallery(
    request: Request,
    user: SessionUser,
    workspace_id: str,
    task_id: str,
    extra: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ctx = get_ctx(request)
    ws = await workspace_of(request, user, workspace_id)
    task, task_labels = await run_in_threadpool(_task_and_labels, ctx, ws, task_id)
    q = request.query_params
    show = q.get("show", "")
    text = q.get("q", "").strip()[:200]
    number = _page_number(q.get("page"))
    query = _query(show, text, task_labels)
    count, found = await run_in_threadpool(
        imagelist.gallery_page, ctx.db, ws, query, PageRequest(number, PAGE_SIZE), "/media/"
    )
    for image in found:
        image["meta_data"] = _meta(image)
    last = max(1, -(-count // PAGE_SIZE))

    def link(n: int) -> str:
        return _gallery_url(ws, task["id"], show=show, q=text, page=n)

    values = {
        "ws": ws,
        "task": task,
        "task_labels": task_labels,
        "images": found,
        "count": count,
        "page_number": number,
        "last_page": last,
        "prev_url": link(number - 1) if number > 1 else "",
        "next_url": link(number + 1) if number < last else "",
        "show": show,
        "q": text,
        "file_name": file_name,
        "reports": [],
        "errors": {},
        "notice": notice_text(user.csrf_token, q.get("notice", ""), q.get("sig", "")),
        "upload_label": "",
        **(extra or {}),
    }
    return page(request, "images_gallery.html", values, status=status)


def _meta(image: dict[str, Any]) -> dict[str, Any]:
    raw = image.get("meta_data")
    if isinstance(raw, orjson.Fragment):
        loaded = orjson.loads(orjson.dumps(raw))
        return loaded if isinstance(loaded, dict) else {}
    return raw if isinstance(raw, dict) else {}


@router.get("/web/w/{workspace_id}/tasks/{task_id}/images")
async def gallery(
    request: Request, workspace_id: str, task_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    return await _gallery(request, user, workspace_id, task_id)


def _store_files(
    ctx: ServerContext,
    ws: str,
    files: list[UploadFile],
    label_id: str,
    test_image: bool,
    user_id: str,
) -> list[FileReport]:
    """Each file through the API's upload pipeline, labelled ``label_id`` when new (a
    test image, never trained on, when ``test_image``)."""
    reports = []
    for upload in files:
        name = (upload.filename or "unnamed").rsplit("/", 1)[-1][:255]
        data = upload.file.read()
        fields = UploadFields(meta_data={META_NAME: name}, test_image=test_image)
        try:
            # The label in the image's own transaction: both stored, or neither.
            image_id = store_in_workspace(ctx, ws, data, fields, user_id, label_id)
        except APIError as exc:
            reports.append(_refused(name, exc))
            continue
        reports.append(FileReport(name, "added", "added", image_id))
    return reports


def _refused(name: str, exc: APIError) -> FileReport:
    """The report of a file the upload pipeline refused with the API's error."""
    detail = str(exc.body.get("detail", ""))
    if "already exists" in detail:
        found = detail.rsplit("'", 2)[-2] if detail.count("'") >= 2 else ""
        return FileReport(name, "duplicate", "already in this workspace", found)
    if "label" in exc.body:
        return FileReport(name, "rejected", f"not stored: {images.NO_SUCH_LABEL}")
    if exc.status in (503, 507):  # busy decoding others, or the disk is full: say so
        return FileReport(name, "rejected", f"not stored: {detail}")
    return FileReport(name, "rejected", "not an image this server can read")


def _label_problem(ctx: ServerContext, ws: str, label_id: str) -> str:
    """Why the label chosen for an upload is not one to use: detached from the task
    (named) or gone (deleted since the form was shown)."""
    label = labels.get_label(ctx.db, ws, label_id) if len(label_id) <= 64 else None
    if label is None:
        return f"{images.NO_SUCH_LABEL} Choose another label, or no label."
    return (
        f"“{label['name']}” is no longer one of this task's labels. "
        "Choose another label, or no label."
    )


@router.post("/web/w/{workspace_id}/tasks/{task_id}/images/upload")
async def upload(
    request: Request,
    workspace_id: str,
    task_id: str,
    form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    ctx = get_ctx(request)
    ws = await workspace_of(request, user, workspace_id)
    task, task_labels = await run_in_threadpool(_task_and_labels, ctx, ws, task_id)
    label_id = form.get("label")
    label_id = label_id if isinstance(label_id, str) else ""
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    errors = {}
    if label_id and label_id not in {label["id"] for label in task_labels}:
        errors["label"] = await run_in_threadpool(_label_problem, ctx, ws, label_id)
    if not files:
        errors["files"] = "Choose one or more image files to upload."
    wants_json = "application/json" in request.headers.get("accept", "")
    if errors:
        if wants_json:
            return JSONResponse({"errors": errors}, status_code=400)
        return await _gallery(
            request, user, ws, task["id"], {"errors": errors, "upload_label": label_id}, 400
        )
    test_image = form.get("test_image") == "1"
    reports = await run_in_threadpool(
        _store_files, ctx, ws, files, label_id, test_image, user.user_id
    )
    if wants_json:
        return JSONResponse({"files": [r.__dict__ for r in reports]})
    return await _gallery(
        request, user, ws, task["id"], {"reports": reports, "upload_label": label_id}
    )


def _relabel(
    ctx: ServerContext, ws: str, task: dict[str, Any], ids: list[str], label_id: str, by: str
) -> int:
    """A category task: the images lose the task's other labels; a tag task: they gain
    the tag."""
    remove = [i for i in task["labels"] if i != label_id] if task["type"] == "multi_class" else []
    return imagebulk.bulk_update(
        ctx.db,
        ws,
        images=ids,
        filter_labels=[],
        add=[label_id],
        remove=remove,
        flags={},
        user_id=by,
    )


def _delete(ctx: ServerContext, ws: str, ids: list[str]) -> int:
    gone = 0
    for image_id in ids:
        try:
            images.delete_image(ctx.db, ctx.blobs, ws, image_id)
        except APIError:
            continue  # not this workspace's, or deleted meanwhile
        gone += 1
    return gone


@router.post("/web/w/{workspace_id}/tasks/{task_id}/images/bulk")
async def bulk(
    request: Request,
    workspace_id: str,
    task_id: str,
    form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    ctx = get_ctx(request)
    ws = await workspace_of(request, user, workspace_id)
    task, task_labels = await run_in_threadpool(_task_and_labels, ctx, ws, task_id)
    ids = [i for i in form.getlist("image") if isinstance(i, str) and len(i) <= 64][:1000]
    action = _text(form, "action")
    label_id = _text(form, "label")
    errors, value = _bulk_problems(ids, action, label_id, _text(form, "value"), task_labels)
    if errors:
        return await _gallery(request, user, ws, task["id"], {"errors": errors}, 400)
    if action == "delete":
        n = await run_in_threadpool(_delete, ctx, ws, ids)
        notice = f"Deleted {n} image{'s' if n != 1 else ''}."
    elif action == "value":
        assert value is not None
        n = await run_in_threadpool(_set_value, ctx, ws, ids, label_id, value, user.user_id)
        name = next(label["name"] for label in task_labels if label["id"] == label_id)
        notice = f"Set {name} = {value:g} on {n} image{'s' if n != 1 else ''}."
    else:
        n = await run_in_threadpool(_relabel, ctx, ws, task, ids, label_id, user.user_id)
        name = next(label["name"] for label in task_labels if label["id"] == label_id)
        notice = f"Labelled {n} image{'s' if n != 1 else ''} {name}."
    signed = notice_query(user.csrf_token, notice)  # a link cannot forge it
    return RedirectResponse(_gallery_url(ws, task["id"], **signed), status_code=303)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _bulk_problems(
    ids: list[str], action: str, label_id: str, value_text: str, task_labels: list[dict[str, Any]]
) -> tuple[dict[str, str], float | None]:
    """What is wrong with a bulk action's form (by field), and the value to set."""
    by_id = {label["id"]: label for label in task_labels}
    if not ids:
        return {"bulk": "Select one or more images first."}, None
    if action == "delete":
        return {}, None
    if action not in ("relabel", "value"):
        return {"bulk": "Choose what to do with the selected images."}, None
    if label_id not in by_id:
        return {"bulk_label": "Choose the label to give the selected images."}, None
    if action == "relabel":
        return {}, None
    if by_id[label_id]["type"] != "value":
        return {"bulk_label": "Only a value label takes a value: choose one."}, None
    try:
        value = float(value_text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return {"bulk_value": f"Enter the value as a number (like 2.5), not {value_text!r}."}, None
    return {}, value


def _set_value(
    ctx: ServerContext, ws: str, ids: list[str], label_id: str, value: float, by: str
) -> int:
    done = 0
    for image_id in ids:
        try:
            images.set_label(ctx.db, ws, image_id, label_id, value, True, "/media/", user_id=by)
        except APIError:
            continue  # not this workspace's, or deleted meanwhile
        done += 1
    return done


async def _image_blob(
    request: Request, user: SessionUser, workspace_id: str, image_id: str
) -> tuple[ServerContext, Any]:
    ctx = get_ctx(request)
    ws = await workspace_of(request, user, workspace_id)
    row = (
        await run_in_threadpool(images.blob_of, ctx.db, ws, image_id)
        if len(image_id) <= 64
        else None
    )
    if row is None:
        raise WebError(404, NO_IMAGE)
    return ctx, row


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    return etag in [tag.strip() for tag in given.split(",")] or given.strip() == "*"


@router.get("/web/w/{workspace_id}/images/{image_id}/thumb")
async def thumbnail(
    request: Request, workspace_id: str, image_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    ctx, row = await _image_blob(request, user, workspace_id, image_id)
    etag = f'"t-{row[0]}"'
    headers = {"ETag": etag, "Cache-Control": THUMB_CACHE}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    made = await run_in_threadpool(ensure_thumbnail, ctx, row[0])
    found = None
    if made is not None:
        serve = functools.partial(stored_response, thumb=made)
        found = await run_in_threadpool(serve, ctx, row[0], "image/jpeg", headers)
    if found is None:
        raise WebError(404, NO_IMAGE)
    return found


@router.get("/web/w/{workspace_id}/images/{image_id}/file")
async def full_image(
    request: Request, workspace_id: str, image_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    ctx, row = await _image_blob(request, user, workspace_id, image_id)
    etag = f'"{row[0]}"'
    headers = {"ETag": etag, "Cache-Control": THUMB_CACHE}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    found = await run_in_threadpool(stored_response, ctx, row[0], row[1], headers)
    if found is None:
        raise WebError(404, NO_IMAGE)
    return found


@router.get("/web/w/{workspace_id}/images/{image_id}")
async def image_page(
    request: Request, workspace_id: str, image_id: str, user: SessionUser = Depends(require_user)
) -> Response:
    ctx = get_ctx(request)
    ws = await workspace_of(request, user, workspace_id)
    image = (
        await run_in_threadpool(images.get_image, ctx.db, ws, image_id, "/media/")
        if len(image_id) <= 64
        else None
    )
    if image is None:
        raise WebError(404, NO_IMAGE)
    image["meta_data"] = _meta(image)
    events = await run_in_threadpool(imageevents.history, ctx.db, ws, image["id"])
    history = imagehistory.history_lines(events, image["created"], iso_at(datetime.now(UTC)))
    values = {"ws": ws, "image": image, "name": file_name(image), "history": history}
    return page(request, "images_image.html", values)
