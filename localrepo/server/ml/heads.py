"""The pure part of training: which images count, the split, heads, metrics.

No I/O here: features come in as arrays, heads go out as numbers (``Head``), metrics as
JSON-ready dicts. scikit-learn fits the heads; a fitted head is kept as plain weights
(the feature scaling folded in), so predicting needs numpy only and a stored head is
never a pickle.

Task types:

- ``multi_class``: one category per image; multinomial logistic regression.
- ``multi_label``: any number of tags per image; one logistic regression per tag. The
  task's negative label means "none of the tags": its images are negatives for every tag
  and it gets no classifier of its own.
- ``regression``: a value per value label; one ridge regression per label.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MULTI_CLASS = "multi_class"
MULTI_LABEL = "multi_label"
REGRESSION = "regression"

TEST_FRACTION = 0.2
LOGREG_C = 0.1  # on standardised features; measured on real photos (docs/benchmarks.md)
RIDGE_ALPHAS = tuple(10.0**k for k in range(-1, 5))
# A multi_label image has a tag when the tag's probability is at least this: what
# classify/ answers (best_labels), stores, and the metrics count.
TAG_THRESHOLD = 0.5


class TrainingError(ValueError):
    """Training cannot run on this data; the message says why and what to do."""


@dataclass(frozen=True)
class LabelInfo:
    id: str
    name: str
    output_name: str | None = None
    negative: bool = False

    @property
    def shown(self) -> str:
        return self.output_name or self.name


@dataclass(frozen=True)
class Sample:
    """One labelled image of the task: its labels among the task's, and values."""

    image_id: str
    sha256: str
    test_image: bool
    labels: tuple[str, ...]
    values: dict[str, float] = field(default_factory=dict)


# ---- which images, and are there enough ---------------------------------------------------


def usable_samples(task_type: str, samples: Iterable[Sample]) -> tuple[list[Sample], int]:
    """The samples training uses, and how many were skipped (a multi_class image with
    two categories of the task, a regression image without any value). Every multi_label
    sample counts: one with no tag (the negative label's) is a negative for every tag."""
    used: list[Sample] = []
    skipped = 0
    for s in samples:
        wrong_class = task_type == MULTI_CLASS and len(s.labels) != 1
        if wrong_class or (task_type == REGRESSION and not s.values):
            skipped += 1
        else:
            used.append(s)
    return used, skipped


def label_counts(task_type: str, labels: Sequence[LabelInfo], samples: Iterable[Sample]) -> Counter:
    counts: Counter[str] = Counter({label.id: 0 for label in labels})
    for s in samples:
        for lid in s.values if task_type == REGRESSION else s.labels:
            if lid in counts:
                counts[lid] += 1
    return counts


@dataclass(frozen=True)
class TaskData:
    task_id: str
    name: str
    type: str
    labels: list[LabelInfo]
    samples: list[Sample]


def task_data(
    task: Sequence[Any], label_rows: Iterable[Sequence[Any]], rows: Iterable[Sequence[Any]]
) -> TaskData:
    """A task's training data from its rows (``data.training.task_rows``): its labels,
    and a sample per labelled image (a multi_label image with only the negative label
    is a sample with no tag)."""
    task_id = task[0]
    labels = [
        LabelInfo(id=r[0], name=r[1], output_name=r[2], negative=r[3] == task_id)
        for r in label_rows
    ]
    negatives = {label.id for label in labels if label.negative}
    images: dict[str, dict[str, Any]] = {}
    for image_id, sha, test_image, label_id, value in rows:
        entry = images.setdefault(
            image_id, {"sha": sha, "test": bool(test_image), "labels": [], "values": {}}
        )
        if label_id in negatives:
            continue  # "none of the tags": in the task, with no tag
        entry["labels"].append(label_id)
        if value is not None:
            entry["values"][label_id] = float(value)
    is_regression = task[2] == "regression"
    samples = [
        Sample(
            image_id=image_id,
            sha256=e["sha"],
            test_image=e["test"],
            labels=tuple(e["labels"]),
            values=e["values"] if is_regression else {},
        )
        for image_id, e in images.items()
    ]
    return TaskData(task_id=task[0], name=task[1], type=task[2], labels=labels, samples=samples)


def too_few_problems(
    task_type: str, labels: Sequence[LabelInfo], samples: Sequence[Sample], minimum: int
) -> str | None:
    """Why this data cannot be trained on (a message naming the labels), or None."""
    trainable = [label for label in labels if not label.negative]
    if task_type == MULTI_CLASS and len(trainable) < 2:
        return "A multi_class task needs at least two category labels; add labels to the task."
    if not trainable:
        kind = "tag" if task_type == MULTI_LABEL else "value"
        return f"The task has no {kind} labels; add labels to the task."
    used, _ = usable_samples(task_type, samples)
    counts = label_counts(task_type, trainable, used)
    short = [label for label in trainable if counts[label.id] < minimum]
    if not short:
        return None
    listed = ", ".join(f"'{label.name}' ({counts[label.id]})" for label in short)
    return (
        f"Too few images to train: every label needs at least {minimum} images; "
        f"short: {listed}. Add images to these labels (or remove the labels from the task)."
    )


# ---- the split -----------------------------------------------------------------------------


def _rank(seed: str, image_id: str) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def stratum(task_type: str, sample: Sample) -> str:
    if task_type == MULTI_CLASS:
        return sample.labels[0]
    if task_type == MULTI_LABEL:
        return ",".join(sorted(sample.labels))
    return ""


def split(
    task_type: str, samples: Sequence[Sample], seed: str, fraction: float = TEST_FRACTION
) -> tuple[list[int], list[int]]:
    """Indices of the training and the test part.

    Per stratum (the label; the set of tags; one stratum for regression), the images in
    a hash order seeded by ``seed`` (the task id): the same data always splits the same
    way, and an added image moves at most one other. ``test_image`` images are always test; the
    rest of the stratum's ~20% are taken in hash order; a stratum of two or more keeps
    at least one image on each side.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[stratum(task_type, s)].append(i)
    train: list[int] = []
    test: list[int] = []
    for members in groups.values():
        members.sort(key=lambda i: _rank(seed, samples[i].image_id))
        forced = [i for i in members if samples[i].test_image]
        free = [i for i in members if not samples[i].test_image]
        n = len(members)
        target = round(n * fraction)
        if n >= 2:
            target = min(max(target, 1), n - 1)
        extra = max(0, target - len(forced))
        test.extend(forced + free[:extra])
        train.extend(free[extra:])
    return sorted(train), sorted(test)


# ---- heads ---------------------------------------------------------------------------------


@dataclass
class Head:
    """A fitted head: ``outputs = features @ weights.T + bias`` then per type a softmax
    (multi_class), a sigmoid (multi_label) or nothing (regression)."""

    task_type: str
    backend: str
    label_ids: list[str]
    weights: np.ndarray  # (outputs, dim) float32
    bias: np.ndarray  # (outputs,) float32

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n, outputs): probabilities (multi_class rows sum to 1; multi_label per tag)
        or values (regression)."""
        z = features.astype(np.float64) @ self.weights.T.astype(np.float64) + self.bias
        if self.task_type == MULTI_CLASS:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        if self.task_type == MULTI_LABEL:
            return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return z

    def to_bytes(self) -> bytes:
        meta = {"task_type": self.task_type, "backend": self.backend, "labels": self.label_ids}
        out = io.BytesIO()
        np.savez(
            out,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            return cls(
                task_type=meta["task_type"],
                backend=meta["backend"],
                label_ids=list(meta["labels"]),
                weights=z["weights"],
                bias=z["bias"],
            )


def _scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    return mean, scale


def _fold(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> tuple:
    """Weights on standardised features -> weights on raw features."""
    w = coef / scale
    return w.astype(np.float32), (intercept - w @ mean).astype(np.float32)


def fit_head(
    task_type: str,
    backend: str,
    labels: Sequence[LabelInfo],
    x: np.ndarray,
    samples: Sequence[Sample],
) -> Head:
    """Fit the task type's head on features ``x`` (one row per sample)."""
    from sklearn.linear_model import LogisticRegression, RidgeCV

    mean, scale = _scaler(x)
    xs = (x - mean) / scale
    trainable = [label for label in labels if not label.negative]
    dim = x.shape[1]
    if task_type == MULTI_CLASS:
        y = np.array([s.labels[0] for s in samples])
        present = [label.id for label in trainable if label.id in set(y)]
        if len(present) < 2:
            raise TrainingError(
                "The training part has fewer than two labels with images "
                "(are all images of a label marked test_image?)."
            )
        clf = LogisticRegression(C=LOGREG_C, max_iter=3000)
        clf.fit(xs, y)
        order = list(clf.classes_)
        coef, intercept = clf.coef_, clf.intercept_
        if len(order) == 2:
            # Two classes: scikit-learn keeps one logit z for the second class; a softmax
            # over (-z/2, z/2) gives the same probabilities with one output per label.
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        w, b = _fold(coef, intercept, mean, scale)
        return Head(task_type, backend, order, w, b)
    rows_w: list[np.ndarray] = []
    rows_b: list[float] = []
    ids: list[str] = []
    for label in trainable:
        ids.append(label.id)
        if task_type == MULTI_LABEL:
            y = np.array([label.id in s.labels for s in samples], dtype=int)
            positives = int(y.sum())
            if positives in (0, len(y)):
                # One class only: a constant probability (the observed rate, clipped).
                p = min(max(positives / max(len(y), 1), 0.02), 0.98)
                rows_w.append(np.zeros(dim, dtype=np.float32))
                rows_b.append(math.log(p / (1 - p)))
                continue
            clf = LogisticRegression(C=LOGREG_C, max_iter=3000, class_weight="balanced")
            clf.fit(xs, y)
            w, b = _fold(clf.coef_[0], clf.intercept_, mean, scale)
        else:
            has = np.array([label.id in s.values for s in samples])
            values = np.array([s.values.get(label.id, 0.0) for s in samples], dtype=np.float64)
            if has.sum() < 2:
                rows_w.append(np.zeros(dim, dtype=np.float32))
                rows_b.append(float(values[has].mean()) if has.any() else 0.0)
                continue
            reg = RidgeCV(alphas=RIDGE_ALPHAS).fit(xs[has], values[has])
            w, b = _fold(reg.coef_, np.atleast_1d(reg.intercept_), mean, scale)
        rows_w.append(w)
        rows_b.append(float(b[0]))
    return Head(
        task_type,
        backend,
        ids,
        np.stack(rows_w).astype(np.float32),
        np.array(rows_b, dtype=np.float32),
    )


# ---- metrics -------------------------------------------------------------------------------


HEADLINE = ("accuracy", "precision", "recall", "exact_match", "mae", "rmse", "r2")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The single numbers of ``evaluate``'s metrics (no per-label detail): what a
    baseline carries."""
    return {k: metrics[k] for k in HEADLINE if metrics.get(k) is not None}


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 6) if present else None


def evaluate(
    head: Head, labels: Sequence[LabelInfo], x: np.ndarray, samples: Sequence[Sample]
) -> dict[str, Any]:
    """Metrics of ``head`` on the test part ``x``/``samples``: a JSON-ready dict with
    ``accuracy``, ``precision`` and ``recall`` (None where they do not apply) and the
    details of the task type (see docs/server.md)."""
    by_id = {label.id: label for label in labels}
    n = len(samples)
    out: dict[str, Any] = {"accuracy": None, "precision": None, "recall": None}
    if n == 0:
        return out
    pred = head.predict(x)
    ids = head.label_ids
    if head.task_type == MULTI_CLASS:
        index = {lid: k for k, lid in enumerate(ids)}
        truth = [index.get(s.labels[0], -1) for s in samples]
        guess = [int(k) for k in pred.argmax(axis=1)]
        matrix = [[0] * len(ids) for _ in ids]
        for t, g in zip(truth, guess, strict=True):
            if t >= 0:
                matrix[t][g] += 1
        per_label = []
        for k, lid in enumerate(ids):
            tp = matrix[k][k]
            support = sum(matrix[k])
            predicted = sum(row[k] for row in matrix)
            per_label.append(
                {
                    "id": lid,
                    "name": by_id[lid].shown if lid in by_id else lid,
                    "precision": _ratio(tp, predicted),
                    "recall": _ratio(tp, support),
                    "support": support,
                }
            )
        correct = sum(1 for t, g in zip(truth, guess, strict=True) if t == g)
        out.update(
            accuracy=round(correct / n, 6),
            precision=_mean(p["precision"] for p in per_label if p["support"]),
            recall=_mean(p["recall"] for p in per_label if p["support"]),
            per_label=per_label,
            confusion_matrix={
                "labels": [row["name"] for row in per_label],
                "label_ids": list(ids),
                "matrix": matrix,
                "rows": "true label",
                "columns": "predicted label",
            },
        )
        return out
    if head.task_type == MULTI_LABEL:
        per_label = []
        exact = np.ones(n, dtype=bool)
        for k, lid in enumerate(ids):
            truth_k = np.array([lid in s.labels for s in samples])
            guess_k = pred[:, k] >= TAG_THRESHOLD
            exact &= truth_k == guess_k
            tp = int((truth_k & guess_k).sum())
            per_label.append(
                {
                    "id": lid,
                    "name": by_id[lid].shown if lid in by_id else lid,
                    "precision": _ratio(tp, int(guess_k.sum())),
                    "recall": _ratio(tp, int(truth_k.sum())),
                    "support": int(truth_k.sum()),
                }
            )
        out.update(
            precision=_mean(p["precision"] for p in per_label),
            recall=_mean(p["recall"] for p in per_label),
            threshold=TAG_THRESHOLD,
            exact_match=round(float(exact.mean()), 6),
            per_label=per_label,
        )
        return out
    per_label = []
    for k, lid in enumerate(ids):
        rows = [i for i, s in enumerate(samples) if lid in s.values]
        if not rows:
            continue
        truth_v = np.array([samples[i].values[lid] for i in rows])
        err = pred[rows, k] - truth_v
        ss_tot = float(((truth_v - truth_v.mean()) ** 2).sum())
        per_label.append(
            {
                "id": lid,
                "name": by_id[lid].shown if lid in by_id else lid,
                "mae": round(float(np.abs(err).mean()), 6),
                "rmse": round(float(np.sqrt((err**2).mean())), 6),
                "r2": round(1.0 - float((err**2).sum()) / ss_tot, 6) if ss_tot > 0 else None,
                "support": len(rows),
            }
        )
    out.update(
        mae=_mean(p["mae"] for p in per_label),
        rmse=_mean(p["rmse"] for p in per_label),
        r2=_mean(p["r2"] for p in per_label),
        per_label=per_label,
    )
    return out
