"""What the evaluation page shows of a version's stored metrics (no I/O): per-label
precision, recall and F1 (MAE, RMSE and R² for regression), the confusion matrix as a
heat map, the test images a version gets wrong (a multi_class image's label, a
multi_label image's set of tags), and the labels and probabilities of a "Try it" answer.

In: the ``metrics`` dict the worker stored for a version (ml/heads.py ``evaluate``, on
the version's test images), what a version predicts for the test images now
(ml/train.py), and a ``classify/`` record's answer (ml/classify.py). Out: frozen
dataclasses the templates read (templates/evaluation.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..ml.heads import TAG_THRESHOLD


@dataclass(frozen=True)
class LabelRow:
    name: str
    figures: tuple[str, ...]  # in the order of EvalView.columns
    support: int


@dataclass(frozen=True)
class Cell:
    count: int
    share: float  # of its row (the true label's test images), 0..1: the shade
    diagonal: bool


@dataclass(frozen=True)
class EvalView:
    headline: tuple[tuple[str, str], ...]  # (name, value shown)
    columns: tuple[str, ...]  # of the per-label table, after the label's name
    rows: tuple[LabelRow, ...]
    matrix_labels: tuple[str, ...]  # the confusion matrix's (true = rows, predicted = columns)
    matrix_ids: tuple[str, ...]  # their label ids, in the same order (a cell's link)
    matrix: tuple[tuple[Cell, ...], ...]
    test_images: int | None


@dataclass(frozen=True)
class Guess:
    name: str
    value: str  # a probability or a predicted value, shown
    share: float  # 0..1, the bar's length (probabilities; 0 for values)


def _shown(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


_HEADLINE = (
    ("accuracy", "Accuracy"),
    ("precision", "Precision (mean)"),
    ("recall", "Recall (mean)"),
    ("exact_match", "Exact match"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("r2", "R²"),
)


def _matrix(found: Any) -> tuple[tuple[str, ...], tuple[tuple[Cell, ...], ...]]:
    if not isinstance(found, dict) or not found.get("matrix"):
        return (), ()
    rows = []
    for i, counts in enumerate(found["matrix"]):
        total = sum(counts)
        rows.append(
            tuple(
                Cell(count=c, share=(c / total if total else 0.0), diagonal=i == j)
                for j, c in enumerate(counts)
            )
        )
    return tuple(str(n) for n in found.get("labels", ())), tuple(rows)


def evaluation(metrics: dict[str, Any], task_type: str) -> EvalView:
    per_label = metrics.get("per_label") or []
    rows: list[LabelRow] = []
    if task_type == "regression":
        columns: tuple[str, ...] = ("MAE", "RMSE", "R²")
        for p in per_label:
            figures = (_shown(p.get("mae")), _shown(p.get("rmse")), _shown(p.get("r2")))
            rows.append(LabelRow(str(p.get("name")), figures, int(p.get("support") or 0)))
    else:
        columns = ("Precision", "Recall", "F1")
        for p in per_label:
            precision, recall = p.get("precision"), p.get("recall")
            figures = (_shown(precision), _shown(recall), _shown(f1(precision, recall)))
            rows.append(LabelRow(str(p.get("name")), figures, int(p.get("support") or 0)))
    headline = tuple(
        (name, _shown(metrics[key])) for key, name in _HEADLINE if metrics.get(key) is not None
    )
    found = metrics.get("confusion_matrix")
    labels, matrix = _matrix(found)
    ids = tuple(str(i) for i in found.get("label_ids", ())) if isinstance(found, dict) else ()
    test_images = metrics.get("test_images")
    return EvalView(
        headline=headline,
        columns=columns,
        rows=tuple(rows),
        matrix_labels=labels,
        matrix_ids=ids if len(ids) == len(labels) else (),
        matrix=matrix,
        test_images=test_images if isinstance(test_images, int) else None,
    )


class Outcome(Protocol):
    """One test image and what a version predicted for it (ml/train.py SplitOutcome)."""

    @property
    def image_id(self) -> str: ...
    @property
    def truth(self) -> str: ...
    @property
    def predicted(self) -> str: ...
    @property
    def confidence(self) -> float: ...


@dataclass(frozen=True)
class Shot:
    """A test image in a gallery: true and predicted label (tags, comma-separated, for
    multi_label), the model's confidence; for multi_label the tag whose score that is."""

    image_id: str
    truth: str
    predicted: str
    confidence: str
    deciding: str = ""


def picked(outcomes: Sequence[Outcome], cell: tuple[str, str] | None) -> list[Outcome]:
    """The images of a cell of the matrix (true label id, predicted label id), or with
    no cell the misclassified ones."""
    if cell is not None:
        return [o for o in outcomes if (o.truth, o.predicted) == cell]
    return [o for o in outcomes if o.truth != o.predicted]


def shots(outcomes: Sequence[Outcome], names: dict[str, str]) -> list[Shot]:
    """``outcomes`` as the gallery shows them, least confident first."""
    return [
        Shot(
            image_id=o.image_id,
            truth=names.get(o.truth, o.truth),
            predicted=names.get(o.predicted, o.predicted),
            confidence=f"{o.confidence:.1%}",
        )
        for o in sorted(outcomes, key=lambda o: (o.confidence, o.image_id))
    ]


class TagOutcome(Protocol):
    """One multi_label test image and the version's scores (ml/train.py TagScores)."""

    @property
    def image_id(self) -> str: ...
    @property
    def truth(self) -> tuple[str, ...]: ...
    @property
    def scores(self) -> tuple[float, ...]: ...


def _tag_names(ids: Sequence[str], names: dict[str, str]) -> str:
    return ", ".join(sorted(names.get(i, i) for i in ids)) or "none"


def tag_mistakes(
    outcomes: Sequence[TagOutcome], label_ids: Sequence[str], names: dict[str, str]
) -> list[Shot]:
    """The multi_label test images whose predicted tags (a score of at least
    ``TAG_THRESHOLD``, as classify/ decides; none of them: the negative label) are not
    their tags, least confident first. ``scores`` are in the order of ``label_ids`` (the
    version's tags; the shell leaves out images with other tags). The confidence shown
    is the score of the tag farthest on the wrong side of the threshold, the error the
    version is surest of; the images are ordered by that distance."""
    found: list[tuple[float, str, Shot]] = []
    for o in outcomes:
        truth = set(o.truth)
        predicted = [lid for lid, p in zip(label_ids, o.scores, strict=True) if p >= TAG_THRESHOLD]
        wrong = [
            (abs(p - TAG_THRESHOLD), lid, p)
            for lid, p in zip(label_ids, o.scores, strict=True)
            if (p >= TAG_THRESHOLD) != (lid in truth)
        ]
        if not wrong:
            continue
        margin, lid, score = max(wrong, key=lambda w: (w[0], w[1]))
        shot = Shot(
            image_id=o.image_id,
            truth=_tag_names(o.truth, names),
            predicted=_tag_names(predicted, names),
            confidence=f"{score:.1%}",
            deciding=names.get(lid, lid),
        )
        found.append((margin, o.image_id, shot))
    return [shot for _, _, shot in sorted(found, key=lambda f: (f[0], f[1]))]


@dataclass(frozen=True)
class Plot:
    """Predicted against actual values, in an SVG's 0..100 square (y grows downwards):
    ``points`` (x, y); the axes run from ``low`` to ``high`` on both."""

    points: tuple[tuple[float, float], ...]
    low: str
    high: str


def plot(pairs: Sequence[tuple[float, float]]) -> Plot | None:
    """(actual, predicted) pairs on one scale for both axes, so the diagonal is perfect."""
    if not pairs:
        return None
    values = [v for pair in pairs for v in pair]
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def at(v: float) -> float:
        return round(100 * (v - low) / span, 2)

    points = tuple((at(actual), round(100 - at(predicted), 2)) for actual, predicted in pairs)
    return Plot(points, f"{low:.3g}", f"{high:.3g}")


def guesses(answer: dict[str, Any]) -> list[Guess]:
    """A classify record's labels, best first: probabilities, or values (regression)."""
    out = []
    for entry in answer.get("labels") or []:
        if "prob" in entry:
            prob = float(entry["prob"])
            out.append(Guess(str(entry["name"]), f"{prob:.1%}", max(0.0, min(1.0, prob))))
        else:
            out.append(Guess(str(entry["name"]), _shown(entry.get("value")), 0.0))
    return out


def trained_choices(models: Sequence[dict[str, Any]]) -> list[int]:
    """The versions that can be evaluated (trained), newest first."""
    return sorted((m["version"] for m in models if m["train_status"] == "TRAINED"), reverse=True)
