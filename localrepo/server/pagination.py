"""DRF-style page-number pagination with absolute ``next``/``previous`` links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Query
from starlette.requests import Request

from .config import Settings
from .errors import not_found

# The query parameters as documented; ``page_request`` reads them as DRF does (a page
# that is not a positive integer is 404 "Invalid page.", a bad page size is ignored),
# so FastAPI must not refuse them first with a 400.
PAGE_QUERY: Any = Query(
    None, description='Page number, from 1; any other value answers 404 "Invalid page.".'
)
PAGE_SIZE_QUERY: Any = Query(
    None, description="Items per page (default 50, at most 1000); an invalid one is ignored."
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


def _link(request: Request, page: int | None) -> str | None:
    if page is None:
        return None
    pairs = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page"]
    pairs.append(("page", str(page)))
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
