"""The task table: the tasks bound to folders of the repository (their "task roots"),
with the server task each is bound to.

Owns every read and write of `task`."""

from __future__ import annotations

import sqlite3

from localrepo.layout import TaskBinding

TaskRow = tuple[int, str, str, str, str | None]  # (id, name, type, root, remote id)


def load_bindings(conn: sqlite3.Connection) -> list[TaskBinding]:
    rows = conn.execute("SELECT id, name, type, root FROM task ORDER BY id")
    return [TaskBinding(task_id=r[0], name=r[1], type=r[2], root=r[3]) for r in rows]


def task_rows(conn: sqlite3.Connection) -> list[TaskRow]:
    """Every task, by root."""
    return conn.execute("SELECT id, name, type, root, remote_id FROM task ORDER BY root").fetchall()


def remote_id(conn: sqlite3.Connection, task_id: int) -> str | None:
    """The server task the task is bound to, if any."""
    row = conn.execute("SELECT remote_id FROM task WHERE id = ?", (task_id,)).fetchone()
    return row[0] if row else None


def set_remote_id(conn: sqlite3.Connection, task_id: int, remote_id: str) -> None:
    conn.execute("UPDATE task SET remote_id = ? WHERE id = ?", (remote_id, task_id))


def bind_root(conn: sqlite3.Connection, remote_id: str) -> None:
    """Bind the task of the repository's root to the server task `remote_id`."""
    conn.execute("UPDATE task SET remote_id = ? WHERE root = ''", (remote_id,))


def add_root(conn: sqlite3.Connection, name: str, task_type: str, created_ns: int) -> None:
    """The task of the repository's root (a new repository's one task)."""
    conn.execute(
        "INSERT INTO task(name, type, root, created_ns) VALUES (?, ?, '', ?)",
        (name, task_type, created_ns),
    )


def add(conn: sqlite3.Connection, name: str, task_type: str, root: str, created_ns: int) -> None:
    """A task bound to the folder `root` (repository-relative)."""
    conn.execute(
        "INSERT INTO task(name, type, root, created_ns) VALUES (?, ?, ?, ?)",
        (name, task_type, root, created_ns),
    )


def name_at(conn: sqlite3.Connection, root: str) -> str | None:
    """The name of the task bound to the folder `root`, if one is."""
    row = conn.execute("SELECT name FROM task WHERE root = ?", (root,)).fetchone()
    return row[0] if row else None


def root_of(conn: sqlite3.Connection, name: str) -> str | None:
    """The root of the task named `name` ("" the repository), None if there is none."""
    row = conn.execute("SELECT root FROM task WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def type_and_remote_id(conn: sqlite3.Connection, name: str) -> tuple[str, str | None] | None:
    """(type, remote id) of the task named `name`, None if there is none."""
    return conn.execute("SELECT type, remote_id FROM task WHERE name = ?", (name,)).fetchone()


def names(conn: sqlite3.Connection) -> list[str]:
    """Every task's name, sorted."""
    return [r[0] for r in conn.execute("SELECT name FROM task ORDER BY name")]


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM task WHERE name = ?", (name,)).fetchone() is not None


def rename(conn: sqlite3.Connection, old: str, new: str) -> None:
    conn.execute("UPDATE task SET name = ? WHERE name = ?", (new, old))


def bound_under(conn: sqlite3.Connection, root: str) -> list[str]:
    """The names of the tasks bound to folders inside the folder `root` (not `root`
    itself), by root."""
    from localrepo.catalog.files import like_prefix

    rows = conn.execute(
        "SELECT name FROM task WHERE root LIKE ? ESCAPE '\\' ORDER BY root",
        (like_prefix(root + "/") + "%",),
    )
    return [r[0] for r in rows]


def remove(conn: sqlite3.Connection, task_id: int) -> None:
    """Unbind a task: its row goes, and with it (ON DELETE CASCADE) its labels, its
    images' label rows, its conflicts and scan problems; its journal rows stay as
    history with no task (ON DELETE SET NULL). Files are not the task's rows: see
    `files.delete_under`."""
    conn.execute("DELETE FROM task WHERE id = ?", (task_id,))


def id_root_remote(conn: sqlite3.Connection, name: str) -> tuple[int, str, str | None]:
    """(id, root, remote id) of the task named `name` (which exists)."""
    return conn.execute("SELECT id, root, remote_id FROM task WHERE name = ?", (name,)).fetchone()


def holder_of(conn: sqlite3.Connection, folder: str) -> str:
    """The name of the task whose root holds `folder` (the deepest; the root's task at
    least)."""
    best = ("", "")
    for name, root in conn.execute("SELECT name, root FROM task"):
        inside = root == "" or folder == root or folder.startswith(root + "/")
        if inside and (not best[0] or len(root) > len(best[1])):
            best = (name, root)
    return best[0]
