"""The remote's images of a task, from the change feed when it can tell them exactly,
else from a full listing (docs/sync.md, "How a sync learns the remote's changes").

The feed is only a cheaper way to learn the same remote state: the result is the list
the full listing would give (same objects, in the listing's order), and the planner
gets it as before. The copy of the last listing and its cursor live in the catalog
(catalog/remote_listing.py). The feed is used only when the copy was made for the same
remote URL, workspace, remote task and label ids (`source`); any doubt lists in full:
no copy, another source, the server has no feed (the hosted service: a 404), or it
refuses the cursor (another server at the URL, a restored database). A full listing
takes the cursor *before* it lists, so a change made while it lists comes again from
the feed rather than being lost. A dry run reads the copy but never writes it; a sync
that stops before saving keeps the old copy and cursor, which still agree.

`merge` and `source_key` are pure; `task_images` is the shell.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from localrepo.catalog import remote_listing
from localrepo.catalog.db import transaction
from localrepo.remote.answers import decode_json
from localrepo.remote.api import RemoteAPI
from localrepo.remote.changes import ImageChanges
from localrepo.remote.models import RemoteImage

log = logging.getLogger("localrepo.sync")

# The largest page the API allows (localrepo-server: 1000).
LISTING_PAGE = 1000


def source_key(
    url: str, workspace: str | None, remote_task_id: str, label_ids: Sequence[str]
) -> str:
    """What a copy and its cursor were made for: another value means a full listing."""
    return json.dumps([url, workspace or "", remote_task_id, sorted(label_ids)])


def listing_order(doc: Mapping[str, Any]) -> tuple[str, str]:
    """The listing's order: creation time, then id."""
    return (str(doc.get("created") or ""), str(doc.get("id") or ""))


def merge(copy: Mapping[str, str], changes: ImageChanges) -> dict[str, str]:
    """The copy ({id: JSON text}) with the feed's changes applied (pure)."""
    gone = set(changes.removed)
    out = {k: v for k, v in copy.items() if k not in gone}
    for doc in changes.changed:
        out[doc["id"]] = _text(doc)
    return out


def _text(doc: Mapping[str, Any]) -> str:
    """A doc as the copy keeps it: the stdlib's JSON, which keeps NaN and Infinity as
    the server sent them (orjson would write null); read back with orjson when it can."""
    return json.dumps(doc)


def _images(docs: Mapping[str, str]) -> list[RemoteImage]:
    parsed = sorted((decode_json(d) for d in docs.values()), key=listing_order)
    return [RemoteImage.from_api(d) for d in parsed]


def task_images(
    conn: sqlite3.Connection,
    client: RemoteAPI,
    task_id: int,
    source: str,
    label_ids: Sequence[str],
    *,
    record: bool,
    known: tuple[str, ImageChanges] | None = None,
) -> tuple[list[RemoteImage], bool]:
    """(the images carrying any of `label_ids`, whether the feed told them). `record`:
    save the copy and cursor (not in a dry run). `known`: (cursor, the feed's answer
    from it for `label_ids`) asked already (sync/quiet_check.py), used when the copy is
    still as of that cursor."""
    if not label_ids:
        if record:
            with transaction(conn, counts=False):  # the copy: no plan epoch (db.py)
                remote_listing.forget(conn, task_id)
        return [], False
    stored = remote_listing.feed_state(conn, task_id)
    if stored is not None and stored[0] == source:
        if known is not None and known[0] == stored[1]:
            changes: ImageChanges | None = known[1]
        else:
            changes = client.image_changes(stored[1], label_ids)
        if changes is not None:
            docs = merge(remote_listing.listing(conn, task_id), changes)
            if record:
                with transaction(conn, counts=False):  # the copy: no plan epoch (db.py)
                    remote_listing.apply_changes(
                        conn,
                        task_id,
                        changes.cursor,
                        {d["id"]: docs[d["id"]] for d in changes.changed},
                        changes.removed,
                    )
            return _images(docs), True
        log.debug("task %s: the change feed cannot tell; listing in full", task_id)
    cursor = client.change_cursor()  # before the listing: nothing made meanwhile is lost
    images = list(client.iter_images(labels=list(label_ids), page_size=LISTING_PAGE))
    if record:
        with transaction(conn, counts=False):  # the copy: no plan epoch (db.py)
            if cursor is None:
                remote_listing.forget(conn, task_id)
            else:
                docs = {img.id: _text(img.raw) for img in images}
                remote_listing.replace_listing(conn, task_id, source, cursor, docs)
    return images, False
