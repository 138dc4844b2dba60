"""What the training page shows, decided from rows (no I/O): the state of the task's
latest training, the versions table and which version a roll back returns to.

In: the task's dict (``data/tasks.get_task``), its models (``data/models.model_page``,
the API's ``model/`` rows) and the newest version's progress (``data/training.progress_of``:
a fraction 0..1 and a stage, what the worker last reported). Out: frozen dataclasses the templates read
(templates/training_panel.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WAITING, IN_TRAINING, TRAINED, ERROR = "WAITING", "IN_TRAINING", "TRAINED", "ERROR"
# The single numbers a version is judged by, in the order shown (data/training.py's
# metrics; which apply depends on the task type).
HEADLINE = (
    ("accuracy", "Accuracy"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("exact_match", "Exact match"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
)


@dataclass(frozen=True)
class JobStatus:
    state: str  # "none", "waiting", "training", "trained", "failed"
    text: str
    active: bool  # still moving: the page polls until it is not
    # While training: how far (0..1, the <progress> bar's value; None: not known yet)
    # and what it does now.
    progress: float | None = None
    stage: str = ""


@dataclass(frozen=True)
class VersionRow:
    version: int
    created: str  # ISO date and time, UTC
    status: str
    images: int | None  # training + test images, once trained
    metrics: tuple[tuple[str, str], ...]  # (name, value shown)
    production: bool
    can_promote: bool
    detail: str


def _shown(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def job_status(
    models: Sequence[dict[str, Any]], progress: float | None = None, stage: str = ""
) -> JobStatus:
    """The state of the newest version's training (the one a Train press made);
    ``progress`` and ``stage``: what its job last reported (used while it trains)."""
    if not models:
        return JobStatus("none", "Not trained yet: press Train to train a first version.", False)
    latest = max(models, key=lambda m: m["version"])
    version, status = latest["version"], latest["train_status"]
    if status == WAITING:
        return JobStatus(
            "waiting", f"Waiting: version {version} is queued and starts shortly.", True
        )
    if status == IN_TRAINING:
        shown = None if progress is None else min(1.0, max(0.0, progress))
        figure = "" if shown is None else f" ({shown:.0%})"
        doing = stage or "reading the images and fitting the model"
        return JobStatus(
            "training", f"Training version {version}{figure}: {doing}…", True, shown, doing
        )
    if status == ERROR:
        reason = latest.get("detail") or "no reason was recorded"
        return JobStatus("failed", f"Failed: version {version} did not train: {reason}", False)
    metrics = latest.get("metrics") or {}
    accuracy, mae = latest.get("accuracy"), metrics.get("mae")
    figure = ""
    if accuracy is not None:
        figure = f", accuracy {_shown(accuracy)} on its test images"
    elif mae is not None:  # regression: no accuracy
        figure = f", MAE {_shown(mae)} on its test images"
    return JobStatus("trained", f"Trained: version {version}{figure}.", False)


def version_rows(models: Sequence[dict[str, Any]], production: int | None) -> list[VersionRow]:
    """The versions, newest first."""
    rows = []
    for model in sorted(models, key=lambda m: m["version"], reverse=True):
        metrics = model.get("metrics") or {}
        trained = model["train_status"] == TRAINED
        counted = [metrics.get("train_images"), metrics.get("test_images")]
        images = sum(counted) if trained and all(isinstance(c, int) for c in counted) else None
        shown = tuple(
            (name, _shown(metrics[key])) for key, name in HEADLINE if metrics.get(key) is not None
        )
        rows.append(
            VersionRow(
                version=model["version"],
                created=model["created"],
                status=model["train_status"],
                images=images,
                metrics=shown,
                production=model["version"] == production,
                can_promote=trained and model["version"] != production,
                detail=model.get("detail") or "",
            )
        )
    return rows


def rollback_target(models: Sequence[dict[str, Any]], production: int | None) -> int | None:
    """The newest trained version older than production; None when there is none."""
    if production is None:
        return None
    older = [
        m["version"] for m in models if m["train_status"] == TRAINED and m["version"] < production
    ]
    return max(older, default=None)
