"""What an image page says of the image's history, decided from its events (no I/O).

In: the events newest first (``data/imageevents.history``), the image's ``created`` and
the moment now (ISO 8601, UTC, the stored form). Out: ``HistoryLine``s, newest first,
in the user's words ("labelled circle by alice", "5 minutes ago"); the templates read
them (templates/images_image.html). An image from before the history was recorded
(schema 5, docs/design.md) has no upload event: its upload is still shown, from its
``created``, without a name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..data.imageevents import (
    LABELLED,
    METADATA,
    REAL,
    TEST_IMAGE,
    UNLABELLED,
    UPLOADED,
    VALUE,
    Event,
)

RELATIVE_DAYS = 7  # older than this: the date instead of "N days ago"


@dataclass(frozen=True)
class HistoryLine:
    text: str  # "labelled circle by alice"
    when: str  # ISO 8601, UTC (the <time> element's datetime)
    ago: str  # "2 minutes ago", or the date and time for older ones


def _parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ago(moment: str, now: str) -> str:
    """How long before ``now`` ``moment`` was, as people say it; the date (UTC) when
    it was more than a week before."""
    seconds = (_parse(now) - _parse(moment)).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        count = int(seconds // size)
        if count >= 1 and (unit != "day" or count <= RELATIVE_DAYS):
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
        if count >= 1:
            break
    return moment[:16].replace("T", " ") + " UTC"


def _what(event: Event) -> str:
    label = event.label or "a label"
    if event.kind == UPLOADED:
        return "uploaded"
    if event.kind == LABELLED:
        return f"labelled {label}" + (f" = {event.new}" if event.new is not None else "")
    if event.kind == UNLABELLED:
        return f"label {label}" + (f" = {event.old}" if event.old else "") + " taken away"
    if event.kind == VALUE:
        return f"{label} changed from {event.old or 'no value'} to {event.new or 'no value'}"
    if event.kind == METADATA:
        return f"metadata changed ({event.new})" if event.new else "metadata changed"
    if event.kind == TEST_IMAGE:
        return "made a test image" if event.new == "true" else "no longer a test image"
    if event.kind == REAL:
        return "marked real" if event.new == "true" else "no longer marked real"
    return event.kind.replace("_", " ")


def history_lines(events: Sequence[Event], created: str, now: str) -> list[HistoryLine]:
    """The image's history, newest first (see the module's docstring)."""
    lines = [
        HistoryLine(
            _what(e) + (f" by {e.username}" if e.username else ""), e.created, ago(e.created, now)
        )
        for e in events
    ]
    if not any(e.kind == UPLOADED for e in events):
        lines.append(HistoryLine("uploaded", created, ago(created, now)))
    return lines
