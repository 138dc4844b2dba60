"""Read-side SQL: objects as the JSON dicts the API answers.

Lists are fetched in a fixed number of queries per page (no N+1): one for the rows,
one for their related rows (labels of images, labels of tasks), one for the count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection


def json_fragment(stored: str | None) -> orjson.Fragment:
    """Stored JSON text, embedded in an answer as is."""
    return orjson.Fragment(stored or "{}")


IMAGE_COLUMNS = (
    "i.id, i.created, i.blob_sha256, i.media_key, i.extension, i.img_width, i.img_height, "
    "i.meta_data, i.test_image, i.real, i.workspace_id, i.verify_count"
)


LABELS_OF_IMAGES = (
    "SELECT il.image_id, l.id, l.name, l.type, il.value FROM image_labels il "
    "JOIN labels l ON l.id = il.label_id"
)


def image_dicts(
    conn: Connection,
    rows: Sequence[Any],
    media_base: str,
    label_rows: Iterable[Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """Image rows (``IMAGE_COLUMNS``) as API dicts. ``label_rows`` are their labels
    (``LABELS_OF_IMAGES`` columns, in order); fetched by id when not given."""
    if not rows:
        return []
    ids = [r[0] for r in rows]
    labels_by_image: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if label_rows is None:
        stmt = text(
            f"{LABELS_OF_IMAGES} WHERE il.image_id IN :ids ORDER BY il.created, il.label_id"
        ).bindparams(bindparam("ids", expanding=True))
        label_rows = conn.execute(stmt, {"ids": ids})
    for image_id, lid, name, ltype, value in label_rows:
        if image_id not in labels_by_image:
            continue  # (a page query raced a concurrent insert; not this page's image)
        entry: dict[str, Any] = {"id": lid, "name": name, "type": ltype}
        if ltype == "value":
            entry["value"] = value
        labels_by_image[image_id].append(entry)
    fragment = orjson.Fragment
    out = []
    for r in rows:
        prefix = f"{media_base}{r[2]}/{r[3]}"
        out.append(
            {
                "id": r[0],
                "created": r[1],
                "img_path": prefix + r[4],
                "thumb_img_path": prefix + "_thumb.jpg",
                "img_width": r[5],
                "img_height": r[6],
                "meta_data": fragment(r[7]),
                "test_image": bool(r[8]),
                "real": bool(r[9]),
                "verifyCount": r[11],
                "workspace": r[10],
                "labels": labels_by_image[r[0]],
            }
        )
    return out


def get_image(conn: Connection, ws: str, image_id: str, media_base: str) -> dict[str, Any] | None:
    rows = conn.execute(
        text(f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = :id AND i.workspace_id = :ws"),
        {"id": image_id, "ws": ws},
    ).all()
    found = image_dicts(conn, rows, media_base)
    return found[0] if found else None


TASK_COLUMNS = (
    "t.id, t.name, t.type, t.description, t.workspace_id, t.production_version, "
    "t.last_train_status, t.created, m.accuracy"
)
TASK_FROM = "tasks t LEFT JOIN models m ON m.task_id = t.id AND m.version = t.production_version"


def task_dicts(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = [r[0] for r in rows]
    labels: dict[str, list[str]] = {i: [] for i in ids}
    stmt = text(
        "SELECT task_id, label_id FROM task_labels WHERE task_id IN :ids ORDER BY created, label_id"
    ).bindparams(bindparam("ids", expanding=True))
    for task_id, label_id in conn.execute(stmt, {"ids": ids}):
        labels[task_id].append(label_id)
    return [
        {
            "id": r[0],
            "name": r[1],
            "type": r[2],
            "description": r[3],
            "workspace": r[4],
            "production_version": r[5],
            "last_train_status": r[6],
            "created": r[7],
            "labels": labels[r[0]],
            "accuracy": r[8],
        }
        for r in rows
    ]


def get_task(conn: Connection, ws: str, task_id: str) -> dict[str, Any] | None:
    rows = conn.execute(
        text(f"SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.id = :id AND t.workspace_id = :ws"),
        {"id": task_id, "ws": ws},
    ).all()
    found = task_dicts(conn, rows)
    return found[0] if found else None


LABEL_COLUMNS = (
    "l.id, l.name, l.type, l.description, l.output_name, l.workspace_id, "
    "(SELECT count(*) FROM image_labels il WHERE il.label_id = l.id), "
    "(SELECT count(*) FROM task_labels tl WHERE tl.label_id = l.id), "
    "l.negative_for_task, l.created"
)


def label_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "name": r[1],
        "type": r[2],
        "description": r[3],
        "output_name": r[4],
        "workspace": r[5],
        "images_count": r[6],
        "tasks_count": r[7],
        # The hosted service counts a label's detection objects; this server has none.
        "objects_count": 0,
        "negative_for_task": r[8],
        "created": r[9],
    }


def get_label(conn: Connection, ws: str, label_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        text(f"SELECT {LABEL_COLUMNS} FROM labels l WHERE l.id = :id AND l.workspace_id = :ws"),
        {"id": label_id, "ws": ws},
    ).first()
    return label_dict(row) if row is not None else None


MODEL_COLUMNS = (
    "m.id, m.task_id, t.name, m.version, m.train_status, m.created, m.accuracy, "
    "m.precision, m.recall, m.metrics, m.detail, m.backend"
)


def model_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "task": r[1],
        "task_name": r[2],
        "version": r[3],
        "train_status": r[4],
        "created": r[5],
        "accuracy": r[6],
        "precision": r[7],
        "recall": r[8],
        "metrics": json_fragment(r[9]),
        "detail": r[10],
        "backend": r[11],
    }
