"""The catalog's tables (sqlmodel). Schema changes go through Alembic revisions only.

Three states per entity (design section 1): rows of `image_label` and `task_label` carry a
`state` column that is one of LOCAL (last observed on disk), REMOTE (last listed from the
API) or SYNCED (the merge base both sides last agreed on).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlalchemy import Text as SAText
from sqlmodel import Field, SQLModel

from localrepo.catalog.journal import PENDING
from localrepo.catalog.sides import LOCAL, REMOTE, STATES, SYNCED

__all__ = ["LOCAL", "REMOTE", "STATES", "SYNCED"]


class RepoMeta(SQLModel, table=True):
    """Small key/value facts about the repository (layout fingerprint, last scan, ...)."""

    __tablename__ = "repo_meta"

    key: str = Field(primary_key=True)
    value: str


class Task(SQLModel, table=True):
    """A task bound to a folder of the repository (its "task root")."""

    __tablename__ = "task"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    type: str  # multi_class | multi_label | regression
    root: str = Field(unique=True)  # posix path relative to the repository root; "" = root
    remote_id: str | None = Field(default=None, index=True)
    workspace: str | None = None
    created_ns: int


class Label(SQLModel, table=True):
    """A label by name and type. Labels belong to the workspace, not to one task."""

    __tablename__ = "label"
    __table_args__ = (UniqueConstraint("name", "type", name="uq_label_name_type"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str  # Unicode NFC
    type: str  # category | tag | value
    remote_id: str | None = Field(default=None, index=True)


class TaskLabel(SQLModel, table=True):
    """A label attached to a task, in one of the three states."""

    __tablename__ = "task_label"

    state: str = Field(primary_key=True)
    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")
    label_id: int = Field(primary_key=True, foreign_key="label.id", ondelete="CASCADE", index=True)


class Image(SQLModel, table=True):
    """One image content, keyed by the xxh3_128 hash of its bytes (hex)."""

    __tablename__ = "image"
    # Partial: a scan inserts thousands of images with no remote id yet, and an index of
    # NULLs would only cost time.
    __table_args__ = (
        Index("ix_image_remote_id", "remote_id", sqlite_where=text("remote_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    hash: str = Field(unique=True)
    size: int
    width: int | None = None
    height: int | None = None
    format: str | None = None
    remote_id: str | None = None  # indexed where set (see __table_args__)
    created_here: bool = False  # this repository uploaded it (may delete it remotely)
    meta_data: str | None = Field(default=None, sa_column=Column(SAText, nullable=True))


class File(SQLModel, table=True):
    """A file on disk (path relative to the repository root) and its stat cache.

    Valid images point at their `image`; anything else keeps `image_id` NULL and says why
    in `reason`. `cached_ns` is when the stat row was written: an mtime that close to it is
    "racy" and gets re-hashed on the next scan (git's racy-clean rule).
    """

    __tablename__ = "file"
    # Revision 0009: a full scan reads each folder's signatures by path range, and the
    # rows that must not settle (racy or invalid: few) by a partial index.
    __table_args__ = (
        Index(
            "ix_file_damaged_image_id",
            "damaged_image_id",
            sqlite_where=text("damaged_image_id IS NOT NULL"),
        ),
        Index("ix_file_path_stat_sig", "path", "stat_sig"),
        Index(
            "ix_file_unsettled",
            "path",
            sqlite_where=text("reason IS NOT NULL OR mtime_ns >= cached_ns - 2000000000"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(unique=True)
    # Indexed (revision 0006): a change of a few files re-derives the labels of their
    # images, and status names the files of changed images; both look files up by image.
    image_id: int | None = Field(
        default=None, foreign_key="image.id", ondelete="SET NULL", index=True
    )
    dev: int
    # Indexed (revision 0009): a scan looks up whether a changed file's inode is a
    # catalogued file's (a move or a touch keeps it: hash it before decoding).
    inode: int = Field(index=True)
    size: int
    mtime_ns: int
    ctime_ns: int
    cached_ns: int
    reason: str | None = None  # why this is not a valid image (NULL when it is)
    # A damaged file: the image it held while it was valid, kept while it is invalid, so
    # that sync holds that image back instead of deleting it (revision 0005). No foreign
    # key: image rows are never deleted, and SQLite would rebuild the table for one.
    # A partial index (revision 0009): status lists the damaged files, which are few.
    damaged_image_id: int | None = None
    # hash() of (dev, inode, size, mtime_ns, ctime_ns): what a no-change scan compares, so
    # it loads two numbers a file instead of five. A Python whose tuple hash differs only
    # costs one re-hash of every file.
    stat_sig: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ImageLabel(SQLModel, table=True):
    """An image linked to a label within a task, with an optional regression value."""

    __tablename__ = "image_label"
    # The row lives in its primary key's b-tree (one insert, not two; revision 0004).
    __table_args__ = {"sqlite_with_rowid": False}

    state: str = Field(primary_key=True)
    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")
    image_id: int = Field(primary_key=True, foreign_key="image.id", ondelete="CASCADE")
    label_id: int = Field(primary_key=True, foreign_key="label.id", ondelete="CASCADE")
    value: float | None = None


class AuxFile(SQLModel, table=True):
    """Sidecars and ignore files: their stat decides whether the layout must be re-derived."""

    __tablename__ = "aux_file"

    path: str = Field(primary_key=True)
    size: int
    mtime_ns: int
    inode: int
    content_hash: str


class JournalEntry(SQLModel, table=True):
    """The change journal: observed changes and queued operations, in order.

    An entry is committed before its side effect; `status` moves pending -> in_flight ->
    done | failed. For scanner observations `kind` is one of added, modified, moved,
    deleted, label_renamed, value_changed, labels_changed.
    """

    __tablename__ = "journal"
    # By image (revision 0009): where a deleted file was last seen, for `repo status`.
    __table_args__ = (
        Index("ix_journal_status", "status", "id"),
        Index("ix_journal_image_hash", "image_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_ns: int
    kind: str
    status: str = PENDING
    task_id: int | None = Field(default=None, foreign_key="task.id", ondelete="SET NULL")
    path: str | None = None
    old_path: str | None = None
    image_hash: str | None = None
    detail: str | None = Field(default=None, sa_column=Column(SAText, nullable=True))
    attempts: int = 0
    error: str | None = None
    finished_ns: int | None = None


class Conflict(SQLModel, table=True):
    """A field changed on both sides to different values; settled by `repo resolve`."""

    __tablename__ = "conflict"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE", index=True)
    image_id: int | None = Field(default=None, foreign_key="image.id", ondelete="SET NULL")
    path: str | None = None
    field: str  # label | labels | value | bytes
    base: str | None = None  # JSON
    local: str | None = None  # JSON
    remote: str | None = None  # JSON
    created_ns: int
    resolved_ns: int | None = None
    resolution: str | None = None  # local | remote, with the losing value kept in base/local/remote


class ScanProblem(SQLModel, table=True):
    """Layout problems found by the last scan (case twins, sidecar errors, missing values)."""

    __tablename__ = "scan_problem"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", ondelete="CASCADE")
    path: str | None = None
    kind: str
    message: str


class RemoteListing(SQLModel, table=True):
    """A task's copy of the remote listing, kept for the change feed (revision 0006,
    catalog/remote_listing.py): each remote image the last sync learned of, as the
    server answered it (JSON text)."""

    __tablename__ = "remote_listing"
    __table_args__ = {"sqlite_with_rowid": False}

    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")
    image_id: str = Field(primary_key=True)
    doc: str


class RemoteFeed(SQLModel, table=True):
    """Where a task's `remote_listing` stands in the server's change feed: the cursor,
    and what it was taken for (remote URL, workspace, remote task, label ids)."""

    __tablename__ = "remote_feed"

    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")
    source: str  # JSON: url, workspace, remote task id, label ids
    cursor: str


class WriteEpoch(SQLModel, table=True):
    """One row: a number that moves with every catalog write that can change a plan
    (revision 0007; catalog/db.py moves it, and triggers on the small tables)."""

    __tablename__ = "write_epoch"

    id: int = Field(primary_key=True)
    n: int


class QuietMark(SQLModel, table=True):
    """Where a task's last fully clean sync ended (revision 0007, catalog/quiet_marks.py):
    the feed source and cursor, the write epoch, the remote labels and the options it
    ran with. docs/sync.md, "The quiet shortcut"."""

    __tablename__ = "quiet_mark"

    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")
    source: str
    cursor: str
    epoch: int
    remote_labels: str
    options: str


class LabelWatch(SQLModel, table=True):
    """A task whose images with differing SYNCED and LOCAL labels are all in
    `label_dirty` (revision 0009, catalog/label_watch.py)."""

    __tablename__ = "label_watch"

    task_id: int = Field(primary_key=True, foreign_key="task.id", ondelete="CASCADE")


class LabelDirty(SQLModel, table=True):
    """An image of a watched task whose labels may differ between SYNCED and LOCAL:
    they did when the watch began, or its label rows were written since (triggers on
    image_label, revision 0009)."""

    __tablename__ = "label_dirty"
    __table_args__ = {"sqlite_with_rowid": False}

    task_id: int = Field(primary_key=True)
    image_id: int = Field(primary_key=True)
