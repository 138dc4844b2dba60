"""The server's tables (sqlmodel).

Ids are UUID4 strings. Timestamps are fixed-width ISO 8601 strings in UTC
(``2024-05-01T12:00:00.000000Z``): they sort as text and are served as stored.
JSON columns (``meta_data``, ``metrics``) hold the JSON text verbatim.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

# 2: models.backend, embeddings, model_heads (a version-1 database is upgraded on start).
# 3: the index ix_image_labels_image_created (created on start if missing).
# 4: users.password_hash, web_sessions (the web interface's sign-in).
# 5: training_jobs.progress and .stage (the training's live progress), image_events (each
#    image's history).
# 6: images.verify_count, verifications, points, label_subtasks; images.real set true on
#    every stored image (the hosted service's default, which this server lacked).
# 7: image_changes, change_counters (the change feed, data/changes.py; its triggers are
#    installed on start).
SCHEMA_VERSION = 7


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return iso_at(datetime.now(UTC))


def iso_at(moment: datetime) -> str:
    """A UTC moment in the stored form (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SchemaInfo(SQLModel, table=True):
    __tablename__ = "schema_info"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(unique=True, index=True, max_length=150)
    created: str = Field(default_factory=now_iso, max_length=32)
    # argon2id (server/passwords.py); None: the user cannot sign in to the web interface.
    password_hash: str | None = Field(default=None, max_length=255)


class ApiToken(SQLModel, table=True):
    """An API token; only its sha256 is stored."""

    __tablename__ = "api_tokens"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=36)
    name: str = Field(default="", max_length=150)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    created: str = Field(default_factory=now_iso, max_length=32)


class WebSession(SQLModel, table=True):
    """A signed-in browser (server/web/session.py). Only the sha256 of the cookie's
    value is stored; ``csrf_token`` is the session's synchronizer token for its forms."""

    __tablename__ = "web_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=36)
    csrf_token: str = Field(max_length=64)
    created: str = Field(default_factory=now_iso, max_length=32)
    expires: str = Field(index=True, max_length=32)


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_workspace_owner_name"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    owner_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=36)
    name: str = Field(max_length=255)
    is_default: bool = False
    meta_data: str = Field(default="{}")
    created: str = Field(default_factory=now_iso, max_length=32)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_ws_created", "workspace_id", "created", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", ondelete="CASCADE", max_length=36)
    name: str = Field(max_length=255)
    type: str = Field(max_length=32)
    description: str = Field(default="")
    production_version: int | None = None
    last_train_status: str | None = Field(default=None, max_length=32)
    created: str = Field(default_factory=now_iso, max_length=32)


class Label(SQLModel, table=True):
    __tablename__ = "labels"
    # WITHOUT ROWID (SQLite): rows clustered by id, one B-tree seek per label look-up
    # (listings look up every label of every image).
    __table_args__ = (
        Index("ix_labels_ws_created", "workspace_id", "created", "id"),
        {"sqlite_with_rowid": False},
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", ondelete="CASCADE", max_length=36)
    name: str = Field(max_length=255)
    type: str = Field(max_length=32)
    description: str = Field(default="")
    output_name: str | None = Field(default=None, max_length=255)
    negative_for_task: str | None = Field(
        default=None, foreign_key="tasks.id", ondelete="SET NULL", index=True, max_length=36
    )
    created: str = Field(default_factory=now_iso, max_length=32)


class TaskLabel(SQLModel, table=True):
    __tablename__ = "task_labels"
    __table_args__ = (
        Index("ix_task_labels_label", "label_id", "task_id"),
        {"sqlite_with_rowid": False},
    )
    task_id: str = Field(
        foreign_key="tasks.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    label_id: str = Field(
        foreign_key="labels.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    created: str = Field(default_factory=now_iso, max_length=32)


class Image(SQLModel, table=True):
    """A training image. ``upload_sha256`` (the bytes as uploaded) finds duplicates;
    ``blob_sha256`` names the stored bytes (they differ when the server resized)."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("workspace_id", "upload_sha256", name="uq_images_ws_upload"),
        Index("ix_images_ws_created", "workspace_id", "created", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", ondelete="CASCADE", max_length=36)
    upload_sha256: str = Field(max_length=64)
    blob_sha256: str = Field(index=True, max_length=64)
    # Media URLs are "media/<blob sha256>/<media_key><extension>" (and "..._thumb.jpg"):
    # the random key makes them unguessable, so they are served without auth.
    media_key: str = Field(unique=True, index=True, max_length=64)
    extension: str = Field(max_length=16)
    content_type: str = Field(max_length=64)
    size_bytes: int
    img_width: int
    img_height: int
    meta_data: str = Field(default="{}")
    test_image: bool = False
    real: bool = True
    # How many verifications the image has (kept by data/verifications.py, in the
    # transaction that adds or removes one): the API's ``verifyCount``.
    verify_count: int = 0
    created: str = Field(default_factory=now_iso, max_length=32)


class ImageLabel(SQLModel, table=True):
    __tablename__ = "image_labels"
    __table_args__ = (
        Index("ix_image_labels_label", "label_id", "image_id"),
        # An image's labels in answer order without a sort per image (listing pages).
        Index("ix_image_labels_image_created", "image_id", "created", "label_id"),
        {"sqlite_with_rowid": False},
    )
    image_id: str = Field(
        foreign_key="images.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    label_id: str = Field(
        foreign_key="labels.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    value: float | None = None
    created: str = Field(default_factory=now_iso, max_length=32)


class TrainedModel(SQLModel, table=True):
    """One trained (or training) version of a task."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("task_id", "version", name="uq_models_task_version"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    task_id: str = Field(foreign_key="tasks.id", ondelete="CASCADE", index=True, max_length=36)
    version: int
    train_status: str = Field(default="WAITING", max_length=32)
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    metrics: str = Field(default="{}")
    detail: str | None = None
    # The feature backend that trained it (see localrepo/server/ml/features.py).
    backend: str | None = Field(default=None, max_length=64)
    created: str = Field(default_factory=now_iso, max_length=32)


class ModelHead(SQLModel, table=True):
    """A trained model's head: plain weights (numpy .npz bytes, never a pickle)."""

    __tablename__ = "model_heads"
    model_id: str = Field(
        foreign_key="models.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    data: bytes


class Embedding(SQLModel, table=True):
    """Cached image features, per backend and stored-bytes sha256: an image's features
    are computed once, so a retrain on the same images skips the backbone."""

    __tablename__ = "embeddings"
    backend: str = Field(primary_key=True, max_length=64)
    sha256: str = Field(primary_key=True, max_length=64)
    dim: int
    data: bytes  # float32, little-endian
    created: str = Field(default_factory=now_iso, max_length=32)


class TrainingJob(SQLModel, table=True):
    """The training queue (localrepo/server/data/training.py).

    ``status``: ``queued`` -> ``running`` -> ``done`` or ``failed``. A job is claimed by
    setting ``status`` from ``queued`` to ``running`` with a ``worker`` id in one
    conditional UPDATE; a server start puts ``running`` jobs back to ``queued``.
    """

    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_status", "status", "created"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    task_id: str = Field(foreign_key="tasks.id", ondelete="CASCADE", index=True, max_length=36)
    model_id: str | None = Field(
        default=None, foreign_key="models.id", ondelete="SET NULL", max_length=36
    )
    status: str = Field(default="queued", max_length=32)
    worker: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    error: str | None = None
    created: str = Field(default_factory=now_iso, max_length=32)
    started: str | None = Field(default=None, max_length=32)
    heartbeat: str | None = Field(default=None, max_length=32)
    finished: str | None = Field(default=None, max_length=32)
    # How far a running job is (0..1) and what it does, in the user's words; written
    # with the heartbeat (per batch of images, not per image).
    progress: float | None = None
    stage: str | None = Field(default=None, max_length=200)


class Verification(SQLModel, table=True):
    """A person's check of an image's labels (``annotate/v2/verification/``)."""

    __tablename__ = "verifications"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", max_length=36)
    created: str = Field(default_factory=now_iso, max_length=32)


class Point(SQLModel, table=True):
    """A named piece of JSON, optionally about an image (``annotate/v2/point/``)."""

    __tablename__ = "points"
    __table_args__ = (Index("ix_points_ws_created", "workspace_id", "created", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", ondelete="CASCADE", max_length=36)
    image_id: str | None = Field(
        default=None, foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36
    )
    name: str = Field(default="", max_length=255)
    data: str = Field(default="null")
    created: str = Field(default_factory=now_iso, max_length=32)


class LabelSubtask(SQLModel, table=True):
    """A task that refines a label (``label/<id>/add-task/``: the hosted service's
    label -> task hierarchy, listed as the label's ``recognition_tasks``)."""

    __tablename__ = "label_subtasks"
    label_id: str = Field(
        foreign_key="labels.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    task_id: str = Field(
        foreign_key="tasks.id", ondelete="CASCADE", primary_key=True, index=True, max_length=36
    )
    created: str = Field(default_factory=now_iso, max_length=32)


class ImageEvent(SQLModel, table=True):
    """One change of an image, for its history page: written in the transaction of the
    change itself (data/images.py), one row per change.

    ``kind``: ``uploaded``, ``labelled``, ``unlabelled``, ``value`` (a value label's value
    changed), ``metadata``, ``test_image``, ``real``. ``label_name`` is the label's name
    when it happened (kept when the label is renamed or deleted); ``old``/``new`` the
    values shown (text). ``user_id`` is who did it (no foreign key: the history outlives
    nothing but its image). The integer id orders events of the same instant.
    """

    __tablename__ = "image_events"
    __table_args__ = (Index("ix_image_events_image", "image_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", max_length=36)
    kind: str = Field(max_length=32)
    user_id: str | None = Field(default=None, max_length=36)
    label_name: str | None = Field(default=None, max_length=255)
    old: str | None = Field(default=None, max_length=255)
    new: str | None = Field(default=None, max_length=255)
    created: str = Field(default_factory=now_iso, max_length=32)


class ImageChange(SQLModel, table=True):
    """The change feed (data/changes.py): per image, its workspace's sequence number of
    the last change to what the listing shows of it; ``deleted``: a tombstone. Written
    only by the triggers of data/changes.py. No foreign key: a tombstone outlives its
    image."""

    __tablename__ = "image_changes"
    __table_args__ = (Index("ix_image_changes_ws_seq", "workspace_id", "seq"),)
    image_id: str = Field(primary_key=True, max_length=36)
    workspace_id: str = Field(max_length=36)
    # NULL only inside the writing transaction, on PostgreSQL (stamped at commit).
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    deleted: bool = False


class ChangeCounter(SQLModel, table=True):
    """The last change number handed out in each workspace (data/changes.py)."""

    __tablename__ = "change_counters"
    workspace_id: str = Field(primary_key=True, max_length=36)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class RateBucket(SQLModel, table=True):
    """A rate limit's token bucket, shared by every process on the database (server/
    ratelimit.py; SQLite's one process keeps its buckets in memory). ``key``: the sha256
    of the limit's name and its key (a token id; an address and a user name); ``stamp``:
    the database clock, epoch seconds, when ``tokens`` was last computed; ``allowed``:
    whether that last request was let through; ``full_at``: when the bucket is full
    again, and its row as good as none (then removed). Made by create_all: nothing to
    migrate."""

    __tablename__ = "rate_buckets"
    key: str = Field(primary_key=True, max_length=64)
    tokens: float
    stamp: float
    allowed: bool = True
    full_at: float = Field(index=True)
