"""Tasks in the database: a page of them, one, and every write of ``task/`` routes.

Writes raise the API's errors (404, 400) inside their transaction, so a refused request
leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from ..errors import bad_request, field_error, not_found
from ..pagination import PageRequest, check_page
from . import queries
from .db import Database
from .labels import label_in_ws
from .tables import Label, Task, TaskLabel, now_iso
from .training import trained_versions

LABEL_TYPE_FOR_TASK = {"multi_class": "category", "multi_label": "tag", "regression": "value"}


def task_page(db: Database, ws: str, pr: PageRequest) -> tuple[int, list[dict[str, Any]]]:
    """The workspace's count of tasks and the page ``pr`` of them (404 past the last)."""
    with db.read() as session:
        conn = session.connection()
        count = conn.execute(
            text("SELECT count(*) FROM tasks WHERE workspace_id = :ws"), {"ws": ws}
        ).scalar_one()
        check_page(pr, count)
        rows = conn.execute(
            text(
                f"SELECT {queries.TASK_COLUMNS} FROM {queries.TASK_FROM} "
                "WHERE t.workspace_id = :ws ORDER BY t.created, t.id LIMIT :lim OFFSET :off"
            ),
            {"ws": ws, "lim": pr.size, "off": pr.offset},
        ).all()
        results = queries.task_dicts(conn, rows)
    return count, results


def get_task(db: Database, ws: str, task_id: str) -> dict[str, Any] | None:
    with db.read() as session:
        return queries.get_task(session.connection(), ws, task_id)


def create_task(
    db: Database, ws: str, name: str, task_type: str, description: str
) -> dict[str, Any]:
    with db.write() as session:
        task = Task(workspace_id=ws, name=name, type=task_type, description=description)
        session.add(task)
        session.flush()
        if task.type == "multi_label":
            negative = Label(
                workspace_id=ws,
                name=f"{task.name} (negative)",
                type="tag",
                description=f"Images without any tag of the task {task.name!r}.",
                negative_for_task=task.id,
            )
            session.add(negative)
            session.flush()
            session.add(TaskLabel(task_id=task.id, label_id=negative.id))
        session.flush()
        found = queries.get_task(session.connection(), ws, task.id)
    assert found is not None
    return found


def _task_in_ws(session: Session, ws: str, task_id: str) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.workspace_id != ws:
        raise not_found("Task not found.")
    return task


def update_task(db: Database, ws: str, task_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes``: the columns to set (``name``, ``description``, ``production_version``).
    A production version must be one of the task's versions that trained (400 naming
    ``production_version`` otherwise): classify/ then answers with it."""
    with db.write() as session:
        task = _task_in_ws(session, ws, task_id)
        if "type" in changes and changes.pop("type") != task.type:
            raise field_error(
                "type", f"A task's type cannot change (this one is {task.type}); create a new task."
            )
        if "production_version" in changes:
            _check_trained(session, task_id, changes["production_version"])
        for column, value in changes.items():
            setattr(task, column, value)
        session.add(task)
        session.flush()
        found = queries.get_task(session.connection(), ws, task_id)
    assert found is not None
    return found


def _check_trained(session: Session, task_id: str, version: int) -> None:
    trained = trained_versions(session.connection(), task_id)
    if version not in trained:
        listed = ", ".join(map(str, trained)) or "none"
        raise field_error(
            "production_version",
            f"Version {version} of this task does not exist or has not trained "
            f"(trained versions: {listed}); only a trained version can be production.",
        )


def delete_task(db: Database, ws: str, task_id: str) -> None:
    with db.write() as session:
        task = _task_in_ws(session, ws, task_id)
        # The task's own negative label goes with it. Everything is detached explicitly,
        # so that it does not depend on the database enforcing ON DELETE CASCADE.
        negatives = "SELECT id FROM labels WHERE negative_for_task = :t"
        for sql in (
            f"DELETE FROM image_labels WHERE label_id IN ({negatives})",
            f"DELETE FROM task_labels WHERE label_id IN ({negatives})",
            "DELETE FROM labels WHERE negative_for_task = :t",
            "DELETE FROM task_labels WHERE task_id = :t",
            "DELETE FROM training_jobs WHERE task_id = :t",
            "DELETE FROM model_heads WHERE model_id IN (SELECT id FROM models WHERE task_id = :t)",
            "DELETE FROM models WHERE task_id = :t",
        ):
            session.execute(text(sql), {"t": task_id})
        session.delete(task)


def add_label(db: Database, ws: str, task_id: str, label_id: str) -> None:
    with db.write() as session:
        task = _task_in_ws(session, ws, task_id)
        label = label_in_ws(session, ws, label_id)
        wanted = LABEL_TYPE_FOR_TASK[task.type]
        if label.type != wanted:
            raise bad_request(
                f"Label type '{label.type}' does not fit the task type '{task.type}' "
                f"(a {task.type} task takes '{wanted}' labels)."
            )
        if session.get(TaskLabel, (task_id, label_id)) is None:
            session.add(TaskLabel(task_id=task_id, label_id=label_id, created=now_iso()))


def remove_label(db: Database, ws: str, task_id: str, label_id: str) -> None:
    with db.write() as session:
        _task_in_ws(session, ws, task_id)
        label_in_ws(session, ws, label_id)
        session.execute(
            text("DELETE FROM task_labels WHERE task_id = :t AND label_id = :l"),
            {"t": task_id, "l": label_id},
        )
