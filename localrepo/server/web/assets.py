"""Static files served from the package: the pages' own CSS and the vendored libraries
(``static/vendor/VENDORED.md``), so that nothing loads from another host.

Templates link an asset by ``Assets.url(path)``: ``/static/PATH?v=VERSION``, VERSION
the start of the file's sha256. Asked with its current version, an asset is cached for
a year (``immutable``): a new file gets a new URL. Asked without it (or with an old
one), the answer must be revalidated (``no-cache``). Both carry the content's ETag and
answer 304 to a matching ``If-None-Match``. Only files with a known suffix under
``static/`` are served; anything else is a 404.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import not_found

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSION_LENGTH = 12


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    sha256: str

    @property
    def version(self) -> str:
        return self.sha256[:VERSION_LENGTH]

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'


def cache_control(asked_version: str | None, asset: Asset) -> str:
    """Pure: a year for the asset's current versioned URL, revalidation otherwise."""
    return IMMUTABLE if asked_version == asset.version else REVALIDATE


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Pure: whether an ``If-None-Match`` header names ``etag`` (or is ``*``); weak
    validators (``W/"..."``) count, as RFC 9110 says for GET."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def servable(path: str) -> PurePosixPath | None:
    """Pure: ``path`` as a relative path of a file that may be served, or None (an
    absolute path, a ``..`` or hidden part, an unknown suffix)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(p.startswith(".") for p in pure.parts):
        return None
    if pure.suffix not in CONTENT_TYPES:
        return None
    return pure


class Assets:
    """The files under ``root``, read once and kept in memory (a few MB)."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root
        self._loaded: dict[str, Asset | None] = {}

    def get(self, path: str) -> Asset | None:
        if path in self._loaded:
            return self._loaded[path]
        pure = servable(path)
        asset = None
        if pure is not None:
            file = self.root.joinpath(*pure.parts)
            if file.is_file():
                body = file.read_bytes()
                asset = Asset(body, CONTENT_TYPES[pure.suffix], hashlib.sha256(body).hexdigest())
        if len(self._loaded) < 1000:  # bounded: paths asked for are not all files
            self._loaded[path] = asset
        return asset

    def url(self, path: str) -> str:
        """The versioned URL of a file that must exist (a template's own link)."""
        asset = self.get(path)
        if asset is None:
            raise LookupError(f"no static file {path!r} in {self.root}")
        return f"/static/{path}?v={asset.version}"


router = APIRouter(include_in_schema=False)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static_file(request: Request, path: str) -> Response:
    assets: Assets = request.app.state.assets
    asset = assets.get(path)
    if asset is None:
        raise not_found()
    headers = {
        "Cache-Control": cache_control(request.query_params.get("v"), asset),
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match"), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
