"""Media: the stored image bytes and thumbnails, served without auth.

URLs are ``media/<blob sha256>/<random key><ext>`` and ``..._thumb.jpg``: unguessable
(the key is 128 random bits, per image) and dead once the image is deleted.

Files of the data folder are sent as files; a bucket's objects are read and sent
(``--media proxy``) or answered with a 307 to a presigned URL of a few minutes
(``--media redirect``: the bytes then never pass through the server; docs/server.md,
"Object storage").
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Path, Request
from starlette.responses import FileResponse, RedirectResponse, Response

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
    headers = {"Cache-Control": _CACHE}
    if suffix != "_thumb.jpg":
        if suffix != row[1]:
            raise not_found()
        found = stored_response(ctx, sha256, row[2], headers)
    else:
        made = ensure_thumbnail(ctx, sha256)
        if made is None:
            raise not_found()
        found = stored_response(ctx, sha256, "image/jpeg", headers, thumb=made)
    if found is None:
        raise not_found()
    return found


def stored_response(
    ctx: ServerContext,
    sha256: str,
    media_type: str,
    headers: dict[str, str],
    *,
    thumb: bool | bytes = False,
) -> Response | None:
    """The stored bytes (or thumbnail) as a response, in a worker thread; None when
    they are not stored. ``thumb``: the thumbnail's bytes when just made."""
    blobs = ctx.blobs
    is_thumb = thumb is not False
    made = thumb if isinstance(thumb, bytes) else None
    path = blobs.local_path(sha256, thumb=is_thumb)
    if path is not None and (made is None or path.is_file()):
        return (
            FileResponse(path, media_type=media_type, headers=headers) if path.is_file() else None
        )
    if path is None and ctx.settings.media_mode == "redirect":
        url = blobs.presign(sha256, media_type, thumb=is_thumb)
        if url is not None:
            # The URL expires in minutes: it must not be cached like the bytes.
            return RedirectResponse(url, 307, headers={"Cache-Control": "no-store"})
    data = made if made is not None else blobs.read(sha256, thumb=is_thumb)
    if data is None:
        return None
    etag = f'"t-{sha256}"' if is_thumb else f'"{sha256}"'
    return Response(data, media_type=media_type, headers={"ETag": etag, **headers})


def ensure_thumbnail(ctx: ServerContext, sha256: str) -> bool | bytes | None:
    """Make the thumbnail of the stored bytes ``sha256`` on first use (also for the web
    gallery, web/images.py): True when it was there, its bytes when just made, None
    when the bytes are gone."""
    blobs = ctx.blobs
    if blobs.exists(sha256, thumb=True):
        return True
    with blobs.locked(sha256):
        if blobs.exists(sha256, thumb=True):
            return True
        source = blobs.read(sha256)
        if source is None:
            return None
        try:
            thumbnail = make_thumbnail(source, ctx.settings.thumb_size, ctx.decode_budget.reserve)
        except DecodeBusy as exc:
            raise busy_error(exc) from exc
        blobs.put_thumb(sha256, thumbnail)
        return thumbnail
