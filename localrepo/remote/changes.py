"""Endpoint: the change feed, ``training-image/changes/`` (localrepo-server's extension,
docs/api.md, "Change feed"). The hosted service has no such route: its 404 (or 405)
means "no feed here", and the caller lists in full, quietly (docs/sync.md, "How a sync
learns the remote's changes")."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BadRequestError, NotFoundError, RemoteError
from .pagination import Pager

log = logging.getLogger("localrepo.remote")

PATH = "training-image/changes/"
# More pages than this in one sync, and the feed is not saving anything: list in full.
_MAX_PAGES = 1000


@dataclass(frozen=True)
class ImageChanges:
    """What changed since a cursor: the images as the listing shows them now (raw
    answers, in the order of their last change), the ids gone from the listing, and
    the cursor to keep."""

    cursor: str
    changed: list[dict[str, Any]]
    removed: list[str]


class ChangeFeedEndpoints(Pager):
    def change_cursor(self) -> str | None:
        """The feed's cursor of now (one small request), or None: the server has no
        feed (404, 405), or answers something else than a cursor."""
        body = self._feed_page({})
        cursor = body.get("cursor") if isinstance(body, dict) else None
        return cursor if isinstance(cursor, str) and cursor else None

    def image_changes(self, since: str, labels: Sequence[str]) -> ImageChanges | None:
        """Every change after ``since`` among images with any of ``labels``, following
        ``more``; None when the server has no feed or refuses the cursor (400, 410):
        then only a full listing tells the remote's state."""
        changed: dict[str, dict[str, Any]] = {}
        removed: set[str] = set()
        cursor = since
        for _ in range(_MAX_PAGES):
            body = self._feed_page({"since": cursor, "labels": list(labels), "page_size": 1000})
            if not isinstance(body, dict):
                return None
            results, gone, cursor = body.get("results"), body.get("removed"), body.get("cursor")
            if not (isinstance(results, list) and isinstance(gone, list)):
                return None
            if not isinstance(cursor, str) or not cursor:
                return None
            for item in results:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    changed.pop(item["id"], None)  # its last change comes last
                    changed[item["id"]] = item
                    removed.discard(item["id"])
            for image_id in gone:
                if isinstance(image_id, str):
                    changed.pop(image_id, None)
                    removed.add(image_id)
            if body.get("more") is not True:
                return ImageChanges(cursor, list(changed.values()), sorted(removed))
        log.info("%s: more than %d pages of changes; listing in full", PATH, _MAX_PAGES)
        return None

    def _feed_page(self, params: dict[str, Any]) -> Any:
        """One answer of the feed; None for "no feed here" or "cursor refused"."""
        try:
            return self._request("GET", PATH, params=params)
        except (NotFoundError, BadRequestError) as exc:
            log.debug("%s: %s; listing in full", PATH, exc)
            return None
        except RemoteError as exc:
            if exc.status in (405, 410, 501):
                log.debug("%s: %s; listing in full", PATH, exc)
                return None
            raise
