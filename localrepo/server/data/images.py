"""Training images in the database: one image, its labels, deleting one (and its bytes
when they were the last), and the rows the upload pipeline (``uploads.py``) reads and
writes. (The listing is ``imagelist``.)

Writes raise the API's errors (404, 400) inside their transaction, so a refused request
leaves nothing behind. Every change is recorded, in its own transaction, as events of
the image's history (``imageevents``), with the user who made it (``user_id``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy
from sqlalchemy import text
from sqlmodel import Session

from ..bodies import dump_json_object
from ..errors import field_error, not_found
from ..imaging import StoredImage
from . import imageevents, queries
from .db import Database
from .imageevents import LABELLED, UNLABELLED, UPLOADED, VALUE, event
from .labels import label_in_ws
from .storage import Storage
from .tables import Image, ImageLabel, now_iso

# ---- one image -----------------------------------------------------------------------------


def get_image(db: Database, ws: str, image_id: str, media_base: str) -> dict[str, Any] | None:
    with db.read() as session:
        return queries.get_image(session.connection(), ws, image_id, media_base)


def _locked_image(session: Session, ws: str, image_id: str) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.workspace_id != ws:
        raise not_found("Image not found.")
    return image


def update_image(
    db: Database,
    ws: str,
    image_id: str,
    changes: dict[str, Any],
    media_base: str,
    *,
    user_id: str | None,
) -> dict[str, Any]:
    """``changes``: the columns to set (``meta_data`` as an object, ``test_image``,
    ``real``); answers the image."""
    with db.write() as session:
        image = _locked_image(session, ws, image_id)
        events, now = [], now_iso()
        for column, value in changes.items():
            if column == "meta_data":
                keys = imageevents.changed_keys(_stored_object(image.meta_data), value or {})
                if keys:
                    events.append(event(image_id, imageevents.METADATA, user_id, now, new=keys))
                image.meta_data = dump_json_object(value)
                continue
            if bool(getattr(image, column)) != bool(value):
                old = getattr(image, column)
                events.append(event(image_id, column, user_id, now, old=old, new=value))
            setattr(image, column, value)
        session.add(image)
        session.flush()
        imageevents.record(session.connection(), events)
        found = queries.get_image(session.connection(), ws, image_id, media_base)
    assert found is not None
    return found


def _stored_object(stored: str) -> dict[str, Any]:
    try:
        found = orjson.loads(stored or "{}")
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def delete_image(db: Database, blobs: Storage, ws: str, image_id: str) -> None:
    """The image and its label links; its bytes (and their cached features) too when no
    other image has them."""
    with db.write() as session:
        image = _locked_image(session, ws, image_id)
        sha = image.blob_sha256
        session.execute(text("DELETE FROM image_labels WHERE image_id = :i"), {"i": image_id})
        session.delete(image)
    with blobs.locked(sha):
        if not blob_referenced(db, sha):
            blobs.remove(sha)
            # Its cached features go with the bytes (a new upload computes them again).
            db.write_one(text("DELETE FROM embeddings WHERE sha256 = :h"), {"h": sha})


# ---- labels of one image --------------------------------------------------------------------


def set_label(
    db: Database,
    ws: str,
    image_id: str,
    label_id: str,
    value: float | None,
    value_given: bool,
    media_base: str,
    *,
    user_id: str | None,
) -> dict[str, Any]:
    """Attach the label (and set its value when ``value_given``); answers the image."""
    with db.write() as session:
        _locked_image(session, ws, image_id)
        label = label_in_ws(session, ws, label_id)
        if value_given and value is not None and label.type != "value":
            raise field_error(
                "value", f"Only value labels take a value; '{label.name}' is a {label.type} label."
            )
        link = session.get(ImageLabel, (image_id, label_id))
        now, events = now_iso(), []
        if link is None:
            session.add(ImageLabel(image_id=image_id, label_id=label_id, value=value, created=now))
            events.append(event(image_id, LABELLED, user_id, now, label=label.name, new=value))
        elif value_given and link.value != value:
            events.append(
                event(image_id, VALUE, user_id, now, label=label.name, old=link.value, new=value)
            )
            link.value = value
            session.add(link)
        session.flush()
        imageevents.record(session.connection(), events)
        found = queries.get_image(session.connection(), ws, image_id, media_base)
    assert found is not None
    return found


def unset_label(
    db: Database, ws: str, image_id: str, label_id: str, media_base: str, *, user_id: str | None
) -> dict[str, Any]:
    with db.write() as session:
        _locked_image(session, ws, image_id)
        label = label_in_ws(session, ws, label_id)
        link = session.get(ImageLabel, (image_id, label_id))
        if link is not None:
            old = link.value
            session.execute(
                text("DELETE FROM image_labels WHERE image_id = :i AND label_id = :l"),
                {"i": image_id, "l": label_id},
            )
            imageevents.record(
                session.connection(),
                [event(image_id, UNLABELLED, user_id, now_iso(), label=label.name, old=old)],
            )
        found = queries.get_image(session.connection(), ws, image_id, media_base)
    assert found is not None
    return found


def link_labels(
    db: Database,
    ws: str,
    image_id: str,
    labels: Iterable[tuple[str, float | None]],
    *,
    user_id: str | None,
) -> None:
    """Attach (label id, value) pairs to a new image, skipping labels no longer in the
    workspace (a classified image stored with its predicted labels)."""
    now = now_iso()
    with db.write_conn() as conn:
        for label_id, value in labels:
            exists = conn.execute(
                text("SELECT name FROM labels WHERE id = :l AND workspace_id = :ws"),
                {"l": label_id, "ws": ws},
            ).first()
            if exists is None:
                continue  # deleted since the training
            imageevents.record(
                conn, [event(image_id, LABELLED, user_id, now, label=exists[0], new=value)]
            )
            conn.execute(
                text(
                    "INSERT INTO image_labels (image_id, label_id, value, created) "
                    "VALUES (:i, :l, :v, :c)"
                ),
                {"i": image_id, "l": label_id, "v": value, "c": now},
            )


# ---- for the upload pipeline and the media ----------------------------------------------------

_EXISTING_SQL = text("SELECT id FROM images WHERE workspace_id = :ws AND upload_sha256 = :h")
_BLOB_USED_SQL = text("SELECT 1 FROM images WHERE blob_sha256 = :h LIMIT 1")
_IMAGE_COLUMNS = [c.name for c in Image.__table__.columns]  # type: ignore[attr-defined]
INSERT_IMAGE = text(
    f"INSERT INTO images ({', '.join(_IMAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _IMAGE_COLUMNS)})"
)
_MEDIA_SQL = text("SELECT blob_sha256, extension, content_type FROM images WHERE media_key = :k")


def new_row(
    ws: str, upload_sha: str, stored: StoredImage, meta_data: str, *, test_image: bool, real: bool
) -> dict[str, Any]:
    """A new image's row (every column of ``images``): ``upload_sha`` the sha256 of the
    bytes as uploaded, ``stored`` what ``imaging.prepare`` kept, ``meta_data`` JSON text."""
    return dict(
        id=str(uuid.uuid4()),
        created=now_iso(),
        workspace_id=ws,
        upload_sha256=upload_sha,
        blob_sha256=stored.sha256,
        media_key=secrets.token_hex(16),
        extension=stored.extension,
        content_type=stored.content_type,
        size_bytes=len(stored.data),
        img_width=stored.width,
        img_height=stored.height,
        meta_data=meta_data,
        test_image=test_image,
        real=real,
        verify_count=0,
    )


def existing_image(db: Database, ws: str, upload_sha: str) -> str | None:
    """The id of the workspace's image uploaded with these bytes (sha256), if any."""
    row = db.first(_EXISTING_SQL, {"ws": ws, "h": upload_sha})
    return row[0] if row else None


def blob_referenced(db: Database, sha: str) -> bool:
    """Whether an image has these stored bytes (sha256)."""
    return db.first(_BLOB_USED_SQL, {"h": sha}) is not None


_INSERT_EVENT = text(imageevents.INSERT_SQL)


def _image_inserts(row: dict[str, Any], user_id: str | None) -> list[tuple[Any, dict[str, Any]]]:
    """The new image's row and its upload event."""
    uploaded = event(row["id"], UPLOADED, user_id, row["created"])
    return [(INSERT_IMAGE, row), (_INSERT_EVENT, uploaded)]


def insert_image(db: Database, row: dict[str, Any], *, user_id: str | None) -> None:
    """A new image row (every column of ``images``) and its upload event, in their own
    write transaction: plain inserts (the ORM unit of work costs more than the rows)."""
    db.write_all(_image_inserts(row, user_id))


NO_SUCH_LABEL = "The label chosen for the upload no longer exists (it was deleted meanwhile)."


def insert_labelled_image(
    db: Database, row: dict[str, Any], label_id: str, *, user_id: str | None
) -> None:
    """A new image row with the label ``label_id`` attached (and their events), in one
    write transaction: a label gone from the workspace refuses the image too (400 on
    ``label``), and a failure of the label's link rolls the image back, so an upload
    never leaves an image without the label it was sent with."""
    with db.write_conn() as conn:
        found = conn.execute(
            text("SELECT name FROM labels WHERE id = :l AND workspace_id = :ws"),
            {"l": label_id, "ws": row["workspace_id"]},
        ).first()
        if found is None:
            raise field_error("label", NO_SUCH_LABEL)
        for statement, params in _image_inserts(row, user_id):
            conn.execute(statement, params)
        conn.execute(
            text(
                "INSERT INTO image_labels (image_id, label_id, value, created) "
                "VALUES (:i, :l, NULL, :c)"
            ),
            {"i": row["id"], "l": label_id, "c": row["created"]},
        )
        labelled = event(row["id"], LABELLED, user_id, row["created"], label=found[0])
        imageevents.record(conn, [labelled])


def try_insert_image(db: Database, row: dict[str, Any], *, user_id: str | None) -> bool:
    """``insert_image`` if it need not wait for the write lock (see
    ``Database.try_write_all``): False, with nothing done, otherwise."""
    return db.try_write_all(_image_inserts(row, user_id))


def blob_of(db: Database, ws: str, image_id: str) -> Sequence[Any] | None:
    """(blob sha256, content type) of the workspace's image ``image_id``, or None."""
    with db.read() as session:
        return (
            session.connection()
            .execute(
                text(
                    "SELECT blob_sha256, content_type FROM images WHERE id = :i AND workspace_id = :ws"
                ),
                {"i": image_id, "ws": ws},
            )
            .first()
        )


def media_file(db: Database, media_key: str) -> Sequence[Any] | None:
    """(blob sha256, extension, content type) of the image with this media key."""
    with db.read() as session:
        return session.connection().execute(_MEDIA_SQL, {"k": media_key}).first()


# ---- the blob store's check (fsck.py) -------------------------------------------------------


def referenced_blobs(db: Database) -> frozenset[str]:
    """Every blob hash an image refers to."""
    with db.read() as session:
        rows = session.connection().execute(text("SELECT DISTINCT blob_sha256 FROM images"))
        return frozenset(str(r[0]) for r in rows)


def images_of_blobs(db: Database, shas: Iterable[str]) -> list[str]:
    """The ids of the images stored as any of these blob hashes, sorted."""
    wanted = list(shas)
    found: list[str] = []
    stmt = text("SELECT id FROM images WHERE blob_sha256 IN :h").bindparams(
        sqlalchemy.bindparam("h", expanding=True)
    )
    with db.read() as session:
        conn = session.connection()
        for start in range(0, len(wanted), 500):
            rows = conn.execute(stmt, {"h": wanted[start : start + 500]})
            found.extend(str(r[0]) for r in rows)
    return sorted(found)
