"""Read-side SQL of the web interface's task pages: a workspace's tasks with their image
counts, and a task's labels with theirs. The writes are data/tasks.py's and
data/labels.py's (the API's own), so the pages enforce the API's rules.

A task's images are the images carrying at least one of its labels (a label belongs to
the workspace and is attached to tasks: docs/design.md); a label's image count is the
number of images carrying it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from .db import Database


@dataclass(frozen=True)
class TaskRow:
    id: str
    name: str
    type: str
    description: str
    production_version: int | None
    accuracy: float | None
    images: int


@dataclass(frozen=True)
class LabelRow:
    id: str
    name: str
    type: str
    images: int
    negative: bool  # a multi_label task's own "(negative)" label


_TASKS_SQL = text(
    "SELECT t.id, t.name, t.type, t.description, t.production_version, m.accuracy, "
    "(SELECT count(DISTINCT il.image_id) FROM image_labels il "
    " JOIN task_labels tl ON tl.label_id = il.label_id WHERE tl.task_id = t.id) "
    "FROM tasks t LEFT JOIN models m ON m.task_id = t.id AND m.version = t.production_version "
    "WHERE t.workspace_id = :ws ORDER BY t.created, t.id"
)

_TASK_LABELS_SQL = text(
    "SELECT l.id, l.name, l.type, "
    "(SELECT count(*) FROM image_labels il WHERE il.label_id = l.id), l.negative_for_task "
    "FROM labels l JOIN task_labels tl ON tl.label_id = l.id "
    "WHERE tl.task_id = :t AND l.workspace_id = :ws ORDER BY l.name, l.id"
)

_FREE_LABELS_SQL = text(
    "SELECT l.id, l.name, l.type, "
    "(SELECT count(*) FROM image_labels il WHERE il.label_id = l.id), l.negative_for_task "
    "FROM labels l WHERE l.workspace_id = :ws AND l.type = :type "
    "AND l.negative_for_task IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM task_labels tl WHERE tl.label_id = l.id AND tl.task_id = :t) "
    "ORDER BY l.name, l.id"
)


def task_rows(db: Database, ws: str) -> list[TaskRow]:
    """Every task of the workspace, oldest first, with its image count."""
    with db.read() as session:
        rows = session.connection().execute(_TASKS_SQL, {"ws": ws}).all()
    return [TaskRow(r[0], r[1], r[2], r[3] or "", r[4], r[5], int(r[6] or 0)) for r in rows]


def task_row(db: Database, ws: str, task_id: str) -> TaskRow | None:
    """One task of the workspace (None when it is not there)."""
    return next((t for t in task_rows(db, ws) if t.id == task_id), None)


def _label_rows(db: Database, sql: object, params: dict[str, str]) -> list[LabelRow]:
    with db.read() as session:
        rows = session.connection().execute(sql, params).all()  # type: ignore[call-overload]
    return [LabelRow(r[0], r[1], r[2], int(r[3] or 0), r[4] is not None) for r in rows]


def task_labels(db: Database, ws: str, task_id: str) -> list[LabelRow]:
    """The labels attached to the task, by name, with their image counts."""
    return _label_rows(db, _TASK_LABELS_SQL, {"t": task_id, "ws": ws})


def attachable_labels(db: Database, ws: str, task_id: str, label_type: str) -> list[LabelRow]:
    """The workspace's labels of ``label_type`` not attached to the task (nor another
    task's negative label): what the task page offers to attach."""
    return _label_rows(db, _FREE_LABELS_SQL, {"t": task_id, "ws": ws, "type": label_type})
