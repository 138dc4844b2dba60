"""Pure helpers of `repo train`, `models`, `classify` and `evaluate`: picking the task,
judging whether the catalog is synced, metrics tables, and the text they print (the
evaluation itself is evaluation.py's). No I/O here: the shells in ml_train.py,
ml_classify.py and ml_evaluate.py read, call the server and echo."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localrepo.didyoumean import unknown_name
from localrepo.errors import EXIT_DECISION, EXIT_USAGE, LocalrepoError
from localrepo.remote.models import ClassifiedRecord, Prediction, RemoteModel, number
from localrepo.vocabulary import MULTI_LABEL, REGRESSION

PROB_THRESHOLD = 0.5  # a multi_label tag counts as predicted from this probability


@dataclass(frozen=True)
class TaskRow:
    """A task bound in the repository (a row of the catalog's `task` table)."""

    id: int
    name: str
    type: str
    root: str  # relative to the repository root; "" = the root
    remote_id: str | None


def choose_task(tasks: Sequence[TaskRow], name: str | None, here: str | None) -> TaskRow:
    """The task named `name`; without a name the only task, else the one whose root holds
    `here` (the working folder relative to the repository root; None when outside)."""
    if not tasks:
        raise LocalrepoError("This repository has no task bound (see 'repo task list').")
    if name is not None:
        for task in tasks:
            if task.name == name:
                return task
        raise unknown_name("--task", name, [t.name for t in tasks], where="in this repository")
    if len(tasks) == 1:
        return tasks[0]
    if here is not None:
        holding = [
            t for t in tasks if not t.root or here == t.root or here.startswith(t.root + "/")
        ]
        if holding:
            return max(holding, key=lambda t: len(t.root))
    names = ", ".join(sorted(t.name for t in tasks))
    raise LocalrepoError(
        f"This repository has several tasks ({names}): pick one with --task NAME.",
        exit_code=EXIT_USAGE,
    )


def unsynced_message(task: TaskRow, pending: Mapping[str, int], conflicts: int) -> str | None:
    """Why training now would use a dataset that differs from the folders, or None."""
    if task.remote_id is None:
        return (
            f"The task '{task.name}' was never synced, so the server has none of its images. "
            "Run 'repo sync' first."
        )
    parts = []
    if pending:
        total = sum(pending.values())
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(pending.items()))
        parts.append(f"{total} local change{'s' if total != 1 else ''} not synced yet ({kinds})")
    if conflicts:
        parts.append(f"{conflicts} open conflict{'s' if conflicts != 1 else ''}")
    if not parts:
        return None
    return (
        f"The task '{task.name}' has {' and '.join(parts)}: the server would train on a "
        "dataset that differs from your folders. Run 'repo sync' first"
        + (" (and 'repo resolve' for the conflicts)" if conflicts else "")
        + ", or pass --force to train on what the server holds."
    )


def not_synced_error(message: str) -> LocalrepoError:
    return LocalrepoError(message, exit_code=EXIT_DECISION)


def batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# -- numbers and tables ------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: '-' when missing, integers as such, floats rounded."""
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    n = number(value)
    if n is None:
        return str(value)
    return f"{n:.{digits}f}"


def fmt_value(value: float | None) -> str:
    """A regression prediction: four significant digits."""
    if value is None:
        return "-"
    return f"{value:.4g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Plain aligned columns: numbers to the right, text to the left."""
    body = [[str(c) for c in row] for row in rows]
    cells = [[str(h) for h in headers], *body]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = [
        i > 0 and bool(body) and all(_numeric_cell(r[i]) for r in body) for i in range(len(headers))
    ]
    return [
        "  ".join(
            c.rjust(widths[i]) if right[i] else c.ljust(widths[i]) for i, c in enumerate(r)
        ).rstrip()
        for r in cells
    ]


def _numeric_cell(text: str) -> bool:
    return text == "-" or number(text.lstrip("*")) is not None


# -- metrics of a model (as the server reports them) --------------------------------------------

_SCALARS = (
    "accuracy",
    "precision",
    "recall",
    "macro_precision",
    "macro_recall",
    "f1",
    "macro_f1",
    "mae",
    "rmse",
    "r2",
)
_PER_LABEL_KEYS = ("per_label", "per_tag", "per_value", "labels", "tags", "values")


def _confusion(metrics: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """(labels, rows) of a confusion matrix given as {labels, matrix}, a list of lists
    with the labels beside it, or {true: {predicted: n}}."""
    for key, value in metrics.items():
        if "confusion" not in key.lower():
            continue
        if isinstance(value, Mapping):
            labels = value.get("labels")
            matrix = value.get("matrix") or value.get("rows") or value.get("values")
            if isinstance(labels, list) and isinstance(matrix, list):
                return [str(x) for x in labels], [list(r) for r in matrix if isinstance(r, list)]
            if value and all(isinstance(v, Mapping) for v in value.values()):
                names = list(value)
                for row in value.values():
                    names += [n for n in row if n not in names]
                return [str(n) for n in names], [
                    [value.get(t, {}).get(p, 0) for p in names] for t in names
                ]
        if isinstance(value, list) and all(isinstance(r, list) for r in value):
            labels = metrics.get("labels") or metrics.get("label_names") or metrics.get("classes")
            if isinstance(labels, list) and len(labels) == len(value):
                return [str(x) for x in labels], [list(r) for r in value]
            return [str(i) for i in range(len(value))], [list(r) for r in value]
    return None


def _per_label(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    for key in _PER_LABEL_KEYS:
        value = metrics.get(key)
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, Mapping) for v in value.values())
        ):
            return {str(k): dict(v) for k, v in value.items()}
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out = {}
            for row in value:
                name = row.get("name") or row.get("label") or row.get("tag") or row.get("id")
                if name is not None:
                    out[str(name)] = {k: v for k, v in row.items() if k not in ("name", "label")}
            if out:
                return out
    return {}


def summary_numbers(model: RemoteModel) -> dict[str, float]:
    """The headline numbers of a model: accuracy, precision, recall, MAE, RMSE, R2 (those
    the server gave), from the model's fields and its metrics."""
    out: dict[str, float] = {}
    for key, value in (
        ("accuracy", model.accuracy),
        ("precision", model.precision),
        ("recall", model.recall),
    ):
        if value is not None:
            out[key] = value
    for key in _SCALARS:
        n = number(model.metrics.get(key))
        if n is not None and key not in out:
            out[key] = n
    return out


def metrics_lines(metrics: Mapping[str, Any], headline: Mapping[str, Any]) -> list[str]:
    """The metrics table of a model or an evaluation: the headline numbers, a per-label
    table (precision/recall/support, or MAE/RMSE/R2 per value label) and a confusion
    matrix (rows: the true label, columns: the predicted one)."""
    lines: list[str] = []
    numbers: dict[str, Any] = dict(headline)
    for key, value in metrics.items():
        if key not in numbers and _is_number(value):
            numbers[key] = value
    if numbers:
        lines += table(["metric", "value"], [(k, fmt(v)) for k, v in numbers.items()])
    per_label = _per_label(metrics)
    if per_label:
        columns: list[str] = []
        for row in per_label.values():
            columns += [k for k, v in row.items() if k not in columns and _is_number(v)]
        lines.append("")
        lines += table(
            ["label", *columns],
            [(name, *(fmt(row.get(c)) for c in columns)) for name, row in per_label.items()],
        )
    confusion = _confusion(metrics)
    if confusion:
        labels, rows = confusion
        lines.append("")
        lines.append("confusion matrix (rows: true label, columns: predicted)")
        lines += table(
            ["", *labels], [(labels[i], *(fmt(c) for c in row)) for i, row in enumerate(rows)]
        )
    return lines


def _is_number(value: Any) -> bool:
    return number(value) is not None and not isinstance(value, bool)


def model_row(model: RemoteModel, production: int | None, task_type: str) -> list[str]:
    nums = summary_numbers(model)
    mark = "*" if production is not None and model.version == production else ""
    if task_type == REGRESSION:
        scores = [fmt(nums.get("mae")), fmt(nums.get("rmse")), fmt(nums.get("r2"))]
    else:
        scores = [fmt(nums.get("accuracy")), fmt(nums.get("precision")), fmt(nums.get("recall"))]
    created = (model.created or "")[:19].replace("T", " ")
    return [
        f"{mark}{fmt(model.version)}",
        model.train_status or "-",
        created or "-",
        fmt(image_count(model)),
        model.backend or "-",
        *scores,
    ]


def model_headers(task_type: str) -> list[str]:
    scores = (
        ["mae", "rmse", "r2"] if task_type == REGRESSION else ["accuracy", "precision", "recall"]
    )
    return ["version", "status", "created", "images", "backend", *scores]


def image_count(model: RemoteModel) -> int | None:
    """The images a version was trained and tested on, when the server says."""
    parts = [model.metrics.get(k) for k in ("train_images", "test_images")]
    if all(isinstance(n, int) and not isinstance(n, bool) for n in parts):
        return sum(parts)  # type: ignore[arg-type]
    return None


def model_json(model: RemoteModel, production: int | None) -> dict[str, Any]:
    return {
        "id": model.id,
        "version": model.version,
        "production": production is not None and model.version == production,
        "status": model.train_status,
        "created": model.created,
        "backend": model.backend,
        "images": image_count(model),
        **summary_numbers(model),
        "metrics": model.metrics,
        "detail": model.detail,
    }


# -- classification output --------------------------------------------------------------------


def _pred_json(p: Prediction, task_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name}
    if p.id:
        out["id"] = p.id
    if task_type == REGRESSION:
        out["value"] = p.value
    else:
        out["prob"] = p.prob
    return out


def top_labels(record: ClassifiedRecord, task_type: str, top: int) -> list[Prediction]:
    """The `top` most probable labels (every value label for regression)."""
    if task_type == REGRESSION:
        return list(record.labels)
    ordered = sorted(record.labels, key=lambda p: -(p.prob if p.prob is not None else -1.0))
    return ordered[:top]


def prediction_text(record: ClassifiedRecord, task_type: str, top: int) -> str:
    """'dog (0.93), cat (0.05)' or, for regression, 'weight=12.3'."""
    shown = top_labels(record, task_type, top)
    if not shown:
        return "(no labels)"
    if task_type == REGRESSION:
        return ", ".join(f"{p.name}={fmt_value(p.value)}" for p in shown)
    return ", ".join(f"{p.name} ({p.prob:.2f})" if p.prob is not None else p.name for p in shown)


def prediction_json(
    path: str, record: ClassifiedRecord, task_type: str, top: int, version: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "ok": True, "version": version}
    if record.best_label is not None:
        out["best_label"] = _pred_json(record.best_label, task_type)
    if task_type == MULTI_LABEL:
        out["best_labels"] = [_pred_json(p, task_type) for p in predicted_tags(record)]
    out["labels"] = [_pred_json(p, task_type) for p in top_labels(record, task_type, top)]
    if record.width is not None:
        out["width"], out["height"] = record.width, record.height
    return out


def predicted_tags(record: ClassifiedRecord) -> list[Prediction]:
    """multi_label: the tags the model gives (`best_labels` when sent, else prob >= 0.5)."""
    if record.best_labels:
        return list(record.best_labels)
    return [p for p in record.labels if p.prob is not None and p.prob >= PROB_THRESHOLD]
