"""Pure core of `repo evaluate`: the model's answers against the truth -> an `Evaluation`.

Contract: no I/O. `evaluate_predictions` takes the truth ({path: [(label, value)]}, as
the folders say), the (path, record) of every image the model answered for and the
task's label names, and returns a frozen `Evaluation`:

- multi_class: accuracy, per-label precision/recall/F1/support, the confusion matrix
  (rows: true label, columns: predicted; a predicted label that is no folder gets a
  column of its own), the misclassified files (true label, predicted label, the
  model's probability for it) and one precision-recall curve per label, swept over the
  probabilities the model gave that label;
- multi_label: the share of images whose whole tag set was right, per-tag
  precision/recall/F1/support, the files with a wrong tag set, per-tag curves;
- regression: MAE, RMSE, R2 overall and per value label, and every (actual, predicted)
  pair, the largest error first.

`evaluation_json` is the `--json` object, `evaluation_lines` the text (its metric
tables by `ml_report.metrics_lines`), `mistake_lines` the list of misclassified files.
Paths are as the shell gives them (repository paths, or holdout paths as typed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from localrepo.cli.ml_report import fmt, fmt_value, metrics_lines, predicted_tags
from localrepo.remote.models import ClassifiedRecord
from localrepo.vocabulary import MULTI_CLASS, MULTI_LABEL, REGRESSION

Truth = Mapping[str, Sequence[tuple[str, float | None]]]  # path -> [(label, value)]
SHOWN_MISTAKES = 10  # the text lists this many unless asked for all


@dataclass(frozen=True)
class LabelScore:
    """One label's (or tag's) scores; None where the ratio has no denominator."""

    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int  # images that truly have the label


@dataclass(frozen=True)
class ValueScore:
    """One value label's regression errors."""

    name: str
    mae: float | None
    rmse: float | None
    r2: float | None
    support: int


@dataclass(frozen=True)
class Confusion:
    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]  # [true][predicted]


@dataclass(frozen=True)
class Mistake:
    """A file the model got wrong: its true label(s) and what the model said."""

    path: str
    truth: tuple[str, ...]
    predicted: tuple[str, ...]  # empty: the model gave nothing
    confidence: float | None  # multi_class: the probability of the predicted label


@dataclass(frozen=True)
class ValuePair:
    """Regression: one value label of one file, actual against predicted."""

    path: str
    label: str
    actual: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted - self.actual


@dataclass(frozen=True)
class Curve:
    """A label's precision-recall curve: (recall, precision) points, threshold falling."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Evaluation:
    task_type: str
    images: int
    accuracy: float | None = None  # multi_class
    exact_match: float | None = None  # multi_label
    per_label: tuple[LabelScore, ...] = ()
    confusion: Confusion | None = None  # multi_class
    mistakes: tuple[Mistake, ...] = ()
    curves: tuple[Curve, ...] = ()
    mae: float | None = None  # regression from here on
    rmse: float | None = None
    r2: float | None = None
    missing: int = 0  # value labels the model gave no value for
    per_value: tuple[ValueScore, ...] = ()
    pairs: tuple[ValuePair, ...] = ()  # the largest error first


# -- multi_class ----------------------------------------------------------------------------------


def evaluate_multi_class(
    rows: Sequence[tuple[str, str, str | None, float | None]], labels: Sequence[str]
) -> Evaluation:
    """(path, true label, predicted label, its probability) rows -> the evaluation
    (without curves: `with_curves` adds them)."""
    names = list(dict.fromkeys([*labels, *(t for _, t, _, _ in rows)]))
    names += list(dict.fromkeys(p for _, _, p, _ in rows if p is not None and p not in names))
    index = {n: i for i, n in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for _, t, p, _ in rows:
        if p is not None:
            matrix[index[t]][index[p]] += 1
    scores = []
    for n in names:
        i = index[n]
        predicted = sum(row[i] for row in matrix)
        support = sum(1 for _, t, _, _ in rows if t == n)
        if support or predicted:
            scores.append(_score(n, matrix[i][i], predicted, support))
    mistakes = tuple(
        Mistake(path, (t,), (p,) if p is not None else (), prob)
        for path, t, p, prob in rows
        if t != p
    )
    return Evaluation(
        MULTI_CLASS,
        len(rows),
        accuracy=_ratio(sum(1 for _, t, p, _ in rows if t == p), len(rows)),
        per_label=tuple(scores),
        confusion=Confusion(tuple(names), tuple(tuple(r) for r in matrix)),
        mistakes=mistakes,
    )


# -- multi_label ----------------------------------------------------------------------------------


def evaluate_multi_label(
    rows: Sequence[tuple[str, frozenset[str], frozenset[str]]], tags: Sequence[str]
) -> Evaluation:
    """(path, true tags, predicted tags) rows -> the evaluation (without curves)."""
    names = list(dict.fromkeys([*tags, *(t for _, truth, _ in rows for t in sorted(truth))]))
    scores = []
    for n in names:
        tp = sum(1 for _, truth, pred in rows if n in truth and n in pred)
        predicted = sum(1 for _, _, pred in rows if n in pred)
        support = sum(1 for _, truth, _ in rows if n in truth)
        scores.append(_score(n, tp, predicted, support))
    mistakes = tuple(
        Mistake(path, tuple(sorted(truth)), tuple(sorted(pred)), None)
        for path, truth, pred in rows
        if truth != pred
    )
    exact = sum(1 for _, truth, pred in rows if truth == pred)
    return Evaluation(
        MULTI_LABEL,
        len(rows),
        exact_match=_ratio(exact, len(rows)),
        per_label=tuple(scores),
        mistakes=mistakes,
    )


# -- regression -----------------------------------------------------------------------------------


def evaluate_regression(rows: Sequence[tuple[str, str, float, float | None]]) -> Evaluation:
    """(path, value label, actual value, predicted value) rows -> MAE, RMSE, R2 overall
    and per value label, and the pairs by falling error. A missing prediction counts in
    `missing`, not in the errors."""
    pairs = [ValuePair(path, n, t, p) for path, n, t, p in rows if p is not None]
    labels = list(dict.fromkeys(p.label for p in pairs))
    per_value = []
    for name in labels:
        mine = [p for p in pairs if p.label == name]
        per_value.append(ValueScore(name, *_regression_scores(mine), len(mine)))
    mae, rmse, r2 = _regression_scores(pairs)
    return Evaluation(
        REGRESSION,
        len(rows),
        mae=mae,
        rmse=rmse,
        r2=r2,
        missing=len(rows) - len(pairs),
        per_value=tuple(per_value),
        pairs=tuple(sorted(pairs, key=lambda p: (-abs(p.error), p.path, p.label))),
    )


def _regression_scores(
    pairs: Sequence[ValuePair],
) -> tuple[float | None, float | None, float | None]:
    """(MAE, RMSE, R2); R2 is None when the actual values do not vary."""
    if not pairs:
        return None, None, None
    n = len(pairs)
    mae = sum(abs(p.error) for p in pairs) / n
    squares = sum(p.error * p.error for p in pairs)
    mean = sum(p.actual for p in pairs) / n
    total = sum((p.actual - mean) ** 2 for p in pairs)
    return mae, math.sqrt(squares / n), (1 - squares / total if total > 0 else None)


# -- from the server's records --------------------------------------------------------------------


def evaluate_predictions(
    task_type: str,
    names: Sequence[str],
    truth: Truth,
    predicted: Sequence[tuple[str, ClassifiedRecord]],
) -> Evaluation:
    """The evaluation of a task type (see the module's docstring). Multi_class compares
    the best label with the folder's, multi_label the predicted tags
    (`ml_report.predicted_tags`, known tags only) with the folders', regression each
    value label's value with its prediction."""
    if task_type == MULTI_CLASS:
        rows = []
        for path, record in predicted:
            best = record.best_label or (record.labels[0] if record.labels else None)
            prob = best.prob if best is not None else None
            rows.append((path, truth[path][0][0], best.name if best else None, prob))
        ev = evaluate_multi_class(rows, names)
        return with_curves(ev, _probabilities(truth, predicted, ev))
    if task_type == MULTI_LABEL:
        tags = set(names)
        tag_rows = [
            (
                path,
                frozenset(n for n, _ in truth[path]),
                frozenset(p.name for p in predicted_tags(record) if p.name in tags),
            )
            for path, record in predicted
        ]
        ev = evaluate_multi_label(tag_rows, names)
        return with_curves(ev, _probabilities(truth, predicted, ev))
    triples = []
    for path, record in predicted:
        values = {p.name: p.value for p in record.labels}
        for name, value in truth[path]:
            if value is not None:
                triples.append((path, name, value, values.get(name)))
    return evaluate_regression(triples)


def _probabilities(
    truth: Truth, predicted: Sequence[tuple[str, ClassifiedRecord]], ev: Evaluation
) -> dict[str, list[tuple[float, bool]]]:
    """{label: [(the probability the model gave it, whether the image has it)]} over
    every answered image, for the labels with support; empty when the model sent no
    probabilities at all."""
    if not any(p.prob is not None for _, r in predicted for p in r.labels):
        return {}
    out: dict[str, list[tuple[float, bool]]] = {}
    for score in ev.per_label:
        if not score.support:
            continue
        out[score.name] = [
            (
                next((p.prob or 0.0 for p in record.labels if p.name == score.name), 0.0),
                any(n == score.name for n, _ in truth[path]),
            )
            for path, record in predicted
        ]
    return out


def with_curves(ev: Evaluation, scored: Mapping[str, Sequence[tuple[float, bool]]]) -> Evaluation:
    """`ev` with a precision-recall curve per label of `scored` ({label: [(score,
    positive)]})."""
    curves = tuple(Curve(name, pr_curve(rows)) for name, rows in scored.items())
    return replace(ev, curves=tuple(c for c in curves if c.points))


def pr_curve(rows: Sequence[tuple[float, bool]]) -> tuple[tuple[float, float], ...]:
    """(recall, precision) at each distinct score taken as the threshold, highest
    first (an image counts as predicted when its score is at least the threshold).
    Empty without positives."""
    positives = sum(1 for _, pos in rows if pos)
    if not positives:
        return ()
    points = []
    tp = fp = 0
    ordered = sorted(rows, key=lambda r: -r[0])
    for i, (score, pos) in enumerate(ordered):
        tp += pos
        fp += not pos
        if i + 1 == len(ordered) or ordered[i + 1][0] != score:
            points.append((tp / positives, tp / (tp + fp)))
    return tuple(points)


def _score(name: str, tp: int, predicted: int, support: int) -> LabelScore:
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    if precision is None or recall is None:
        f1 = None
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return LabelScore(name, precision, recall, f1, support)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


# -- output ---------------------------------------------------------------------------------------


def evaluation_json(ev: Evaluation) -> dict[str, Any]:
    """The `--json` object: the headline numbers, `per_label`, `confusion_matrix`
    (multi_class), `mistakes` (classification) or `predictions` (regression: actual,
    predicted and error per file, the largest error first)."""
    if ev.task_type == REGRESSION:
        out: dict[str, Any] = {"images": ev.images, "mae": ev.mae, "rmse": ev.rmse, "r2": ev.r2}
        if ev.missing:
            out["missing"] = ev.missing
        out["per_label"] = {
            s.name: {"mae": s.mae, "rmse": s.rmse, "r2": s.r2, "support": s.support}
            for s in ev.per_value
        }
        out["predictions"] = [
            {
                "path": p.path,
                "label": p.label,
                "actual": p.actual,
                "predicted": p.predicted,
                "error": p.error,
            }
            for p in ev.pairs
        ]
        return out
    out = {"images": ev.images}
    if ev.task_type == MULTI_CLASS:
        out["accuracy"] = ev.accuracy
    else:
        out["exact_match"] = ev.exact_match
    out["per_label"] = {
        s.name: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}
        for s in ev.per_label
    }
    if ev.confusion is not None:
        out["confusion_matrix"] = {
            "labels": list(ev.confusion.labels),
            "matrix": [list(r) for r in ev.confusion.matrix],
        }
    out["mistakes"] = [
        {
            "path": m.path,
            "true": list(m.truth),
            "predicted": list(m.predicted),
            "confidence": m.confidence,
        }
        for m in ev.mistakes
    ]
    return out


def evaluation_lines(ev: Evaluation, limit: int | None = SHOWN_MISTAKES) -> list[str]:
    """The text of an evaluation: the metric tables, then the mistakes (at most `limit`
    of them, None for all)."""
    numbers = {
        k: v
        for k, v in evaluation_json(ev).items()
        if k not in ("mistakes", "predictions") and not (k == "missing" and not v)
    }
    return [*metrics_lines(numbers, {}), "", *mistake_lines(ev, limit)]


def mistake_lines(ev: Evaluation, limit: int | None = SHOWN_MISTAKES) -> list[str]:
    """'Misclassified (N):' and one 'path  true -> predicted (confidence)' line per file
    (regression: 'Largest errors (N):', 'path  label actual -> predicted (error +e)'),
    capped at `limit` with '... and N more'."""
    if ev.task_type == REGRESSION:
        head = f"Largest errors ({len(ev.pairs)}):"
        body = [
            f"  {p.path}  {p.label} {fmt_value(p.actual)} -> {fmt_value(p.predicted)} "
            f"(error {p.error:+.4g})"
            for p in ev.pairs
        ]
    else:
        head = f"Misclassified ({len(ev.mistakes)}):"
        body = [f"  {m.path}  {mistake_text(m)}" for m in ev.mistakes]
    if not body:
        return [head.replace(":", ": none")]
    if limit is not None and len(body) > limit:
        body = [*body[:limit], f"  ... and {len(body) - limit} more (--all lists them)"]
    return [head, *body]


def mistake_text(m: Mistake) -> str:
    """'circle -> square (0.81)'; multi_label 'blue, red -> red (missed blue)'."""
    truth = ", ".join(m.truth) or "(no tag)"
    if not m.predicted:
        return f"{truth} -> (nothing)"
    predicted = ", ".join(m.predicted)
    if m.confidence is not None:
        return f"{truth} -> {predicted} ({fmt(m.confidence, 2)})"
    missed = [t for t in m.truth if t not in m.predicted]
    extra = [t for t in m.predicted if t not in m.truth]
    notes = ([f"missed {', '.join(missed)}"] if missed else []) + (
        [f"wrongly {', '.join(extra)}"] if extra else []
    )
    return f"{truth} -> {predicted}" + (f" ({'; '.join(notes)})" if notes else "")
