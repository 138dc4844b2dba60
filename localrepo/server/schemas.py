"""Request and response shapes: used to validate input and to write the OpenAPI document.

Responses are built as plain dicts (see ``serialize``) and encoded with orjson; these
models describe them (tests check the real answers against the OpenAPI document).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

TaskType = Literal["multi_class", "multi_label", "regression"]
LabelType = Literal["category", "tag", "value"]
TrainStatus = Literal["WAITING", "IN_TRAINING", "TRAINED", "ERROR"]

T = TypeVar("T")

_NAME = Field(min_length=1, max_length=255)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


# ---- input ---------------------------------------------------------------------------


class WorkspaceRef(_In):
    workspace: str | None = Field(
        default=None, description='Workspace id; missing, empty or "Default" = the default one.'
    )


class TaskCreate(WorkspaceRef):
    name: str = _NAME
    type: TaskType = "multi_class"
    description: str | None = Field(default=None, max_length=10_000)


class TaskUpdate(WorkspaceRef):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    # Which trained version classify/ uses (a promotion or a rollback); bounded to the
    # database integer, so that a huge number is a 400 and not an overflow.
    production_version: int | None = Field(default=None, ge=1, le=2**63 - 1)


class LabelCreate(WorkspaceRef):
    name: str = _NAME
    type: LabelType = "category"
    description: str | None = Field(default=None, max_length=10_000)
    output_name: str | None = Field(default=None, max_length=255)


class LabelUpdate(WorkspaceRef):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    output_name: str | None = Field(default=None, max_length=255)


class LabelRef(WorkspaceRef):
    label_id: str = Field(description="Label id (UUID).")


class TaskRef(WorkspaceRef):
    task_id: str = Field(description="Task id (UUID).")


class ImageLabelRef(WorkspaceRef):
    label_id: str = Field(description="Label id (UUID).")
    value: float | None = Field(
        default=None, allow_inf_nan=False, description="The value, for value labels."
    )


class ImageUpload(WorkspaceRef):
    base64: str = Field(description="The image: bare base64 or a data URI.")
    meta_data: dict[str, Any] | None = None
    noresize: bool = False
    test_image: bool = False
    real: bool = True


class ImageUploadForm(BaseModel):
    """multipart/form-data upload (documentation only)."""

    img_path: bytes = Field(json_schema_extra={"format": "binary"})
    meta_data: str | None = Field(default=None, description="A JSON object, as a string.")
    noresize: bool = False
    test_image: bool = False
    real: bool = True
    workspace: str | None = None


class UploadFields(WorkspaceRef):
    """The non-image fields of an upload (JSON or form)."""

    meta_data: dict[str, Any] | None = None
    noresize: bool = False
    test_image: bool = False
    real: bool = True


class VerificationCreate(WorkspaceRef):
    image_id: str | None = Field(default=None, description="The image verified.")
    image: str | None = Field(default=None, description="Same as image_id.")
    user: str | None = Field(
        default=None, description="Who verified it: your own user id, or left out."
    )


class PointCreate(WorkspaceRef):
    image: str | None = Field(default=None, description="The image it is about, if any.")
    name: str = Field(default="", max_length=255)
    data: Any = Field(default=None, description="Any JSON value, kept as sent.")


class ImageUpdate(WorkspaceRef):
    meta_data: dict[str, Any] | None = None
    test_image: bool | None = None
    real: bool | None = None


class BulkImageUpdate(WorkspaceRef):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    images: list[str] = Field(default_factory=list, max_length=100_000)
    labels: list[str] = Field(default_factory=list, max_length=1000)
    labels_add: list[str] = Field(default_factory=list, alias="labels-add", max_length=1000)
    labels_remove: list[str] = Field(default_factory=list, alias="labels-remove", max_length=1000)
    mark_test: bool = Field(default=False, alias="mark-test")
    unmark_test: bool = Field(default=False, alias="unmark-test")
    mark_real: bool = Field(default=False, alias="mark-real")
    unmark_real: bool = Field(default=False, alias="unmark-real")


class ClassifyRequest(WorkspaceRef):
    task_id: str | None = None
    task: str | None = None
    # Bounded to the database's integer: a larger one must be a 400, not an overflow.
    version: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    records: list[dict[str, Any]] = Field(default_factory=list)
    store_images: bool = False


# ---- output --------------------------------------------------------------------------


class Detail(BaseModel):
    detail: str


class TrainQueued(BaseModel):
    detail: str
    model_id: str | None = Field(description="The model (version) that will be trained.")
    version: int | None
    queued: bool = Field(description="False when a waiting training already covers it.")


class ClassifyOut(BaseModel):
    task_id: str
    version: int
    model_format: str
    status: dict[str, Any]
    statistics: dict[str, float]
    records: list[dict[str, Any]] = Field(
        description="Each: the record's own keys (but _base64), _status, _width, _height, "
        "best_label, labels (best_labels for multi_label), _stored_image_id."
    )


class Count(BaseModel):
    count: int


class TaskOut(BaseModel):
    id: str
    name: str
    type: TaskType
    description: str
    workspace: str
    production_version: int | None
    last_train_status: TrainStatus | None
    created: datetime
    labels: list[str]
    accuracy: float | None


class LabelOut(BaseModel):
    id: str
    name: str
    type: LabelType
    description: str
    output_name: str | None
    workspace: str
    images_count: int
    tasks_count: int
    objects_count: int
    negative_for_task: str | None
    created: datetime


class SubtaskOut(BaseModel):
    id: str
    name: str
    type: TaskType


class LabelDetailOut(LabelOut):
    """One label: also the tasks that refine it (``add-task/``)."""

    recognition_tasks: list[SubtaskOut]


class ImageLabelOut(BaseModel):
    id: str
    name: str
    type: LabelType
    value: float | None = Field(default=None, description="Only for value labels.")


class ImageOut(BaseModel):
    id: str
    created: datetime
    img_path: str
    thumb_img_path: str
    img_width: int
    img_height: int
    meta_data: dict[str, Any]
    test_image: bool
    real: bool
    verifyCount: int
    workspace: str
    labels: list[ImageLabelOut]


class ModelOut(BaseModel):
    id: str
    task: str
    task_name: str
    version: int
    train_status: TrainStatus
    created: datetime
    accuracy: float | None
    precision: float | None
    recall: float | None
    metrics: dict[str, Any]
    detail: str | None
    backend: str | None = Field(description="The feature backend that trained it.")


class WorkspaceOut(BaseModel):
    id: str
    name: str
    created: datetime
    owner: str
    meta_data: dict[str, Any]
    is_default: bool


class VerificationOut(BaseModel):
    id: str
    image: str
    user: str
    created: datetime


class PointOut(BaseModel):
    id: str
    image: str | None
    name: str
    data: Any
    created: datetime
    workspace: str


class UserOut(BaseModel):
    """``account/v2/user/``: the caller (the hosted service's fields for people that
    this server does not keep, e.g. e-mail and names, are empty strings)."""

    id: str
    username: str
    email: str
    first_name: str
    last_name: str
    date_joined: datetime
    default_workspace: str
    workspaces: list[WorkspaceOut]


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]
