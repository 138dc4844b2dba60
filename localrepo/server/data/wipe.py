"""Wiping a label (``DELETE label/<id>/wipe``): the label, every image of the workspace
that carries it, and the stored bytes no other image has (docs/api.md, "Labels").

The rows go in one transaction (a 404 for a label not in the workspace leaves
everything); the bytes are removed after it, each under its blob lock and only when no
image refers to them any more, as ``images.delete_image`` does for one image.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text

from ..errors import not_found
from .db import Database
from .images import blob_referenced
from .storage import Storage
from .tables import Label

_CHUNK = 500
_CARRIERS_SQL = text(
    "SELECT i.id, i.blob_sha256 FROM images i JOIN image_labels il ON il.image_id = i.id "
    "WHERE il.label_id = :l AND i.workspace_id = :ws"
)


def wipe_label(db: Database, blobs: Storage, ws: str, label_id: str) -> int:
    """Delete the label and the images carrying it; answers how many images went."""
    with db.write() as session:
        label = session.get(Label, label_id)
        if label is None or label.workspace_id != ws:
            raise not_found("Label not found.")
        conn = session.connection()
        carriers = [(r[0], r[1]) for r in conn.execute(_CARRIERS_SQL, {"l": label_id, "ws": ws})]
        ids = [image_id for image_id, _ in carriers]
        for start in range(0, len(ids), _CHUNK):
            chunk = {"ids": ids[start : start + _CHUNK]}
            for table, column in (("image_labels", "image_id"), ("images", "id")):
                conn.execute(
                    text(f"DELETE FROM {table} WHERE {column} IN :ids").bindparams(
                        bindparam("ids", expanding=True)
                    ),
                    chunk,
                )
        conn.execute(text("DELETE FROM image_labels WHERE label_id = :l"), {"l": label_id})
        conn.execute(text("DELETE FROM task_labels WHERE label_id = :l"), {"l": label_id})
        session.delete(label)
    for sha in dict.fromkeys(sha for _, sha in carriers):
        with blobs.locked(sha):
            if not blob_referenced(db, sha):
                blobs.remove(sha)
                db.write_one(text("DELETE FROM embeddings WHERE sha256 = :h"), {"h": sha})
    return len(ids)
