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
from localrepo.errors import EXIT_DECISION, EXIT_USAGE, LocalrepoError, NotARepositoryError
from localrepo.layout import nfc
from localrepo.vocabulary import IGNORE_FILE, LOGS_DIR, STATE_DIR, TASK_TYPES, TRASH_DIR

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
        import shlex

        raise usage(
            f"{rel}/ does not exist. Create it first (mkdir -p {shlex.quote(str(full))}), "
            "then bind it; task add never creates folders."
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


@dataclass(frozen=True)
class RemovedTask:
    """What `remove_task` did: the task, where it was bound, what now holds its folder."""

    name: str
    root: str  # repository-relative folder, without a slash
    remote_id: str | None  # the server task, left as it was
    parent: str  # the task whose root holds the folder (its files would join it)
    ignore_line: str  # the line added to the root's ignore file
    dropped_changes: int  # unsynced changes and conflicts given up (--force)


def removal_refusal(
    name: str,
    root: str,
    nested: list[str],
    synced: bool,
    pending: dict[str, int],
    conflicts: int,
    force: bool,
) -> LocalrepoError | None:
    """Pure: why `repo task remove` must not unbind this task now, or None.

    The root's task stays (every repository has one); a task with tasks bound inside
    its folder would hide them (remove those first); a synced task with changes not
    synced yet, or open conflicts, would lose track of them (unless `force`). A task
    never synced has nothing on the server to fall out of step with."""
    if root == "":
        return LocalrepoError(
            f"'{name}' is the task of the repository's root; every repository keeps one. "
            "To stop using localrepo here, delete the .localrepo folder (your files stay).",
            exit_code=EXIT_USAGE,
        )
    if nested:
        return LocalrepoError(
            f"Tasks are bound inside {root}/ ({', '.join(nested)}); remove them first "
            f"(repo task remove {nested[0]}).",
            exit_code=EXIT_USAGE,
        )
    changes = sum(pending.values())
    if synced and (changes or conflicts) and not force:
        what = []
        if changes:
            what.append(f"{changes} change{'s' if changes != 1 else ''} not synced yet")
        if conflicts:
            what.append(f"{conflicts} open conflict{'s' if conflicts != 1 else ''}")
        return LocalrepoError(
            f"The task '{name}' has {' and '.join(what)}; removing it would give them up. "
            "Run 'repo sync' first, or add --force (the files stay on disk either way).",
            exit_code=EXIT_DECISION,
        )
    return None


def remove_task(repo: Repository, name: str, *, force: bool) -> RemovedTask:
    """Unbind the task `name` from its folder (docs/layout.md, "Removing a task").

    Scans first (so recent edits count as changes), then, in one transaction: refuses
    what `removal_refusal` refuses; otherwise deletes the task's catalog rows (its labels,
    label rows, conflicts, problems; open journal rows are superseded), forgets the file
    rows under its folder, and adds ``/<root>/`` to the root's ``.localrepoignore`` so
    the folder's files do not silently join the parent task (and get uploaded to it).
    Never touches a file of the folder nor anything on the server."""
    from localrepo.catalog import conflicts as catalog_conflicts
    from localrepo.catalog import files as catalog_files
    from localrepo.catalog import journal
    from localrepo.scan.scanner import Scanner

    name = nfc(name.strip())
    with repo.lock():
        conn = repo.connect()
        try:
            check_name("task remove", name, catalog_tasks.names(conn), where="in this repository")
            Scanner(repo.root, conn).scan()
            undo: Callable[[], None] | None = None
            try:
                with transaction(conn):
                    task_id, root, remote_id = catalog_tasks.id_root_remote(conn, name)
                    pending = journal.open_counts_of_task(conn, task_id)
                    conflicts = catalog_conflicts.open_count_of_task(conn, task_id)
                    refusal = removal_refusal(
                        name,
                        root,
                        catalog_tasks.bound_under(conn, root),
                        remote_id is not None,
                        pending,
                        conflicts,
                        force,
                    )
                    if refusal is not None:
                        raise refusal
                    journal.close_task(conn, task_id, time.time_ns())
                    catalog_tasks.remove(conn, task_id)
                    catalog_files.delete_under(conn, root)
                    parent = catalog_tasks.holder_of(conn, root)
                    line = ignore_pattern(root)
                    undo = _add_ignore_line(repo.root, line, name)
            except BaseException:
                # The catalog kept the task: the folder must not stay ignored (its files
                # would look deleted to the next sync).
                if undo is not None:
                    undo()
                raise
        finally:
            conn.close()
    return RemovedTask(
        name, root, remote_id, parent, line, (sum(pending.values()) + conflicts) if force else 0
    )


def ignore_pattern(root: str) -> str:
    """Pure: the gitignore pattern of exactly the folder `root` (anchored at the
    repository root, its wildcard characters and a trailing space escaped)."""
    escaped = "".join("\\" + c if c in "\\*?[" else c for c in root)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return f"/{escaped}/"


def _add_ignore_line(root: Path, line: str, name: str) -> Callable[[], None]:
    """Append `line` to the root's ignore file (atomically); returns how to undo it."""
    path = root / IGNORE_FILE
    try:
        before: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    text = before or ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += f"# the folder of the task '{name}', removed by 'repo task remove'\n{line}\n"
    _write_atomic(path, text)

    def restore() -> None:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomic(path, before)

    return restore


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
