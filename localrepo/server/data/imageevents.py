"""Each image's history (``image_events``): who changed what, and when.

The writers of data/images.py add an image's events in the transaction of the change
itself (``record``: one INSERT per change, several changes in one executemany), so a
refused or rolled back change leaves no event and a committed one always has its event.
``history`` reads them back, newest first, with the user's name.

Kinds (``new``/``old`` are text as shown):

    uploaded     the image was added (upload, or a classification that stored it)
    labelled     ``label`` given (``new``: its value, for a value label)
    unlabelled   ``label`` taken away (``old``: its value, for a value label)
    value        ``label``'s value changed ``old`` -> ``new``
    metadata     ``new``: the metadata keys that changed, comma separated
    test_image   ``old`` -> ``new``: "true" / "false"
    real         ``old`` -> ``new``: "true" / "false"
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from .db import Database

UPLOADED, LABELLED, UNLABELLED, VALUE = "uploaded", "labelled", "unlabelled", "value"
METADATA, TEST_IMAGE, REAL = "metadata", "test_image", "real"

INSERT_SQL = (
    "INSERT INTO image_events (image_id, kind, user_id, label_name, old, new, created) "
    "VALUES (:i, :k, :u, :l, :o, :n, :c)"
)
_SHOWN = 255  # the columns' width: a long value or key list is cut, not refused


def event(
    image_id: str,
    kind: str,
    user_id: str | None,
    created: str,
    *,
    label: str | None = None,
    old: Any = None,
    new: Any = None,
) -> dict[str, Any]:
    """The parameters of one event's INSERT (``INSERT_SQL``)."""
    return {
        "i": image_id,
        "k": kind,
        "u": user_id,
        "l": label,
        "o": shown(old),
        "n": shown(new),
        "c": created,
    }


def shown(value: Any) -> str | None:
    """A value as the history keeps it: None stays None; a bool is "true"/"false"; a
    number its shortest form (2.0 -> "2")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)[:_SHOWN]


def record(conn: Any, events: Sequence[dict[str, Any]]) -> None:
    """Insert ``events`` in ``conn``'s transaction (the change's own)."""
    if events:
        conn.execute(text(INSERT_SQL), list(events))


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The metadata keys added, removed or changed, sorted, comma separated."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING))
    return ", ".join(keys)


_MISSING = object()


@dataclass(frozen=True)
class Event:
    """One event as the image page shows it."""

    kind: str
    username: str | None  # None: recorded without a user, or the user is gone
    label: str | None
    old: str | None
    new: str | None
    created: str  # ISO 8601, UTC


def history(db: Database, ws: str, image_id: str, limit: int = 500) -> list[Event]:
    """The workspace's image's events, newest first (at most ``limit``); empty for an
    image not in the workspace."""
    with db.read() as session:
        rows = session.connection().execute(
            text(
                "SELECT e.kind, u.username, e.label_name, e.old, e.new, e.created "
                "FROM image_events e JOIN images i ON i.id = e.image_id "
                "LEFT JOIN users u ON u.id = e.user_id "
                "WHERE e.image_id = :i AND i.workspace_id = :ws "
                "ORDER BY e.id DESC LIMIT :lim"
            ),
            {"i": image_id, "ws": ws, "lim": limit},
        )
        return [Event(*row) for row in rows]


def events_for(
    image_ids: Iterable[str], kind: str, user_id: str | None, created: str, **values: Any
) -> list[dict[str, Any]]:
    """The same event for each of ``image_ids`` (a bulk change)."""
    return [event(i, kind, user_id, created, **values) for i in image_ids]
