"""A repository on disk: finding it, creating it, binding tasks to its folders."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from localrepo.catalog import tasks as catalog_tasks
from localrepo.catalog.db import catalog_path, connect, transaction, upgrade
from localrepo.config import RemoteConfig, RepoConfig, load_config, save_config
from localrepo.didyoumean import check_name
from localrepo.errors import EXIT_USAGE, LocalrepoError, NotARepositoryError
from localrepo.layout import nfc
from localrepo.vocabulary import LOGS_DIR, STATE_DIR, TASK_TYPES, TRASH_DIR

STATE_SUBDIRS = (TRASH_DIR, "tmp", LOGS_DIR)
LOCK_NAME = "lock"


@dataclass
class Repository:
    root: Path
    # Called once when lock() has to wait for another process (the daemon mid-sync, or
    # another command); the CLI says so on stderr.
    on_lock_wait: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def catalog(self) -> Path:
        return catalog_path(self.root)

    def connect(self) -> sqlite3.Connection:
        return connect(self.catalog)

    def config(self) -> RepoConfig:
        return load_config(self.state_dir)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise the writers of this repository (scans, syncs) across processes.

        A scan reads the stat cache before its write transaction; two scans at once would
        both journal the same changes. An exclusive flock on `.localrepo/lock` (released
        by the kernel if the process dies) makes the second wait for the first (the
        daemon's sync runs take it too, so `repo sync` waits for the daemon's run to end).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        try:
            fd = os.open(self.state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only state folder: SQLite still keeps the catalog whole
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.on_lock_wait is not None:
                    self.on_lock_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def bind_root_task(self, remote_id: str) -> None:
        """Bind the root's task to the server task `remote_id` (`clone`, `init --join`)."""
        conn = self.connect()
        try:
            with transaction(conn):
                catalog_tasks.bind_root(conn, remote_id)
        finally:
            conn.close()


def find_repository(start: Path) -> Repository:
    """The repository containing `start` (like git, searching upwards)."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if catalog_path(folder).is_file():
            return Repository(folder)
    raise NotARepositoryError(
        f"{start} is not inside a localrepo repository (no {STATE_DIR}/ found in it or "
        "above it). Run 'repo init' to create one, or use -C DIR to point at one."
    )


def _check_task_args(name: str, task_type: str) -> str:
    name = nfc(name.strip())
    if not name:
        raise LocalrepoError("--task: the task name must not be empty.")
    if task_type not in TASK_TYPES:
        raise LocalrepoError(f"--type: must be one of {', '.join(TASK_TYPES)}.")
    return name


def init_repository(
    path: Path,
    *,
    task: str,
    task_type: str,
    remote: str | None = None,
    workspace: str | None = None,
) -> Repository:
    name = _check_task_args(task, task_type)
    root = path.resolve()
    if catalog_path(root).exists():
        raise LocalrepoError(f"{root} is already a localrepo repository.")
    for parent in root.parents:
        if catalog_path(parent).is_file():
            raise LocalrepoError(
                f"{root} is inside the repository {parent}. Bind a task to this folder there "
                f"with: repo -C {parent} task add {os.path.relpath(root, parent)} "
                f"--task NAME --type TYPE"
            )
    if root.exists() and not root.is_dir():
        raise LocalrepoError(f"{root} exists and is not a folder.")
    root.mkdir(parents=True, exist_ok=True)
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    for sub in STATE_SUBDIRS:
        (state / sub).mkdir(exist_ok=True)
    upgrade(catalog_path(root))
    save_config(state, RepoConfig(remote=RemoteConfig(url=remote, workspace=workspace)))
    repo = Repository(root)
    conn = repo.connect()
    try:
        with transaction(conn):
            catalog_tasks.add_root(conn, name, task_type, time.time_ns())
    finally:
        conn.close()
    return repo


def add_task(repo: Repository, folder: Path, *, task: str, task_type: str) -> str:
    """Bind the existing subfolder `folder` to a new task; returns its
    repository-relative root. A path that is not an existing folder of the repository is
    refused (exit 2): a typo never creates an empty folder with a task bound to it."""
    name = _check_task_args(task, task_type)
    full = folder if folder.is_absolute() else Path.cwd() / folder
    full = Path(os.path.normpath(full))
    rel = _task_folder(repo, folder, full)
    conn = repo.connect()
    try:
        with transaction(conn):
            bound = catalog_tasks.name_at(conn, rel)
            if bound is not None:
                raise LocalrepoError(f"{rel}/ is already bound to the task '{bound}'.")
            root = catalog_tasks.root_of(conn, name)
            if root is not None:
                where = root or "the repository root"
                raise LocalrepoError(f"A task named '{name}' is already bound to {where}.")
            catalog_tasks.add(conn, name, task_type, rel, time.time_ns())
    finally:
        conn.close()
    return rel


def _task_folder(repo: Repository, folder: Path, full: Path) -> str:
    """`full` (as typed: `folder`) relative to the root, if a task may be bound to it."""

    def usage(message: str) -> LocalrepoError:
        return LocalrepoError(message, exit_code=EXIT_USAGE)

    try:
        rel = full.relative_to(repo.root).as_posix()
    except ValueError:
        raise usage(f"{folder} is outside the repository {repo.root}.") from None
    if rel in ("", "."):
        raise usage("The repository root is already bound to a task; pick a subfolder.")
    if rel.split("/")[0] == STATE_DIR:
        raise usage(f"{folder} is inside {STATE_DIR}/, which holds localrepo's state.")
    if full.is_symlink():
        raise usage(f"{folder} is a symlink; localrepo never follows symlinks.")
    if not full.exists():
        raise usage(
            f"{rel}/ does not exist. Create it first (mkdir -p {rel}), then bind it; "
            "task add never creates folders."
        )
    if not full.is_dir():
        raise usage(f"{rel} is a file, not a folder; a task is bound to a folder.")
    return rel


def rename_task(repo: Repository, old: str, new: str) -> None:
    """Rename a task that was never synced (a synced one is renamed on the server)."""
    old = nfc(old.strip())
    conn = repo.connect()
    try:
        with transaction(conn):
            check_name("task rename", old, catalog_tasks.names(conn), where="in this repository")
            row = catalog_tasks.type_and_remote_id(conn, old)
            assert row is not None  # check_name found it
            name = _check_task_args(new, row[0])
            if row[1]:
                raise LocalrepoError(
                    f"The task '{old}' is bound to the server task {row[1]}; its name there "
                    "is the server's. Rename it on the server instead."
                )
            if catalog_tasks.name_taken(conn, name):
                raise LocalrepoError(f"A task named '{name}' is already in this repository.")
            catalog_tasks.rename(conn, old, name)
    finally:
        conn.close()
