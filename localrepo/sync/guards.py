"""The mass-delete guard, on both sides of the planner: the limit a user sets, parsed,
and the files a stop names.

Pure functions (design section 3, "Safety"). Whether a plan stops is the planner's
decision (`plan._safety_stop`); the engine (sync/engine.py) parses `--max-delete` /
`[sync] max_delete` with `parse_max_delete` before it plans, and when a plan stops it
reads from the journal where the images with no file here were last seen, and calls
`stop_paths` for the list the user is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from localrepo.errors import LocalrepoError
from localrepo.sync.plan import SafetyStop


def parse_max_delete(text: str) -> tuple[int | None, float | None]:
    """`N` (images) or `P%` (of the task's synced images)."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            pct = float(raw[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return None, pct / 100
        n = int(raw)
        if n < 0:
            raise ValueError
        return n, None
    except ValueError:
        raise LocalrepoError(
            f"--max-delete: {text!r} is neither a number of images nor a percentage (like 50%)."
        ) from None


def stop_paths(
    stop: SafetyStop, files: Mapping[str, Sequence[str]], last_seen: Mapping[str, str]
) -> list[str]:
    """The files a mass-delete stop names: where each image is (a local trash) or, from
    `last_seen` {image key: path}, was last seen (a remote delete of a file gone here);
    an image known by neither is named by its key."""
    return sorted((files.get(k) or [last_seen.get(k) or k])[0] for k in stop.keys)
