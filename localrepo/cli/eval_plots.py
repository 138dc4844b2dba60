"""The pictures of `repo evaluate --report`: plots drawn with matplotlib (Agg, PNG bytes)
and thumbnails of the mistakes (Pillow, small JPEG bytes).

A shell over the pure `evaluation.Evaluation`: it draws what the core computed and
returns bytes; eval_html.py (pure) embeds them. matplotlib is the optional `report`
extra and is imported only here, only for --report (`require` fails fast, exit 2, when
it is missing), so `repo` itself stays quick to start.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from localrepo.cli.evaluation import Evaluation
from localrepo.errors import EXIT_USAGE, LocalrepoError

THUMB_SIZE = 96  # pixels, the longer side of a mistake's thumbnail
DPI = 80


def require() -> Any:
    """matplotlib's pyplot on the Agg backend, or a usage error naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError as exc:
        raise LocalrepoError(
            f"--report needs matplotlib, which is not installed ({exc}). Install the "
            "report extra: pip install 'localrepo[report]'",
            exit_code=EXIT_USAGE,
        ) from exc
    return pyplot


def _png(plt: Any, fig: Any) -> bytes:
    out = io.BytesIO()
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=DPI)
    plt.close(fig)
    return out.getvalue()


def confusion_png(plt: Any, ev: Evaluation) -> bytes:
    """The confusion matrix as a heat map, counts written in the cells."""
    assert ev.confusion is not None
    labels, matrix = ev.confusion.labels, ev.confusion.matrix
    side = 1.6 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label (folder)")
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if top and count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix")
    return _png(plt, fig)


def precision_recall_png(plt: Any, ev: Evaluation) -> bytes:
    """One precision-recall curve per label; without probabilities to sweep, each
    label's single (recall, precision) point."""
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    if ev.curves:
        for curve in ev.curves:
            xs = [0.0, *(r for r, _ in curve.points)]
            ys = [curve.points[0][1], *(p for _, p in curve.points)]
            ax.step(xs, ys, where="post", label=curve.label)
        ax.set_title("Precision-recall per label")
    else:
        for score in ev.per_label:
            if score.precision is not None and score.recall is not None:
                ax.scatter([score.recall], [score.precision], label=score.name)
        ax.set_title("Precision and recall per label")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return _png(plt, fig)


def regression_pngs(plt: Any, ev: Evaluation) -> tuple[bytes, bytes]:
    """(predicted against actual, with the diagonal; residuals against actual)."""
    actual = [p.actual for p in ev.pairs]
    predicted = [p.predicted for p in ev.pairs]
    errors = [p.error for p in ev.pairs]
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.scatter(actual, predicted, s=18)
    low, high = min(actual + predicted, default=0.0), max(actual + predicted, default=1.0)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("actual value")
    ax.set_ylabel("predicted value")
    ax.set_title("Predicted vs actual")
    scatter = _png(plt, fig)
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    ax.scatter(actual, errors, s=18, color="tab:orange")
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("actual value")
    ax.set_ylabel("predicted - actual")
    ax.set_title("Residuals")
    return scatter, _png(plt, fig)


def thumbnail(path: Path) -> bytes | None:
    """A small JPEG of the image at `path`, or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.thumbnail((THUMB_SIZE, THUMB_SIZE))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=70)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return out.getvalue()
