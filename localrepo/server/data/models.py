"""Trained models (``model/``) in the database: a page of them, one, deleting one, and
what ``classify/`` reads of a task's model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text

from ..errors import bad_request, field_error, not_found
from ..pagination import PageRequest, check_page
from . import queries, training
from .db import Database

if TYPE_CHECKING:  # (a type only: data/ imports nothing of ml/)
    from ..ml.heads import Head

_MODEL_FROM = "models m JOIN tasks t ON t.id = m.task_id"


def model_page(
    db: Database, ws: str, pr: PageRequest, *, task: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """The count of the workspace's models (of ``task`` if given) and the page ``pr`` of
    them (404 past the last)."""
    cond = "t.workspace_id = :ws"
    params: dict[str, object] = {"ws": ws}
    if task:
        cond += " AND m.task_id = :task"
        params["task"] = task
    with db.read() as session:
        conn = session.connection()
        count = conn.execute(
            text(f"SELECT count(*) FROM {_MODEL_FROM} WHERE {cond}"), params
        ).scalar_one()
        check_page(pr, count)
        rows = conn.execute(
            text(
                f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} WHERE {cond} "
                "ORDER BY m.task_id, m.version LIMIT :lim OFFSET :off"
            ),
            {**params, "lim": pr.size, "off": pr.offset},
        ).all()
    return count, [queries.model_dict(r) for r in rows]


def get_model(db: Database, ws: str, model_id: str) -> dict[str, Any] | None:
    with db.read() as session:
        row = (
            session.connection()
            .execute(
                text(
                    f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} "
                    "WHERE m.id = :id AND t.workspace_id = :ws"
                ),
                {"id": model_id, "ws": ws},
            )
            .first()
        )
    return queries.model_dict(row) if row is not None else None


def delete_model(db: Database, ws: str, model_id: str) -> None:
    """404 if not there; 400 for the production version and one queued or training."""
    with db.write() as session:
        conn = session.connection()
        row = conn.execute(
            text(
                "SELECT m.task_id, m.version, t.production_version, m.train_status FROM models m "
                "JOIN tasks t ON t.id = m.task_id WHERE m.id = :id AND t.workspace_id = :ws"
            ),
            {"id": model_id, "ws": ws},
        ).first()
        if row is None:
            raise not_found("Model not found.")
        if row[1] == row[2]:
            raise bad_request("This model is the task's production version; it cannot be deleted.")
        if row[3] in (training.WAITING, training.IN_TRAINING):
            raise bad_request("This model is queued or training; delete it when it has finished.")
        conn.execute(
            text("UPDATE training_jobs SET model_id = NULL WHERE model_id = :id"), {"id": model_id}
        )
        conn.execute(text("DELETE FROM model_heads WHERE model_id = :id"), {"id": model_id})
        conn.execute(text("DELETE FROM models WHERE id = :id"), {"id": model_id})


def classify_model(
    db: Database,
    ws: str,
    task_id: str,
    version: int | None,
    load_head: Callable[[str], Head | None],
) -> tuple[Sequence[Any], Head, list[Sequence[Any]]]:
    """What ``classify/`` needs of the task's production version (or ``version``), in
    one read transaction: the model's row ``(id, version, backend)``, its head
    (``load_head(model id)``) and the rows ``(id, name, output_name,
    negative_for_task)`` of its labels (even those detached from the task since) and
    of the task's negative label. 404 / 400 when there is none."""
    with db.read() as session:
        conn = session.connection()
        task = conn.execute(
            text(
                "SELECT id, type, production_version FROM tasks "
                "WHERE id = :t AND workspace_id = :ws"
            ),
            {"t": task_id, "ws": ws},
        ).first()
        if task is None:
            raise not_found("Task not found.")
        trained = training.trained_versions(conn, task_id)
        wanted = version if version is not None else task[2]
        if wanted is None:
            raise bad_request(
                f"The task has no trained model yet: train it first (POST task/{task_id}/train/)."
            )
        model = conn.execute(
            text(
                "SELECT id, version, backend FROM models "
                "WHERE task_id = :t AND version = :v AND train_status = :s"
            ),
            {"t": task_id, "v": wanted, "s": training.TRAINED},
        ).first()
        if model is None:
            listed = ", ".join(str(v) for v in trained) or "none"
            raise field_error(
                "version",
                f"Version {wanted} of this task does not exist or is not trained "
                f"(trained versions: {listed}).",
            )
        head = load_head(model[0])
        if head is None:
            raise bad_request(f"Version {wanted} of this task has no stored model; train it again.")
        label_rows = conn.execute(
            text(
                "SELECT l.id, l.name, l.output_name, l.negative_for_task FROM labels l "
                "WHERE l.workspace_id = :ws AND (l.negative_for_task = :t OR l.id IN :ids)"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ws": ws, "t": task_id, "ids": head.label_ids or [""]},
        ).all()
    return model, head, list(label_rows)
