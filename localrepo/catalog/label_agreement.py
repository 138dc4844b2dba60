"""Where each task's SYNCED and LOCAL image labels were last found equal: the catalog's
write epoch at that moment (catalog/db.py), in repo_meta under `labels_agree`.

`repo status` compares the two states to list what changed since the last sync; at a
million images that comparison costs about a second even when nothing differs
(docs/benchmarks.md). Every write that can change either state goes through
`transaction()`, which moves the epoch, so while the epoch stands still the last answer
holds and the comparison is skipped.

Recording is bookkeeping: it does not move the epoch, and it is given up at once, not
waited for, when another process holds the write lock or the catalog is read-only."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection

from localrepo.catalog.db import BUSY_TIMEOUT_MS, transaction, write_epoch
from localrepo.catalog.meta import get_meta, set_meta

KEY = "labels_agree"


def agreed(conn: sqlite3.Connection) -> dict[int, int]:
    """{task id: the write epoch at which its two states were found equal}."""
    return {int(k): int(v) for k, v in json.loads(get_meta(conn, KEY) or "{}").items()}


def record(conn: sqlite3.Connection, task_ids: Collection[int], epoch: int) -> bool:
    """Record that these tasks' states were equal at `epoch`, the epoch read before
    comparing them; False (nothing written) if the epoch has moved since or the write
    lock is not free now."""
    if not task_ids:
        return False
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        with transaction(conn, counts=False):
            if write_epoch(conn) != epoch:
                return False
            marks = {k: v for k, v in agreed(conn).items() if v == epoch}
            marks.update(dict.fromkeys(task_ids, epoch))
            set_meta(conn, KEY, json.dumps({str(k): v for k, v in sorted(marks.items())}))
    except sqlite3.OperationalError:  # locked by another writer, or a read-only catalog
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return True
