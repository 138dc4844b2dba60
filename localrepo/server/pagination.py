"""DRF-style page-number pagination with absolute ``next``/``previous`` links, and the
keyset cursor (``after``) a listing's ``next`` link may carry so that deep pages cost
what the first one does (see docs/server.md, "Listing images")."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import Query
from starlette.requests import Request

from .config import Settings
from .errors import field_error, not_found

# The query parameters as documented; ``page_request`` reads them as DRF does (a page
# that is not a positive integer is 404 "Invalid page.", a bad page size is ignored),
# so FastAPI must not refuse them first with a 400.
PAGE_QUERY: Any = Query(
    None, description='Page number, from 1; any other value answers 404 "Invalid page.".'
)
PAGE_SIZE_QUERY: Any = Query(
    None, description="Items per page (default 50, at most 1000); an invalid one is ignored."
)
AFTER_QUERY: Any = Query(
    None,
    description="Opaque: where a page reached through a next link starts (set by the "
    "server; follow next as given). An invalid one answers 400.",
)


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_request(request: Request, settings: Settings) -> PageRequest:
    q = request.query_params
    size = settings.page_size_default
    raw_size = q.get("page_size")
    if raw_size:
        try:
            wanted = int(raw_size)
        except ValueError:
            wanted = 0
        if wanted > 0:  # DRF ignores an invalid page size
            size = min(wanted, settings.page_size_max)
    raw_page = q.get("page", "1") or "1"
    try:
        page = int(raw_page)
    except ValueError:
        page = -1
    if page < 1:
        raise not_found("Invalid page.")
    return PageRequest(page=page, size=size)


@dataclass(frozen=True)
class After:
    """A keyset cursor: the page starts just after the row (``created``, ``id``) in
    listing order. ``count`` is the listing's count as its first page answered it (a
    later page answers it again instead of counting); ``filters`` names the filters the
    cursor was made for (``filters_key``), so a cursor moved to another listing is
    refused rather than answering that listing's pages with a wrong count."""

    created: str
    id: str
    count: int
    filters: str


# Strictly the URL-safe alphabet (the decoder would skip other characters), and short: a
# real cursor is about 150 characters.
_AFTER_FORM = re.compile(r"[A-Za-z0-9_-]{1,512}")
_AFTER_KEYS = ("c", "i", "n", "f")
BAD_AFTER = (
    "Not a cursor this listing made: follow the next link as the server gave it, "
    "or leave after out to start from page 1."
)


def encode_after(after: After) -> str:
    """The cursor as URL-safe base64 of JSON (exact round trip, unpadded)."""
    data = orjson.dumps(
        dict(zip(_AFTER_KEYS, (after.created, after.id, after.count, after.filters), strict=True))
    )
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_after(raw: str, filters: str) -> After:
    """The cursor ``raw`` made for the filters ``filters``; 400 naming ``after`` for
    anything else (malformed, tampered with, or another listing's)."""
    if not _AFTER_FORM.fullmatch(raw):
        raise field_error("after", BAD_AFTER)
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:  # (not base64, or not JSON)
        raise field_error("after", BAD_AFTER) from None
    if not (isinstance(data, dict) and sorted(data) == sorted(_AFTER_KEYS)):
        raise field_error("after", BAD_AFTER)
    created, row_id, count, made_for = (data[k] for k in _AFTER_KEYS)
    if not (
        isinstance(created, str)
        and isinstance(row_id, str)
        and 0 < len(created) <= 64
        and 0 < len(row_id) <= 64
        and (created + row_id).isprintable()  # (no NUL: PostgreSQL refuses it in text)
        and type(count) is int
        and 0 <= count < 2**53
        and made_for == filters
    ):
        raise field_error("after", BAD_AFTER)
    return After(created, row_id, count, filters)


def _link(request: Request, page: int | None, after: str | None = None) -> str | None:
    if page is None:
        return None
    dropped = ("page", "after")
    query = parse_qsl(request.url.query, keep_blank_values=True)
    pairs = [(k, v) for k, v in query if k not in dropped]
    pairs.append(("page", str(page)))
    if after is not None:
        pairs.append(("after", after))
    base = str(request.url.replace(query="")).rstrip("?")
    return f"{base}?{urlencode(pairs)}" if pairs else base


def check_page(pr: PageRequest, count: int) -> None:
    """DRF answers 404 "Invalid page." past the last page (page 1 always exists)."""
    if pr.page > max(1, -(-count // pr.size)):
        raise not_found("Invalid page.")


def page_body(request: Request, pr: PageRequest, count: int, results: Any) -> dict[str, Any]:
    last = max(1, -(-count // pr.size))
    return {
        "count": count,
        "next": _link(request, pr.page + 1) if pr.page < last else None,
        "previous": _link(request, pr.page - 1) if pr.page > 1 else None,
        "results": results,
    }


def keyset_page_body(
    request: Request, pr: PageRequest, count: int, results: Any, after: After | None
) -> dict[str, Any]:
    """``page_body`` of a listing read by keyset: ``next`` carries the cursor ``after``
    (None: this is the last page); ``previous`` is the plain numbered page."""
    return {
        "count": count,
        "next": None if after is None else _link(request, pr.page + 1, encode_after(after)),
        "previous": _link(request, pr.page - 1) if pr.page > 1 else None,
        "results": results,
    }
