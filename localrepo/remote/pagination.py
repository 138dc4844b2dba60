"""Reading listings: pages followed through ``next`` (rebased on the configured URL,
never another host), loop and empty-page guards, and restarts when a listing shrinks
while it is read (see docs/remote.md, "Pagination")."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import PaginationError, RemoteError, safe_url
from .transport import ACCOUNT_PATH, API_PATH, Transport

log = logging.getLogger("localrepo.remote")

_MAX_EMPTY_PAGES = 3
_MAX_RESTARTS = 2


class _ListingShifted(Exception):
    def __init__(self, op: str) -> None:
        super().__init__(op)
        self.op = op


class Pager(Transport):
    """`_items(path, params)`: every item of a listing, each id once."""

    def _rebase(self, next_url: str, current: str) -> str:
        """``next`` on our own configured base: keep its path and query, never its host
        (a server behind a proxy may name another host, or drop a path prefix)."""
        parts = urlsplit(next_url)
        path = parts.path
        if not path:
            path = urlsplit(current).path
        url = None
        for marker in ("/" + API_PATH, "/" + ACCOUNT_PATH):
            index = path.find(marker)
            if index >= 0:
                url = self.base_url + path[index + 1 :]
                break
        if url is None:
            url = self._origin + (path if path.startswith("/") else "/" + path)
        query = parts.query
        if self.workspace and "workspace" not in dict(parse_qsl(query)):
            query = (query + "&" if query else "") + urlencode({"workspace": self.workspace})
        return f"{url}?{query}" if query else url

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[list[Any]]:
        """Yield each page's ``results``, following ``next`` to the end."""
        url = self._url(path)
        query: dict[str, Any] | None = self._params(params)
        seen: set[str] = set()
        empty_run = 0
        page = 1
        while True:
            op = self._op("GET", path) + (f" (page {page})" if page > 1 else "")
            response = self._call("GET", url, params=query, op=op)
            if page > 1 and response.status_code == 404:
                # DRF's "Invalid page.": the listing shrank while being read.
                raise _ListingShifted(op)
            body = self._parse(response, op)
            if isinstance(body, list):  # an unpaginated answer
                yield body
                return
            if not isinstance(body, Mapping):
                raise RemoteError(f"{op}: the answer is not a page of results.", operation=op)
            results = body.get("results")
            if not isinstance(results, list):
                results = []
            yield results
            next_url = body.get("next")
            if not next_url or not isinstance(next_url, str):
                return
            following = self._rebase(next_url, url)
            if following in seen or following == self._full(url, query):
                raise PaginationError(
                    f"{op}: the listing's next link loops ({safe_url(following)}).",
                    operation=op,
                )
            seen.add(following)
            empty_run = empty_run + 1 if not results else 0
            if empty_run > _MAX_EMPTY_PAGES:
                raise PaginationError(
                    f"{op}: the listing keeps answering empty pages with a next link.",
                    operation=op,
                )
            url, query, page = following, None, page + 1

    @staticmethod
    def _full(url: str, query: Mapping[str, Any] | None) -> str:
        return f"{url}?{urlencode(query)}" if query else url

    def _items(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a listing, each id once. Page-number paging is no snapshot:
        an item can move across a page boundary while the pages are read. Duplicates
        are dropped; a listing that shrank past its last page is read again from the
        start (at most twice), yielding only what was not yet seen."""
        seen: set[str] = set()
        for restart in range(_MAX_RESTARTS + 1):
            try:
                for results in self._pages(path, params):
                    for item in results:
                        key = item.get("id") if isinstance(item, Mapping) else None
                        if isinstance(key, str):
                            if key in seen:
                                continue
                            seen.add(key)
                        yield item
                return
            except _ListingShifted as exc:
                if restart == _MAX_RESTARTS:
                    raise RemoteError(
                        f"{exc.op}: the listing kept changing while it was read; try again.",
                        operation=exc.op,
                        status=404,
                    ) from None
                log.info("%s: the listing shrank while being read; reading it again", exc.op)
