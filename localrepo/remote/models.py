"""Typed, read-only views of the API's objects.

Parsing is lenient: a missing field gets a neutral default, an extra field is ignored,
a field of the wrong type is coerced when that is unambiguous and dropped otherwise.
Nothing here raises on odd input; the original dict stays in `raw`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from localrepo.vocabulary import CATEGORY, MULTI_CLASS


def _str(value: Any, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return default


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = _str(value)
    return text if text else None


def _ref(value: Any) -> str | None:
    """An id given either as a string or as an object with an ``id``."""
    if isinstance(value, Mapping):
        return _opt_str(value.get("id"))
    return _opt_str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities, booleans and non-numbers.
    Numeric strings count (DRF serialises decimals as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _bool(value: Any, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no", ""}:
            return False
    return default


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return dict(parsed) if isinstance(parsed, dict) else {}
    return {}


def _mapping(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else {}


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    is_default: bool
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> Workspace:
        d = _mapping(data)
        return cls(
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            is_default=_bool(d.get("is_default")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class RemoteTask:
    id: str
    name: str
    type: str
    description: str
    workspace: str | None
    production_version: int | None
    last_train_status: str | None
    labels: tuple[str, ...]  # label ids
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> RemoteTask:
        d = _mapping(data)
        labels = d.get("labels")
        ids = (
            tuple(i for i in (_ref(x) for x in labels) if i)
            if isinstance(labels, (list, tuple))
            else ()
        )
        return cls(
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            type=_str(d.get("type"), MULTI_CLASS),
            description=_str(d.get("description")),
            workspace=_ref(d.get("workspace")),
            production_version=_int(d.get("production_version")),
            last_train_status=_opt_str(d.get("last_train_status")),
            labels=ids,
            raw=dict(d),
        )


@dataclass(frozen=True)
class RemoteLabel:
    id: str
    name: str
    type: str
    description: str
    output_name: str | None
    negative_for_task: str | None
    images_count: int | None
    # How many tasks it is attached to (None: the server did not say).
    tasks_count: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> RemoteLabel:
        d = _mapping(data)
        return cls(
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            type=_str(d.get("type"), CATEGORY),
            description=_str(d.get("description")),
            output_name=_opt_str(d.get("output_name")),
            negative_for_task=_ref(d.get("negative_for_task")),
            images_count=_int(d.get("images_count")),
            tasks_count=_int(d.get("tasks_count")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class RemoteImageLabel:
    id: str
    name: str
    type: str
    value: float | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def value_invalid(self) -> bool:
        """The remote sent a value that is not a finite number (NaN, inf, text...):
        `value` is None and the caller should report it."""
        raw = self.raw.get("value")
        return raw is not None and self.value is None

    @classmethod
    def from_api(cls, data: Any) -> RemoteImageLabel:
        d = _mapping(data)
        return cls(
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            type=_str(d.get("type"), CATEGORY),
            value=number(d.get("value")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class RemoteImage:
    id: str
    img_path: str
    thumb_img_path: str | None
    width: int | None
    height: int | None
    meta_data: dict[str, Any]
    test_image: bool
    labels: tuple[RemoteImageLabel, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def label_ids(self) -> tuple[str, ...]:
        return tuple(label.id for label in self.labels)

    @classmethod
    def from_api(cls, data: Any) -> RemoteImage:
        d = _mapping(data)
        labels = d.get("labels")
        parsed = (
            tuple(RemoteImageLabel.from_api(x) for x in labels if isinstance(x, Mapping))
            if isinstance(labels, (list, tuple))
            else ()
        )
        width = d.get("img_width", d.get("width"))
        height = d.get("img_height", d.get("height"))
        return cls(
            id=_str(d.get("id")),
            img_path=_str(d.get("img_path")),
            thumb_img_path=_opt_str(d.get("thumb_img_path")),
            width=_int(width),
            height=_int(height),
            meta_data=_dict(d.get("meta_data")),
            test_image=_bool(d.get("test_image")),
            labels=parsed,
            raw=dict(d),
        )


TRAINING = ("WAITING", "IN_TRAINING")  # a task's or a model's status while a job runs
TRAIN_FINISHED = ("TRAINED", "ERROR")


@dataclass(frozen=True)
class RemoteModel:
    """One trained version of a task. `metrics` holds what the server measured on the
    test part (its shape depends on the task type; see docs/training.md); `backend` is
    the feature extractor that trained it when the server says so; `detail` the reason
    of an ``ERROR``."""

    id: str
    task: str | None
    version: int | None
    train_status: str | None
    accuracy: float | None
    metrics: dict[str, Any]
    created: str | None
    task_name: str = ""
    precision: float | None = None
    recall: float | None = None
    detail: str | None = None
    backend: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> RemoteModel:
        d = _mapping(data)
        metrics = _dict(d.get("metrics"))
        backend = next(
            (
                text
                for text in (
                    _opt_str(d.get(key)) or _opt_str(metrics.get(key))
                    for key in ("backend", "model_format", "features")
                )
                if text
            ),
            None,
        )
        return cls(
            id=_str(d.get("id")),
            task=_ref(d.get("task")),
            version=_int(d.get("version")),
            train_status=_opt_str(d.get("train_status")),
            accuracy=number(d.get("accuracy")),
            metrics=metrics,
            created=_opt_str(d.get("created")),
            task_name=_str(d.get("task_name")),
            precision=number(d.get("precision")),
            recall=number(d.get("recall")),
            detail=_opt_str(d.get("detail")),
            backend=backend,
            raw=dict(d),
        )


@dataclass(frozen=True)
class Prediction:
    """One entry of a classified record's ``labels``: a probability (multi_class,
    multi_label) or a predicted `value` (regression)."""

    id: str | None
    name: str
    prob: float | None
    value: float | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> Prediction:
        d = _mapping(data)
        name = _opt_str(d.get("name")) or _opt_str(d.get("output_name")) or _str(d.get("id"))
        return cls(
            id=_opt_str(d.get("id")),
            name=name,
            prob=number(d.get("prob")),
            value=number(d.get("value")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class ClassifiedRecord:
    """One answered record of ``classify/``. `ok` is False for a record the server could
    not classify (undecodable image, unreachable URL): then `error` says why and there
    are no labels."""

    status_code: int
    status_text: str
    best_label: Prediction | None
    best_labels: tuple[Prediction, ...]
    labels: tuple[Prediction, ...]  # by prob, descending, as the server sent them
    width: int | None
    height: int | None
    stored_image_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def error(self) -> str | None:
        if self.ok:
            return None
        return f"{self.status_code} {self.status_text}".strip()

    @classmethod
    def from_api(cls, data: Any) -> ClassifiedRecord:
        d = _mapping(data)
        status = _mapping(d.get("_status"))
        # No _status at all: a server that only answers good records; count it as OK.
        code = _int(status.get("code")) if status else 200
        labels = d.get("labels")
        parsed = (
            tuple(Prediction.from_api(x) for x in labels if isinstance(x, Mapping))
            if isinstance(labels, (list, tuple))
            else ()
        )
        best = d.get("best_label")
        bests = d.get("best_labels")
        return cls(
            status_code=code if code is not None else 0,
            status_text=_str(status.get("text")),
            best_label=Prediction.from_api(best) if isinstance(best, Mapping) else None,
            best_labels=(
                tuple(Prediction.from_api(x) for x in bests if isinstance(x, Mapping))
                if isinstance(bests, (list, tuple))
                else ()
            ),
            labels=parsed,
            width=_int(d.get("_width")),
            height=_int(d.get("_height")),
            stored_image_id=_opt_str(d.get("_stored_image_id")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class ClassifyResult:
    """The answer of one ``classify/`` request; `records` in the order they were sent."""

    task_id: str | None
    version: int | None
    model_format: str | None
    records: tuple[ClassifiedRecord, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> ClassifyResult:
        d = _mapping(data)
        records = d.get("records")
        return cls(
            task_id=_ref(d.get("task_id", d.get("task"))),
            version=_int(d.get("version")),
            model_format=_opt_str(d.get("model_format")),
            records=(
                tuple(ClassifiedRecord.from_api(r) for r in records)
                if isinstance(records, (list, tuple))
                else ()
            ),
            raw=dict(d),
        )
