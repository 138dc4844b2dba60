"""`repo verify`: do the disk, the catalog and the remote agree?

Read-only. Checks, per task:
- disk vs catalog: every catalogued file still exists and hashes to its recorded hash
  (files are re-read), and a scan would find nothing new;
- catalog: the LOCAL and SYNCED states are equal (nothing waits for a sync);
- remote vs catalog: the remote listing holds exactly the SYNCED images, with the same
  labels and values, under the recorded remote ids.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import tasks as catalog_tasks
from localrepo.remote.api import RemoteAPI
from localrepo.repository import Repository
from localrepo.scan.hashing import examine
from localrepo.scan.scanner import Scanner
from localrepo.sync.snapshot import build_snapshot, list_remote_task, load_task_state


@dataclass
class VerifyReport:
    files: int = 0
    images: dict[str, int] = field(default_factory=dict)  # task -> synced images
    remote_images: dict[str, int] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift and not self.pending


def verify(repo: Repository, client: RemoteAPI | None) -> VerifyReport:
    report = VerifyReport()
    conn = repo.connect()
    try:
        _check_disk(repo, conn, report)
        bindings = catalog_tasks.load_bindings(conn)
        hash_by_remote_id = catalog_images.hashes_by_remote_id(conn)
        for binding in bindings:
            remote_id = catalog_tasks.remote_id(conn, binding.task_id)
            attached: list[Any] = []
            images: list[Any] = []
            if client is not None and remote_id:
                attached, images = list_remote_task(client, remote_id)
            snap = build_snapshot(
                remote_id or "", binding.type, attached, images, hash_by_remote_id
            )
            state, _files = load_task_state(conn, binding, bindings, snap)
            name = binding.name
            report.images[name] = len(state.base)
            for key in sorted(set(state.local) | set(state.base)):
                if state.local.get(key, {}) != state.base.get(key, {}):
                    report.pending.append(
                        f"{name}: image {key[:12]} is {sorted(state.local.get(key, {}))} on disk "
                        f"but {sorted(state.base.get(key, {}))} when last synced"
                    )
            if client is None or not remote_id:
                if not remote_id and state.local:
                    report.pending.append(f"{name}: not on the server yet")
                continue
            report.remote_images[name] = len(snap.images)
            recorded = catalog_images.all_remote_ids(conn)
            for key in sorted(set(state.base) | set(state.remote)):
                base, remote = state.base.get(key, {}), state.remote.get(key, {})
                if base != remote:
                    report.drift.append(
                        f"{name}: image {key[:12]} is {sorted(remote.items())} on the server "
                        f"but {sorted(base.items())} when last synced"
                    )
                view = snap.images.get(key)
                if view is not None and recorded.get(key) not in (None, view.id):
                    report.drift.append(
                        f"{name}: image {key[:12]} is remote image {view.id}, catalogued as "
                        f"{recorded.get(key)}"
                    )
            for problem in snap.problems:
                report.drift.append(f"{name}: {problem}")
    finally:
        conn.close()
    return report


def _check_disk(repo: Repository, conn: sqlite3.Connection, report: VerifyReport) -> None:
    scan = Scanner(repo.root, conn).scan(dry_run=True)
    for change in scan.changes:
        what = change.path or change.old_path or change.hash or ""
        report.pending.append(f"not scanned yet: {change.kind} {what}")
    rows = catalog_files.valid_files(conn)
    report.files = len(rows)
    root = str(repo.root)
    for path, digest in rows:
        got = examine(root, path, decode=False)
        if got.hash is None:
            report.drift.append(f"{path}: cannot be read ({got.reason})")
        elif got.hash != digest:
            report.drift.append(f"{path}: its bytes changed since the last scan")
