"""Media: the stored image bytes and thumbnails, served without auth.

URLs are ``media/<blob sha256>/<random key><ext>`` and ``..._thumb.jpg``: unguessable
(the key is 128 random bits, per image) and dead once the image is deleted.
"""

from __future__ import annotations

import re
from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Request
from starlette.responses import FileResponse, Response

from ..context import ServerContext, get_ctx
from ..data import images
from ..decodebudget import DecodeBusy, busy_error
from ..errors import not_found
from ..imaging import make_thumbnail

router = APIRouter(tags=["media"])

_NAME = re.compile(r"^([0-9a-f]{32})(_thumb\.jpg|\.[a-z]{2,5})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CACHE = "private, max-age=31536000, immutable"


@router.api_route(
    "/media/{sha256}/{filename}",
    methods=["GET", "HEAD"],
    response_class=Response,
    responses={200: {"content": {"image/*": {}}, "description": "The image bytes"}},
)
def media(
    request: Request,
    sha256: str = Path(pattern=_SHA.pattern, description="sha256 of the stored bytes"),
    filename: str = Path(pattern=_NAME.pattern, description="<key><ext> or <key>_thumb.jpg"),
) -> Response:
    match = _NAME.match(filename)
    if not match:
        raise not_found()
    key, suffix = match.groups()
    ctx = get_ctx(request)
    row = images.media_file(ctx.db, key)
    if row is None or row[0] != sha256:
        raise not_found()
    blobs = ctx.blobs
    if suffix != "_thumb.jpg":
        if suffix != row[1]:
            raise not_found()
        path = blobs.blob_path(sha256)
        if not path.is_file():
            raise not_found()
        return FileResponse(path, media_type=row[2], headers={"Cache-Control": _CACHE})
    thumb = ensure_thumbnail(ctx, sha256)
    if thumb is None:
        raise not_found()
    return FileResponse(thumb, media_type="image/jpeg", headers={"Cache-Control": _CACHE})


def ensure_thumbnail(ctx: ServerContext, sha256: str) -> FilePath | None:
    """The thumbnail file of the stored bytes ``sha256``, made on first use (also for
    the web gallery, web/images.py); None when the bytes are gone."""
    blobs = ctx.blobs
    thumb = blobs.thumb_path(sha256)
    if not thumb.is_file():
        with blobs.locked(sha256):
            if not thumb.is_file():
                source = blobs.blob_path(sha256)
                if not source.is_file():
                    return None
                try:
                    thumbnail = make_thumbnail(
                        source.read_bytes(), ctx.settings.thumb_size, ctx.decode_budget.reserve
                    )
                except DecodeBusy as exc:
                    raise busy_error(exc) from exc
                blobs.put_thumb(sha256, thumbnail)
    return thumb
