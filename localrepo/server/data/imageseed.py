"""New images in bulk, straight into a task: what uploads through the API
(``uploads.py``) followed by links of the task's labels would leave, without a request
per image. ``benchmarks/million.py --sync`` seeds a server with a million images this
way (through the API that takes hours).

For each image, as an upload: its bytes checked and, unless ``noresize``, shrunk
(``imaging.prepare``), the blob stored (``Storage.put``, under the blob's lock) before
its row is committed, the row (``images.new_row``) and its ``uploaded`` event; then, as
a link, its labels (``image_labels``) and their ``labelled`` events. The listing's
ready docs (``imagedocs``) and the change feed (``changes``) follow from the triggers,
as for any write. A label name the task has no label of is created (the task's label
type) and attached to the task.

Bytes the workspace holds already (the same sha256 as uploaded: an upload would answer
the duplicate error) are skipped, and so are repeats within the input. An image that
is not one the server stores, or labels that do not fit the task (a value for a
category, none for a value label), raise ``SeedRefused`` naming the image before its
chunk is written; the chunks before it stay.

Chunks of ``chunk`` images, one write transaction each. A chunk's blobs are stored
before its transaction (each under its lock, as an upload does) and checked again
under the lock after the commit: a delete of another image with the same bytes that ran
in between (it saw no row of ours yet, and removed the blob) is undone by storing them
again. A failed transaction removes the blobs it created that no image uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, text

from ..bodies import dump_json_object
from ..imaging import ImageRejected, StoredImage, prepare
from . import imageevents
from .db import Database
from .imageevents import LABELLED, UPLOADED, event
from .images import INSERT_IMAGE, blob_referenced, new_row
from .storage import Storage
from .tables import new_id, now_iso
from .tasks import LABEL_TYPE_FOR_TASK


class SeedRefused(ValueError):
    """The input cannot be seeded as it is; the message names the image and why."""


@dataclass(frozen=True)
class SeedImage:
    """One image to add: ``name`` shows in errors (its file, say); ``labels``: (label
    name, value) pairs, the value None but for a regression task's labels."""

    name: str
    data: bytes
    labels: tuple[tuple[str, float | None], ...]
    meta_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Seeded:
    """What a seed did: images added, skipped as already stored, labels created."""

    added: int
    duplicates: int
    labels_created: int


@dataclass(frozen=True)
class _Ready:
    image: SeedImage
    upload_sha: str
    stored: StoredImage


def seed_images(
    db: Database,
    blobs: Storage,
    ws: str,
    task_id: str,
    images: Iterable[SeedImage],
    *,
    user_id: str | None,
    noresize: bool = True,
    resize_to: int = 1024,
    chunk: int = 5000,
    workers: int = 2,
) -> Seeded:
    """Add ``images`` to the workspace ``ws``, labelled in its task ``task_id`` (see the
    module's docstring), ``chunk`` at a time; ``workers`` threads check and store the
    bytes (2: on this machine's disk concurrent fsyncs queue, and more threads were
    slower, docs/benchmarks.md "A million images"). ``user_id``: who the images' events
    name."""
    labels = _TaskLabels(db, ws, task_id)
    added = duplicates = 0
    source = iter(images)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed") as pool:
        while batch := list(islice(source, chunk)):
            fresh, skipped = _fresh(db, ws, batch)
            duplicates += skipped
            for image in fresh:
                labels.check(image)
            ready = list(pool.map(lambda i: _prepared(i, noresize, resize_to), fresh))
            created = list(pool.map(lambda r: _put(blobs, r.stored), ready))
            try:
                _write(db, ws, ready, labels, user_id)
            except BaseException:
                for r, made in zip(ready, created, strict=True):
                    if made:
                        with blobs.locked(r.stored.sha256):
                            if not blob_referenced(db, r.stored.sha256):
                                blobs.remove(r.stored.sha256)
                raise
            list(pool.map(lambda r: _restore(blobs, r.stored), ready))
            added += len(ready)
    return Seeded(added, duplicates, labels.created)


def _fresh(db: Database, ws: str, batch: list[SeedImage]) -> tuple[list[SeedImage], int]:
    """The images of ``batch`` whose bytes the workspace lacks, first of repeats only;
    and how many were skipped."""
    by_sha: dict[str, SeedImage] = {}
    for image in batch:
        by_sha.setdefault(hashlib.sha256(image.data).hexdigest(), image)
    stored: set[str] = set()
    shas = list(by_sha)
    query = text(
        "SELECT upload_sha256 FROM images WHERE workspace_id = :ws AND upload_sha256 IN :h"
    ).bindparams(bindparam("h", expanding=True))
    with db.read() as session:
        conn = session.connection()
        for start in range(0, len(shas), 500):
            rows = conn.execute(query, {"ws": ws, "h": shas[start : start + 500]})
            stored.update(str(r[0]) for r in rows)
    fresh = [image for sha, image in by_sha.items() if sha not in stored]
    return fresh, len(batch) - len(fresh)


def _prepared(image: SeedImage, noresize: bool, resize_to: int) -> _Ready:
    try:
        stored = prepare(image.data, noresize=noresize, resize_to=resize_to)
    except ImageRejected as exc:
        raise SeedRefused(f"{image.name}: not an image this server stores ({exc})") from exc
    return _Ready(image, hashlib.sha256(image.data).hexdigest(), stored)


def _put(blobs: Storage, stored: StoredImage) -> bool:
    with blobs.locked(stored.sha256):
        return blobs.put(stored.sha256, stored.data)


def _restore(blobs: Storage, stored: StoredImage) -> None:
    """The blob again if a delete took it between its store and the commit."""
    with blobs.locked(stored.sha256):
        if not blobs.exists(stored.sha256):
            blobs.put(stored.sha256, stored.data)


_INSERT_EVENT = text(imageevents.INSERT_SQL)
_INSERT_LINK = text(
    "INSERT INTO image_labels (image_id, label_id, value, created) VALUES (:i, :l, :v, :c)"
)


def _write(
    db: Database, ws: str, ready: list[_Ready], labels: _TaskLabels, user_id: str | None
) -> None:
    """One chunk's rows, events and links, in one write transaction."""
    if not ready:
        return
    rows = [
        new_row(
            ws,
            r.upload_sha,
            r.stored,
            dump_json_object(r.image.meta_data),
            test_image=False,
            real=True,
        )
        for r in ready
    ]
    with db.write_conn() as conn:
        ids = labels.ensure(conn, {name for r in ready for name, _ in r.image.labels})
        conn.execute(INSERT_IMAGE, rows)
        conn.execute(
            _INSERT_EVENT, [event(row["id"], UPLOADED, user_id, row["created"]) for row in rows]
        )
        now = now_iso()
        links = [
            (row["id"], name, value)
            for row, r in zip(rows, ready, strict=True)
            for name, value in r.image.labels
        ]
        if links:
            conn.execute(
                _INSERT_LINK, [{"i": i, "l": ids[name], "v": v, "c": now} for i, name, v in links]
            )
            conn.execute(
                _INSERT_EVENT,
                [event(i, LABELLED, user_id, now, label=name, new=v) for i, name, v in links],
            )


class _TaskLabels:
    """The task's labels by name, created and attached when missing."""

    def __init__(self, db: Database, ws: str, task_id: str):
        with db.read() as session:
            conn = session.connection()
            found = conn.execute(
                text("SELECT type FROM tasks WHERE id = :t AND workspace_id = :ws"),
                {"t": task_id, "ws": ws},
            ).first()
            if found is None:
                raise SeedRefused(f"task {task_id}: no such task in workspace {ws}")
            self.type = LABEL_TYPE_FOR_TASK[found[0]]
            self.ids = {
                str(name): str(label_id)
                for label_id, name in conn.execute(
                    text(
                        "SELECT l.id, l.name FROM task_labels tl JOIN labels l "
                        "ON l.id = tl.label_id WHERE tl.task_id = :t AND l.type = :type "
                        "AND l.negative_for_task IS NULL ORDER BY l.created DESC, l.id DESC"
                    ),
                    {"t": task_id, "type": self.type},
                )
            }  # (oldest last: of two labels of one name, the oldest wins, as for the client)
        self.ws, self.task_id, self.created = ws, task_id, 0

    def check(self, image: SeedImage) -> None:
        for name, value in image.labels:
            if not name:
                raise SeedRefused(f"{image.name}: a label has no name")
            if (value is None) == (self.type == "value"):
                raise SeedRefused(
                    f"{image.name}: label {name!r} "
                    + ("needs a value (a regression task)" if value is None else "takes no value")
                )

    def ensure(self, conn: Any, names: set[str]) -> dict[str, str]:
        """The ids of ``names``, the missing ones created and attached (in ``conn``'s
        transaction: rolled back with it, and the seed ends there)."""
        for name in sorted(names - set(self.ids)):
            label_id, now = new_id(), now_iso()
            conn.execute(
                text(
                    "INSERT INTO labels (id, workspace_id, name, type, description, created) "
                    "VALUES (:id, :ws, :n, :type, '', :c)"
                ),
                {"id": label_id, "ws": self.ws, "n": name, "type": self.type, "c": now},
            )
            conn.execute(
                text("INSERT INTO task_labels (task_id, label_id, created) VALUES (:t, :l, :c)"),
                {"t": self.task_id, "l": label_id, "c": now},
            )
            self.ids[name] = label_id
            self.created += 1
        return self.ids
