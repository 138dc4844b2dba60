"""Many images changed at once (``training-image/update/``, the web gallery's relabel):
labels added and removed, flags set, in one transaction, each image that changed with
its events (``imageevents``). Raises the API's 400 for a label not in the workspace,
before anything changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.sql.elements import BindParameter

from ..errors import field_error
from . import imageevents
from .db import Database
from .imageevents import LABELLED, UNLABELLED, event, events_for
from .tables import now_iso

_CHUNK = 500


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def bulk_update(
    db: Database,
    ws: str,
    *,
    images: list[str],
    filter_labels: list[str],
    add: list[str],
    remove: list[str],
    flags: dict[str, bool],
    user_id: str | None,
) -> int:
    """In one transaction: the images ``images`` of the workspace (or else those with
    any of ``filter_labels``) get the labels ``add``, lose ``remove`` and have the
    columns ``flags`` set. A label not in the workspace (400) changes nothing. Answers
    how many images matched. Each image that changed gets its events."""
    names: dict[str, str] = {}
    with db.write() as session:
        conn = session.connection()
        for name, ids in (("labels-add", add), ("labels-remove", remove)):
            if ids:
                known = {
                    r[0]: r[1]
                    for r in conn.execute(
                        text(
                            "SELECT id, name FROM labels WHERE workspace_id = :ws AND id IN :ids"
                        ).bindparams(bindparam("ids", expanding=True)),
                        {"ws": ws, "ids": ids},
                    )
                }
                names.update(known)
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
        for chunk in _chunks(targets):
            ids_bind: BindParameter[Any] = bindparam("ids", expanding=True)
            for label_id in remove:
                had = conn.execute(
                    text(
                        "SELECT image_id, value FROM image_labels WHERE label_id = :l "
                        "AND image_id IN :ids"
                    ).bindparams(ids_bind),
                    {"l": label_id, "ids": chunk},
                ).all()
                if not had:
                    continue
                conn.execute(
                    text(
                        "DELETE FROM image_labels WHERE label_id = :l AND image_id IN :ids"
                    ).bindparams(ids_bind),
                    {"l": label_id, "ids": [r[0] for r in had]},
                )
                imageevents.record(
                    conn,
                    [
                        event(r[0], UNLABELLED, user_id, now, label=names[label_id], old=r[1])
                        for r in had
                    ],
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
                fresh = [i for i in chunk if i not in present]
                if fresh:
                    conn.execute(
                        text(
                            "INSERT INTO image_labels (image_id, label_id, value, created) "
                            "VALUES (:i, :l, NULL, :c)"
                        ),
                        [{"i": i, "l": label_id, "c": now} for i in fresh],
                    )
                    imageevents.record(
                        conn, events_for(fresh, LABELLED, user_id, now, label=names[label_id])
                    )
            for column, flag in flags.items():
                changing = [
                    r[0]
                    for r in conn.execute(
                        text(
                            f"SELECT id FROM images WHERE id IN :ids AND {column} != :v"
                        ).bindparams(ids_bind),
                        {"v": flag, "ids": chunk},
                    )
                ]
                if changing:
                    conn.execute(
                        text(f"UPDATE images SET {column} = :v WHERE id IN :ids").bindparams(
                            ids_bind
                        ),
                        {"v": flag, "ids": changing},
                    )
                    imageevents.record(
                        conn, events_for(changing, column, user_id, now, old=not flag, new=flag)
                    )
    return len(targets)
