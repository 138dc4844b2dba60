"""Pure: the self-contained HTML report of `repo evaluate --report FILE.html`.

Contract: `render_report` takes the `evaluation.Evaluation`, a few lines saying what was
evaluated, the pictures already drawn (caption, PNG bytes; eval_plots.py draws them) and
the thumbnails of the mistakes ({path: JPEG bytes}), and returns one HTML document.
No I/O. Everything is inline: the CSS in a <style>, every picture a base64 `data:` URI,
so the file opens offline and can be mailed alone; no script, no link to any host.
Every text from the data (paths, labels) is escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape

from localrepo.cli.evaluation import Evaluation, mistake_text
from localrepo.cli.ml_report import fmt, fmt_value
from localrepo.vocabulary import REGRESSION

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; text-align: left; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; }
.mistakes { display: flex; flex-wrap: wrap; gap: 0.8em; }
.mistake { width: 11em; font-size: 0.85em; word-break: break-all; }
.mistake img { display: block; max-width: 96px; max-height: 96px; margin-bottom: 0.3em; }
.note { color: #555; }
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def render_report(
    ev: Evaluation,
    title: str,
    about: Sequence[str],
    figures: Sequence[tuple[str, bytes]],
    thumbs: Mapping[str, bytes],
) -> str:
    """The whole document (see the module's docstring)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *(f'<p class="note">{escape(line)}</p>' for line in about),
        "<h2>Metrics</h2>",
        _metrics_table(ev),
        _per_label_table(ev),
    ]
    if figures:
        parts.append("<h2>Pictures</h2>")
        parts += [
            f'<figure><img src="{data_uri(png, "image/png")}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
            for caption, png in figures
        ]
    parts += _mistakes(ev, thumbs)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(c)}</td>' if i >= numeric_from else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_table(ev: Evaluation) -> str:
    numbers: dict[str, float | int | None] = {"images": ev.images}
    if ev.task_type == REGRESSION:
        numbers.update(mae=ev.mae, rmse=ev.rmse, r2=ev.r2)
        if ev.missing:
            numbers["missing"] = ev.missing
    elif ev.confusion is not None:
        numbers["accuracy"] = ev.accuracy
    else:
        numbers["exact_match"] = ev.exact_match
    return _table(["metric", "value"], [(k, fmt(v)) for k, v in numbers.items()])


def _per_label_table(ev: Evaluation) -> str:
    if ev.task_type == REGRESSION:
        rows = [(s.name, fmt(s.mae), fmt(s.rmse), fmt(s.r2), str(s.support)) for s in ev.per_value]
        return _table(["value label", "mae", "rmse", "r2", "support"], rows)
    rows = [
        (s.name, fmt(s.precision), fmt(s.recall), fmt(s.f1), str(s.support)) for s in ev.per_label
    ]
    name = "label" if ev.confusion is not None else "tag"
    return _table([name, "precision", "recall", "f1", "support"], rows)


def _mistakes(ev: Evaluation, thumbs: Mapping[str, bytes]) -> list[str]:
    if ev.task_type == REGRESSION:
        cards = [
            (
                p.path,
                f"{p.label}: {fmt_value(p.actual)} -> {fmt_value(p.predicted)} "
                f"(error {p.error:+.4g})",
            )
            for p in ev.pairs
        ]
        heading = f"Largest errors ({len(cards)})"
    else:
        cards = [(m.path, mistake_text(m)) for m in ev.mistakes]
        heading = f"Misclassified ({len(cards)})"
    out = [f"<h2>{escape(heading)}</h2>"]
    if not cards:
        return [*out, "<p>None.</p>"]
    out.append('<div class="mistakes">')
    for path, text in cards:
        thumb = thumbs.get(path)
        img = (
            f'<img src="{data_uri(thumb, "image/jpeg")}" alt="{escape(path)}">'
            if thumb is not None
            else ""
        )
        out.append(f'<div class="mistake">{img}<b>{escape(path)}</b><br>{escape(text)}</div>')
    out.append("</div>")
    return out
