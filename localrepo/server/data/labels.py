"""Labels in the database: a page of them (with the filters of ``label/``), one, and
every write of the ``label/`` routes (in their transaction, 404 included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from ..errors import field_error, not_found
from ..pagination import PageRequest, check_page
from ..searchterms import matches, search_terms
from . import queries
from .db import Database
from .tables import Label, LabelSubtask, Task, now_iso


def label_page(
    db: Database,
    ws: str,
    pr: PageRequest,
    *,
    task: str | None = None,
    search: str | None = None,
    label_type: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """The count of the workspace's labels matching the filters and the page ``pr`` of
    them (404 past the last). ``task``: attached to it; ``search``: its terms
    (``searchterms.py``) all in the name; ``label_type``: of that type."""
    where = ["l.workspace_id = :ws"]
    params: dict[str, Any] = {"ws": ws}
    if task:
        where.append(
            "EXISTS (SELECT 1 FROM task_labels tl WHERE tl.label_id = l.id AND tl.task_id = :task)"
        )
        params["task"] = task
    if label_type:
        where.append("l.type = :type")
        params["type"] = label_type
    cond = " AND ".join(where)
    with db.read() as session:
        conn = session.connection()
        terms = search_terms(search or "")
        if terms:
            # Matched in Python (Unicode case folding); a workspace's labels are few.
            ids = [
                r[0]
                for r in conn.execute(
                    text(
                        f"SELECT l.id, l.name FROM labels l WHERE {cond} ORDER BY l.created, l.id"
                    ),
                    params,
                )
                if matches(terms, r[1])
            ]
            count = len(ids)
            check_page(pr, count)
            page_ids = ids[pr.offset : pr.offset + pr.size]
            rows = (
                conn.execute(
                    text(
                        f"SELECT {queries.LABEL_COLUMNS} FROM labels l WHERE l.id IN :ids "
                        "ORDER BY l.created, l.id"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": page_ids},
                ).all()
                if page_ids
                else []
            )
        else:
            count = conn.execute(
                text(f"SELECT count(*) FROM labels l WHERE {cond}"), params
            ).scalar_one()
            check_page(pr, count)
            rows = conn.execute(
                text(
                    f"SELECT {queries.LABEL_COLUMNS} FROM labels l WHERE {cond} "
                    "ORDER BY l.created, l.id LIMIT :lim OFFSET :off"
                ),
                {**params, "lim": pr.size, "off": pr.offset},
            ).all()
    return count, [queries.label_dict(r) for r in rows]


def get_label(db: Database, ws: str, label_id: str) -> dict[str, Any] | None:
    with db.read() as session:
        return queries.get_label(session.connection(), ws, label_id)


_SUBTASKS_SQL = text(
    "SELECT t.id, t.name, t.type FROM label_subtasks s JOIN tasks t ON t.id = s.task_id "
    "WHERE s.label_id = :l ORDER BY s.created, t.id"
)


def label_detail(db: Database, ws: str, label_id: str) -> dict[str, Any] | None:
    """``get_label`` with ``recognition_tasks``: the tasks that refine the label."""
    with db.read() as session:
        conn = session.connection()
        found = queries.get_label(conn, ws, label_id)
        if found is not None:
            found["recognition_tasks"] = [
                {"id": r[0], "name": r[1], "type": r[2]}
                for r in conn.execute(_SUBTASKS_SQL, {"l": label_id})
            ]
    return found


def link_subtask(db: Database, ws: str, label_id: str, task_id: str, *, linked: bool) -> None:
    """Make the task refine the label (``linked``) or stop doing so; 404 for a label,
    400 naming ``task_id`` for a task, not in the workspace. Idempotent."""
    with db.write() as session:
        _label_or_404(session, ws, label_id)
        task = session.get(Task, task_id)
        if task is None or task.workspace_id != ws:
            raise field_error("task_id", f"Task '{task_id}' does not exist in this workspace.")
        link = session.get(LabelSubtask, (label_id, task_id))
        if linked and link is None:
            session.add(LabelSubtask(label_id=label_id, task_id=task_id, created=now_iso()))
        elif not linked and link is not None:
            session.delete(link)


def create_label(
    db: Database,
    ws: str,
    name: str,
    label_type: str,
    description: str,
    output_name: str | None,
) -> dict[str, Any]:
    with db.write() as session:
        label = Label(
            workspace_id=ws,
            name=name,
            type=label_type,
            description=description,
            output_name=output_name,
        )
        session.add(label)
        session.flush()
        found = queries.get_label(session.connection(), ws, label.id)
    assert found is not None
    return found


def label_in_ws(session: Session, ws: str, label_id: str) -> Label:
    """The label, in the caller's transaction; 400 naming ``label_id`` if not there."""
    label = session.get(Label, label_id)
    if label is None or label.workspace_id != ws:
        raise field_error("label_id", f"Label '{label_id}' does not exist in this workspace.")
    return label


def _label_or_404(session: Session, ws: str, label_id: str) -> Label:
    label = session.get(Label, label_id)
    if label is None or label.workspace_id != ws:
        raise not_found("Label not found.")
    return label


def update_label(db: Database, ws: str, label_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes``: the columns to set (``name``, ``description``, ``output_name``)."""
    with db.write() as session:
        label = _label_or_404(session, ws, label_id)
        if "type" in changes and changes.pop("type") != label.type:
            raise field_error(
                "type",
                f"A label's type cannot change (this one is {label.type}); create a new label.",
            )
        for column, value in changes.items():
            setattr(label, column, value)
        session.add(label)
        session.flush()
        found = queries.get_label(session.connection(), ws, label_id)
    assert found is not None
    return found


def delete_label(db: Database, ws: str, label_id: str) -> None:
    with db.write() as session:
        label = _label_or_404(session, ws, label_id)
        # Detach it from every task and every image, then drop it (explicit, so it does
        # not depend on the database enforcing ON DELETE CASCADE).
        session.execute(text("DELETE FROM image_labels WHERE label_id = :l"), {"l": label_id})
        session.execute(text("DELETE FROM task_labels WHERE label_id = :l"), {"l": label_id})
        session.delete(label)
