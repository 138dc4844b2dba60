"""Annotations of the ``annotate/v2/`` routes: verifications of an image (each one
counted in ``images.verify_count``, the API's ``verifyCount``, in the same transaction)
and points (named JSON, optionally about an image). Every read and write is scoped to
one workspace; an image id outside it is a 400 naming the field, a verification or
point id outside it a 404."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from ..errors import field_error, not_found
from ..pagination import PageRequest, check_page
from .db import Database
from .tables import Image, Point, Verification, now_iso

_VERIFICATIONS = (
    "v.id, v.image_id, v.user_id, v.created",
    "verifications v JOIN images i ON i.id = v.image_id",
    "i.workspace_id = :ws",
    "v.created, v.id",
)
_POINTS = (
    "p.id, p.image_id, p.name, p.data, p.created, p.workspace_id",
    "points p",
    "p.workspace_id = :ws",
    "p.created, p.id",
)


def _image_in_ws(session: Session, ws: str, image_id: str, field: str) -> Image:
    image = session.get(Image, image_id, with_for_update=True)
    if image is None or image.workspace_id != ws:
        raise field_error(field, f"Image '{image_id}' does not exist in this workspace.")
    return image


def _verification_dict(r: Any) -> dict[str, Any]:
    return {"id": r[0], "image": r[1], "user": r[2], "created": r[3]}


def _point_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "image": r[1],
        "name": r[2],
        "data": orjson.Fragment(r[3]),
        "created": r[4],
        "workspace": r[5],
    }


def _page(
    db: Database,
    shape: tuple[str, str, str, str],
    filters: dict[str, str | None],
    ws: str,
    pr: PageRequest,
) -> tuple[int, list[Any]]:
    """The count and page ``pr`` of rows of ``shape`` (columns, from, workspace
    condition, order) in ``ws`` whose columns equal the non-None ``filters``."""
    columns, source, in_ws, order = shape
    where, params = [in_ws], {"ws": ws}
    for n, (column, value) in enumerate(filters.items()):
        if value is not None:
            where.append(f"{column} = :f{n}")
            params[f"f{n}"] = value
    cond = " AND ".join(where)
    with db.read() as session:
        conn = session.connection()
        count = conn.execute(text(f"SELECT count(*) FROM {source} WHERE {cond}"), params)
        total = int(count.scalar_one())
        check_page(pr, total)
        rows = conn.execute(
            text(
                f"SELECT {columns} FROM {source} WHERE {cond} ORDER BY {order} "
                "LIMIT :lim OFFSET :off"
            ),
            {**params, "lim": pr.size, "off": pr.offset},
        ).all()
    return total, list(rows)


# ---- verifications -------------------------------------------------------------------------


def verification_page(
    db: Database, ws: str, pr: PageRequest, *, image: str | None, user: str | None
) -> tuple[int, list[dict[str, Any]]]:
    count, rows = _page(db, _VERIFICATIONS, {"v.image_id": image, "v.user_id": user}, ws, pr)
    return count, [_verification_dict(r) for r in rows]


def create_verification(db: Database, ws: str, image_id: str, user_id: str) -> dict[str, Any]:
    """A verification of the image by ``user_id``; the image's count goes up by one."""
    with db.write() as session:
        image = _image_in_ws(session, ws, image_id, "image_id")
        row = Verification(image_id=image_id, user_id=user_id, created=now_iso())
        session.add(row)
        image.verify_count += 1
        session.add(image)
    return _verification_dict((row.id, row.image_id, row.user_id, row.created))


def delete_verification(db: Database, ws: str, verification_id: str) -> None:
    with db.write() as session:
        row = session.get(Verification, verification_id)
        image = None if row is None else session.get(Image, row.image_id, with_for_update=True)
        if row is None or image is None or image.workspace_id != ws:
            raise not_found("Verification not found.")
        session.delete(row)
        image.verify_count = max(0, image.verify_count - 1)
        session.add(image)


# ---- points ----------------------------------------------------------------------------------


def point_page(
    db: Database, ws: str, pr: PageRequest, *, image: str | None, name: str | None
) -> tuple[int, list[dict[str, Any]]]:
    count, rows = _page(db, _POINTS, {"p.image_id": image, "p.name": name}, ws, pr)
    return count, [_point_dict(r) for r in rows]


def create_point(
    db: Database, ws: str, image_id: str | None, name: str, data_json: str
) -> dict[str, Any]:
    """A point; ``data_json`` is its data as JSON text (kept verbatim)."""
    with db.write() as session:
        if image_id is not None:
            _image_in_ws(session, ws, image_id, "image")
        row = Point(
            workspace_id=ws, image_id=image_id, name=name, data=data_json, created=now_iso()
        )
        session.add(row)
    return _point_dict((row.id, row.image_id, row.name, row.data, row.created, ws))


def get_point(db: Database, ws: str, point_id: str) -> dict[str, Any]:
    with db.read() as session:
        row = session.get(Point, point_id)
    if row is None or row.workspace_id != ws:
        raise not_found("Point not found.")
    return _point_dict((row.id, row.image_id, row.name, row.data, row.created, ws))


def delete_point(db: Database, ws: str, point_id: str) -> None:
    with db.write() as session:
        row = session.get(Point, point_id)
        if row is None or row.workspace_id != ws:
            raise not_found("Point not found.")
        session.delete(row)
