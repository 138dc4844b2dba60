"""The task pages: a workspace's tasks (create, rename, delete with a confirmation) and
one task's labels (create, rename, attach, detach). The shell of web/taskforms.py's
checks; the reads are data/taskviews.py's, the writes data/tasks.py's and
data/labels.py's, with the workspace of the URL, as the API's routes call them.

Every page needs the signed-in user, and the workspace of the URL must be one of theirs
(404 otherwise, as the API answers for another workspace's object); the task and the
label must be in that workspace. Every action is a plain form POST answered with a
redirect (or the page again with the errors next to their fields, status 400); htmx
only makes the same forms swap the page in place (``hx-boost`` in the templates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ..context import get_ctx
from ..data import accounts, labels, taskviews
from ..data import tasks as task_data
from ..data.taskviews import LabelRow, TaskRow
from ..data.websessions import SessionUser
from .render import WebError, page
from .scope import NO_WORKSPACE, InWorkspace, in_workspace
from .session import checked_form, require_user
from .taskforms import (
    TASK_TYPES,
    delete_problem,
    name_problem,
    notice_query,
    notice_text,
    task_problems,
)

router = APIRouter(include_in_schema=False)

TASKS = "/web/w/{workspace_id}/tasks"
TASK = TASKS + "/{task_id}"
NO_TASK = "This workspace has no such task (it may have been deleted)."
_EMPTY_FORM = {"rename": "", "rename_label": "", "label_name": ""}
NO_LABEL = "This task has no such label (it may have been detached)."


def tasks_url(ws: str) -> str:
    return f"/web/w/{ws}/tasks"


def task_url(ws: str, task_id: str) -> str:
    return f"/web/w/{ws}/tasks/{task_id}"


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class AtTask:
    """A task page's user, workspace (theirs) and task (in it)."""

    user: SessionUser
    ws: str
    task: TaskRow


async def at_task(
    request: Request, task_id: str, where: InWorkspace = Depends(in_workspace)
) -> AtTask:
    """The dependency of the pages under ``TASK``: 404 for a task not in the workspace."""
    found = await run_in_threadpool(taskviews.task_row, get_ctx(request).db, where.ws, task_id)
    if found is None:
        raise WebError(404, NO_TASK)
    return AtTask(where.user, where.ws, found)


async def _label(request: Request, ws: str, task_id: str, label_id: str) -> LabelRow:
    attached = await run_in_threadpool(taskviews.task_labels, get_ctx(request).db, ws, task_id)
    found = next((lb for lb in attached if lb.id == label_id and not lb.negative), None)
    if found is None:
        raise WebError(404, NO_LABEL)
    return found


@router.get("/web/tasks")
async def my_tasks(request: Request, user: SessionUser = Depends(require_user)) -> Response:
    """The nav's "Tasks": the tasks of the user's default (else first) workspace."""
    ctx = get_ctx(request)
    workspaces = await run_in_threadpool(accounts.workspace_summaries, ctx.db, user.user_id)
    if not workspaces:
        return RedirectResponse("/web/", status_code=303)
    return RedirectResponse(tasks_url(workspaces[0].id), status_code=303)


async def _list_page(
    request: Request,
    user: SessionUser,
    ws: str,
    extra: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ctx = get_ctx(request)
    workspaces = await run_in_threadpool(accounts.workspace_summaries, ctx.db, user.user_id)
    current = next((w for w in workspaces if w.id == ws), None)
    if current is None:  # (deleted since the check)
        raise WebError(404, NO_WORKSPACE)
    rows = await run_in_threadpool(taskviews.task_rows, ctx.db, ws)
    values = {
        "active": "tasks",
        "ws": current,
        "workspaces": workspaces,
        "tasks": rows,
        "task_types": TASK_TYPES,
        "errors": {},
        "form": {"name": "", "type": "multi_class", "description": ""},
        "notice": _notice(request, user),
        **(extra or {}),
    }
    return page(request, "tasks_list.html", values, status=status)


@router.get(TASKS)
async def task_list(request: Request, where: InWorkspace = Depends(in_workspace)) -> Response:
    return await _list_page(request, where.user, where.ws)


@router.post(TASKS)
async def create_task(
    request: Request,
    form: FormData = Depends(checked_form),
    where: InWorkspace = Depends(in_workspace),
) -> Response:
    user, ws = where.user, where.ws
    ctx = get_ctx(request)
    name, task_type = _text(form, "name"), _text(form, "type")
    description = _text(form, "description")
    rows = await run_in_threadpool(taskviews.task_rows, ctx.db, ws)
    errors = task_problems(name, task_type, description, [t.name for t in rows])
    if errors:
        values = {"name": name, "type": task_type, "description": description}
        return await _list_page(request, user, ws, {"errors": errors, "form": values}, 400)
    made = await run_in_threadpool(task_data.create_task, ctx.db, ws, name, task_type, description)
    return RedirectResponse(task_url(ws, made["id"]), status_code=303)


async def _task_page(
    request: Request,
    user: SessionUser,
    ws: str,
    task: TaskRow,
    extra: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ctx = get_ctx(request)
    label_type = task_data.LABEL_TYPE_FOR_TASK[task.type]
    attached = await run_in_threadpool(taskviews.task_labels, ctx.db, ws, task.id)
    free = await run_in_threadpool(taskviews.attachable_labels, ctx.db, ws, task.id, label_type)
    values = {
        "active": "tasks",
        "ws_id": ws,
        "task": task,
        "type_text": TASK_TYPES.get(task.type, task.type),
        "label_type": label_type,
        "labels": attached,
        "free_labels": free,
        "errors": {},
        "form": _EMPTY_FORM,
        "notice": _notice(request, user),
        **(extra or {}),
    }
    if status == 400 and request.headers.get("hx-request"):
        status = 200  # htmx swaps only a 2xx answer in: the errors must show in place
    return page(request, "tasks_task.html", values, status=status)


@router.get(TASK)
async def task_page(request: Request, at: AtTask = Depends(at_task)) -> Response:
    return await _task_page(request, at.user, at.ws, at.task)


def _notice(request: Request, user: SessionUser) -> str:
    query = request.query_params
    return notice_text(user.csrf_token, query.get("notice", ""), query.get("sig", ""))


def done(user: SessionUser, url: str, notice: str) -> RedirectResponse:
    """Back to ``url``, saying what was done (signed: web/taskforms.py)."""
    return RedirectResponse(f"{url}?{urlencode(notice_query(user.csrf_token, notice))}", 303)


@router.post(TASK + "/rename")
async def rename_task(
    request: Request,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    ctx = get_ctx(request)
    name = _text(form, "name")
    rows = await run_in_threadpool(taskviews.task_rows, ctx.db, ws)
    problem = name_problem(name, [t.name for t in rows if t.id != task_id], "task")
    if problem:
        extra = {"errors": {"rename": problem}, "form": {**_EMPTY_FORM, "rename": name}}
        return await _task_page(request, user, ws, task, extra, 400)
    await run_in_threadpool(task_data.update_task, ctx.db, ws, task_id, {"name": name})
    return done(user, task_url(ws, task_id), f"The task is now named “{name}”.")


@router.get(TASK + "/delete")
async def delete_form(request: Request, at: AtTask = Depends(at_task)) -> Response:
    ws, task = at.ws, at.task
    values = {"active": "tasks", "ws_id": ws, "task": task, "errors": {}}
    return page(request, "tasks_delete.html", values)


@router.post(TASK + "/delete")
async def delete_task(
    request: Request,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    problem = delete_problem(_text(form, "confirm_name"), task.name)
    if problem:
        values = {"active": "tasks", "ws_id": ws, "task": task, "errors": {"confirm_name": problem}}
        return page(request, "tasks_delete.html", values, status=400)
    await run_in_threadpool(task_data.delete_task, get_ctx(request).db, ws, task_id)
    return done(user, tasks_url(ws), f"The task “{task.name}” was deleted.")


@router.post(TASK + "/labels")
async def create_label(
    request: Request,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    """A new label, attached to the task. A label of the workspace with that name and
    the task's label type (not attached yet) is attached instead of making a twin."""
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    ctx = get_ctx(request)
    name = _text(form, "name")
    attached = await run_in_threadpool(taskviews.task_labels, ctx.db, ws, task_id)
    problem = name_problem(name, [lb.name for lb in attached], "label")
    if problem:
        extra = {"errors": {"label_name": problem}, "form": {**_EMPTY_FORM, "label_name": name}}
        return await _task_page(request, user, ws, task, extra, 400)
    label_type = task_data.LABEL_TYPE_FOR_TASK[task.type]
    free = await run_in_threadpool(taskviews.attachable_labels, ctx.db, ws, task_id, label_type)
    twin = next((lb for lb in free if lb.name.casefold() == name.casefold()), None)
    if twin is None:
        made = await run_in_threadpool(labels.create_label, ctx.db, ws, name, label_type, "", None)
        label_id, said = made["id"], f"The label “{name}” was created and attached."
    else:
        label_id, said = twin.id, f"The workspace's label “{twin.name}” was attached."
    await run_in_threadpool(task_data.add_label, ctx.db, ws, task_id, label_id)
    return done(user, task_url(ws, task_id), said)


@router.post(TASK + "/labels/attach")
async def attach_label(
    request: Request,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    ctx = get_ctx(request)
    label_type = task_data.LABEL_TYPE_FOR_TASK[task.type]
    free = await run_in_threadpool(taskviews.attachable_labels, ctx.db, ws, task_id, label_type)
    wanted = _text(form, "label_id")
    found = next((lb for lb in free if lb.id == wanted), None)
    if found is None:
        problem = "Choose one of the workspace's labels that this task does not have yet."
        extra = {"errors": {"label_id": problem}}
        return await _task_page(request, user, ws, task, extra, 400)
    await run_in_threadpool(task_data.add_label, ctx.db, ws, task_id, found.id)
    return done(user, task_url(ws, task_id), f"The label “{found.name}” was attached.")


@router.post(TASK + "/labels/{label_id}/rename")
async def rename_label(
    request: Request,
    label_id: str,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    label = await _label(request, ws, task_id, label_id)
    ctx = get_ctx(request)
    name = _text(form, "name")
    attached = await run_in_threadpool(taskviews.task_labels, ctx.db, ws, task_id)
    problem = name_problem(name, [lb.name for lb in attached if lb.id != label.id], "label")
    if problem:
        extra = {
            "errors": {f"label-{label.id}": problem},
            "form": {**_EMPTY_FORM, "rename_label": name},
        }
        return await _task_page(request, user, ws, task, extra, 400)
    await run_in_threadpool(labels.update_label, ctx.db, ws, label.id, {"name": name})
    return done(user, task_url(ws, task_id), f"The label “{label.name}” is now named “{name}”.")


@router.get(TASK + "/labels/{label_id}/detach")
async def detach_form(
    request: Request,
    label_id: str,
    at: AtTask = Depends(at_task),
) -> Response:
    ws, task, task_id = at.ws, at.task, at.task.id
    label = await _label(request, ws, task_id, label_id)
    values = {"active": "tasks", "ws_id": ws, "task": task, "label": label}
    return page(request, "tasks_detach.html", values)


@router.post(TASK + "/labels/{label_id}/detach")
async def detach_label(
    request: Request,
    label_id: str,
    form: FormData = Depends(checked_form),
    at: AtTask = Depends(at_task),
) -> Response:
    """Detach the label from the task. A label with images asks first (the confirmation
    page posts ``confirm=yes``): its images leave the task's training set."""
    user, ws, task, task_id = at.user, at.ws, at.task, at.task.id
    label = await _label(request, ws, task_id, label_id)
    if label.images and _text(form, "confirm") != "yes":
        values = {"active": "tasks", "ws_id": ws, "task": task, "label": label}
        return page(request, "tasks_detach.html", values, status=400)
    await run_in_threadpool(task_data.remove_label, get_ctx(request).db, ws, task_id, label.id)
    return done(
        user, task_url(ws, task_id), f"The label “{label.name}” was detached from the task."
    )
