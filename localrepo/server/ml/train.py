"""One training, start to end: read the task, features (cached), split, fit, evaluate."""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..data import training
from ..data.db import Database
from ..data.storage import Storage
from .features import Backend, decode_rgb
from .heads import (
    MULTI_CLASS,
    MULTI_LABEL,
    REGRESSION,
    Head,
    Sample,
    TaskData,
    TrainingError,
    evaluate,
    fit_head,
    headline,
    split,
    task_data,
    too_few_problems,
    usable_samples,
)

log = logging.getLogger("localrepo.server.training")

EMBED_BATCH = 32
# The share of a training's progress its features take (the rest: fitting, scoring):
# computing features is most of a first training's time.
FEATURES_SHARE = 0.85

# (fraction done 0..1, what it does now in the user's words); per batch, not per image.
Progress = Callable[[float, str], None]


def _no_progress(_fraction: float, _stage: str) -> None:
    return None


@dataclass(frozen=True)
class TrainResult:
    head: bytes
    metrics: dict[str, Any]


def features_for(
    db: Database,
    backend: Backend,
    blobs: Storage,
    shas: list[str],
    on_progress: Progress = _no_progress,
) -> tuple[np.ndarray, int]:
    """Features of the stored blobs ``shas`` (cached ones read, the rest computed and
    cached batch by batch); also how many were computed. ``on_progress`` hears after
    each batch how much of the computing is done."""
    vectors = training.cached_embeddings(db, backend.name, shas)
    missing = [sha for sha in dict.fromkeys(shas) if sha not in vectors]
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start : start + EMBED_BATCH]
        images = []
        for sha in batch:
            try:
                data = blobs.read(sha)
                if data is None:
                    raise FileNotFoundError("its file is missing (see localrepo-server fsck)")
                images.append(decode_rgb(data, draft=448))
            except (OSError, ValueError, SyntaxError) as exc:
                raise TrainingError(f"a stored image ({sha[:12]}) cannot be read: {exc}") from exc
        fresh = dict(zip(batch, backend.embed(images), strict=True))
        training.store_embeddings(db, backend.name, fresh)
        vectors.update(fresh)
        done = start + len(batch)
        on_progress(done / len(missing), f"computing image features: {done} of {len(missing)}")
    if not shas:
        return np.zeros((0, backend.dim), dtype=np.float32), 0
    return np.stack([vectors[sha] for sha in shas]), len(missing)


def load_task_data(db: Database, task_id: str) -> TaskData | None:
    """The task's training data (None when the task does not exist)."""
    rows = training.task_rows(db, task_id)
    return None if rows is None else task_data(*rows)


def score_baseline(
    production: tuple[int, bytes] | None,
    data: TaskData,
    backend: str,
    x_test: np.ndarray,
    test_samples: list[Sample],
) -> dict[str, Any] | None:
    """The production version (as it was when this training started) scored on this
    training's test part: the same images, so the client can tell whether the new
    version is better (docs/training.md, "Which version is in production"). None when
    there is no production version, or it cannot be scored on these features (another
    backend, another task type, a head that does not load)."""
    if production is None or not test_samples:
        return None
    version, stored = production
    try:
        head = Head.from_bytes(stored)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning(
            "production version %d of task %s: head unreadable: %s", version, data.task_id, exc
        )
        return None
    if (
        head.backend != backend
        or head.task_type != data.type
        or head.weights.shape[1] != x_test.shape[1]
    ):
        return None
    scored = evaluate(head, data.labels, x_test, test_samples)
    return {"version": version, **headline(scored), "test_images": len(test_samples)}


def train_task(
    db: Database,
    backend: Backend,
    blobs: Storage,
    task_id: str,
    min_images: int,
    on_progress: Progress = _no_progress,
) -> TrainResult:
    """Train a head on the task's images as they are now; ``on_progress`` hears how far
    it is (features, then fitting, then scoring on the test images)."""
    started = time.perf_counter()
    data = load_task_data(db, task_id)
    if data is None:
        raise TrainingError("the task no longer exists")
    problem = too_few_problems(data.type, data.labels, data.samples, min_images)
    if problem:
        raise TrainingError(problem)
    production = training.production_head(db, task_id)
    samples, skipped = usable_samples(data.type, data.samples)
    train_idx, test_idx = split(data.type, samples, seed=task_id)
    x, computed = features_for(
        db,
        backend,
        blobs,
        [s.sha256 for s in samples],
        lambda done, stage: on_progress(done * FEATURES_SHARE, stage),
    )
    embedded = time.perf_counter()
    on_progress(FEATURES_SHARE, f"fitting the model on {len(train_idx)} images")
    train_samples = [samples[i] for i in train_idx]
    test_samples = [samples[i] for i in test_idx]
    # One BLAS thread: on a small shared machine more threads spin-wait for cores.
    with threadpool_limits(limits=1):
        head = fit_head(data.type, backend.name, data.labels, x[train_idx], train_samples)
    fitted = time.perf_counter()
    on_progress(0.95, f"scoring it on {len(test_idx)} test images")
    metrics = evaluate(head, data.labels, x[test_idx], test_samples)
    baseline = score_baseline(production, data, backend.name, x[test_idx], test_samples)
    if baseline is not None:
        metrics["baseline"] = baseline
    metrics.update(
        backend=backend.name,
        head={
            "multi_class": "logistic_regression (multinomial)",
            "multi_label": "logistic_regression per tag",
            "regression": "ridge per value label",
        }[data.type],
        train_images=len(train_idx),
        test_images=len(test_idx),
        skipped_images=skipped,
        embeddings_computed=computed,
        embeddings_cached=len(samples) - computed,
        seconds={
            "features": round(embedded - started, 3),
            "fit": round(fitted - embedded, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    )
    return TrainResult(head=head.to_bytes(), metrics=metrics)


@dataclass(frozen=True)
class SplitOutcome:
    """What ``head`` makes of one of the task's test images (a multi_class task)."""

    image_id: str
    sha256: str
    truth: str  # the label id it has
    predicted: str  # the label id the head chose
    confidence: float


def outcomes_on_test_split(
    db: Database, backend: Backend, blobs: Storage, task_id: str, head: Head
) -> list[SplitOutcome]:
    """The task's test images as they are now (the seeded split training uses), each
    with its label and what ``head`` predicts for it: which images a version gets right
    and wrong, which the stored metrics count but do not name. Images whose label the
    head does not know (attached since) are left out."""
    if head.task_type != MULTI_CLASS:
        return []
    known = set(head.label_ids)
    test, outputs = _predict_test_split(
        db, backend, blobs, task_id, head, lambda s: s.labels[0] in known
    )
    out = []
    for sample, row in zip(test, outputs, strict=True):
        best = int(np.argmax(row))
        out.append(
            SplitOutcome(
                image_id=sample.image_id,
                sha256=sample.sha256,
                truth=sample.labels[0],
                predicted=head.label_ids[best],
                confidence=float(row[best]),
            )
        )
    return out


@dataclass(frozen=True)
class TagScores:
    """What ``head`` makes of one of a multi_label task's test images."""

    image_id: str
    truth: tuple[str, ...]  # the tag ids it has (none: the negative label's image)
    scores: tuple[float, ...]  # each tag's probability, in the order of head.label_ids


def tag_scores_on_test_split(
    db: Database, backend: Backend, blobs: Storage, task_id: str, head: Head
) -> list[TagScores]:
    """A multi_label version on the task's test images as they are now (the seeded split
    training uses): each image's tags and the version's score for every tag it knows.
    Images with a tag the version does not know (attached since) are left out, as
    ``outcomes_on_test_split`` leaves out such multi_class images."""
    if head.task_type != MULTI_LABEL:
        return []
    known = set(head.label_ids)
    test, outputs = _predict_test_split(
        db, backend, blobs, task_id, head, lambda s: set(s.labels) <= known
    )
    return [
        TagScores(sample.image_id, sample.labels, tuple(float(p) for p in row))
        for sample, row in zip(test, outputs, strict=True)
    ]


def _predict_test_split(
    db: Database,
    backend: Backend,
    blobs: Storage,
    task_id: str,
    head: Head,
    keep: Callable[[Sample], bool],
) -> tuple[list[Sample], np.ndarray]:
    """The task's test samples now (those ``keep`` accepts) and ``head``'s outputs."""
    data = load_task_data(db, task_id)
    if data is None or data.type != head.task_type:
        return [], np.zeros((0, len(head.label_ids)))
    samples, _ = usable_samples(data.type, data.samples)
    _, test_idx = split(data.type, samples, seed=task_id)
    test = [samples[i] for i in test_idx if keep(samples[i])]
    if not test:
        return [], np.zeros((0, len(head.label_ids)))
    x, _ = features_for(db, backend, blobs, [s.sha256 for s in test])
    with threadpool_limits(limits=1):
        return test, head.predict(x)


def values_on_test_split(
    db: Database, backend: Backend, blobs: Storage, task_id: str, head: Head
) -> list[tuple[str, float, float]]:
    """A regression version on the task's test images now: (label id, actual value,
    predicted value) for each test image and value label it has."""
    if head.task_type != REGRESSION:
        return []
    test, outputs = _predict_test_split(db, backend, blobs, task_id, head, lambda s: bool(s.values))
    return [
        (lid, sample.values[lid], float(row[k]))
        for sample, row in zip(test, outputs, strict=True)
        for k, lid in enumerate(head.label_ids)
        if lid in sample.values
    ]
