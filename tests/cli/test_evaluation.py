"""The pure cores of `repo evaluate`: the numbers and text (localrepo/cli/evaluation.py),
the truth of a holdout tree (localrepo/cli/holdout.py) and the HTML report
(localrepo/cli/eval_html.py). Every expected number is worked out by hand."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest

from localrepo.cli import evaluation as ev
from localrepo.cli.eval_html import render_report
from localrepo.cli.holdout import holdout_truth
from localrepo.layout import resolve_sidecars
from localrepo.remote.models import ClassifiedRecord

# (path, true, predicted, probability of the predicted label)
ROWS = [
    ("cat/1.jpg", "cat", "cat", 0.9),
    ("cat/2.jpg", "cat", "dog", 0.7),
    ("dog/3.jpg", "dog", "dog", 0.8),
    ("dog/4.jpg", "dog", "dog", 0.6),
    ("cat/5.jpg", "cat", "fox", 0.55),
]


def test_multi_class_per_label_f1_confusion_and_mistakes() -> None:
    rep = ev.evaluate_multi_class(ROWS, ["cat", "dog", "empty"])
    assert rep.images == 5 and rep.accuracy == pytest.approx(3 / 5)
    assert rep.confusion == ev.Confusion(
        ("cat", "dog", "empty", "fox"),
        ((1, 1, 0, 1), (0, 2, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)),
    )
    scores = {s.name: s for s in rep.per_label}
    # cat: tp 1, predicted 1, support 3 -> P 1, R 1/3, F1 2*(1/3)/(4/3) = 0.5
    assert scores["cat"] == ev.LabelScore("cat", 1.0, pytest.approx(1 / 3), 0.5, 3)
    # dog: tp 2, predicted 3, support 2 -> P 2/3, R 1, F1 0.8
    assert scores["dog"].precision == pytest.approx(2 / 3)
    assert scores["dog"].f1 == pytest.approx(0.8)
    assert scores["fox"] == ev.LabelScore("fox", 0.0, None, None, 0)
    assert "empty" not in scores  # no image and never predicted
    assert rep.mistakes == (
        ev.Mistake("cat/2.jpg", ("cat",), ("dog",), 0.7),
        ev.Mistake("cat/5.jpg", ("cat",), ("fox",), 0.55),
    )
    text = ev.evaluation_lines(rep)
    assert "label  precision  recall     f1  support" in text
    assert text[-3:] == [
        "Misclassified (2):",
        "  cat/2.jpg  cat -> dog (0.70)",
        "  cat/5.jpg  cat -> fox (0.55)",
    ]
    js = ev.evaluation_json(rep)
    assert js["per_label"]["dog"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert js["confusion_matrix"]["matrix"][0] == [1, 1, 0, 1]
    assert js["mistakes"][0] == {
        "path": "cat/2.jpg",
        "true": ["cat"],
        "predicted": ["dog"],
        "confidence": 0.7,
    }


def test_mistake_lines_are_capped_unless_all() -> None:
    rows = [(f"a/{i}.jpg", "a", "b", 0.5) for i in range(13)]
    rep = ev.evaluate_multi_class(rows, ["a", "b"])
    lines = ev.mistake_lines(rep, 10)
    assert lines[0] == "Misclassified (13):" and len(lines) == 12
    assert lines[-1] == "  ... and 3 more (--all lists them)"
    assert len(ev.mistake_lines(rep, None)) == 14
    right = ev.evaluate_multi_class([("a/1.jpg", "a", "a", 0.9)], ["a"])
    assert ev.mistake_lines(right) == ["Misclassified (0): none"]


def test_multi_label_tags_and_wrong_tag_sets() -> None:
    f = frozenset
    rep = ev.evaluate_multi_label(
        [
            ("x.jpg", f({"a", "b"}), f({"a", "b"})),
            ("y.jpg", f({"a"}), f({"b"})),
            ("z.jpg", f(), f()),
        ],
        ["a", "b"],
    )
    assert rep.exact_match == pytest.approx(2 / 3)
    scores = {s.name: s for s in rep.per_label}
    assert scores["a"] == ev.LabelScore("a", 1.0, 0.5, pytest.approx(2 / 3), 2)
    assert scores["b"] == ev.LabelScore("b", 0.5, 1.0, pytest.approx(2 / 3), 1)
    assert rep.mistakes == (ev.Mistake("y.jpg", ("a",), ("b",), None),)
    assert ev.mistake_text(rep.mistakes[0]) == "a -> b (missed a; wrongly b)"


def test_regression_errors_and_largest_first() -> None:
    rep = ev.evaluate_regression(
        [("1.jpg", "w", 1.0, 2.0), ("2.jpg", "w", 3.0, 3.0), ("3.jpg", "w", 5.0, None)]
    )
    assert rep.mae == pytest.approx(0.5)
    assert rep.rmse == pytest.approx(math.sqrt(0.5))
    assert rep.r2 == pytest.approx(1 - 1 / 2)  # actual 1, 3: total 2, residual 1
    assert rep.missing == 1 and rep.per_value[0].support == 2
    assert [p.path for p in rep.pairs] == ["1.jpg", "2.jpg"]  # error 1, then 0
    assert ev.mistake_lines(rep)[:2] == ["Largest errors (2):", "  1.jpg  w 1 -> 2 (error +1)"]
    js = ev.evaluation_json(rep)
    assert js["per_label"]["w"]["support"] == 2 and js["missing"] == 1
    assert js["predictions"][0] == {
        "path": "1.jpg",
        "label": "w",
        "actual": 1.0,
        "predicted": 2.0,
        "error": 1.0,
    }


def test_pr_curve_sweeps_each_distinct_score() -> None:
    # positives at 0.9 and 0.5; negatives at 0.7 and 0.5 (a tie with a positive)
    rows = [(0.9, True), (0.7, False), (0.5, True), (0.5, False)]
    assert ev.pr_curve(rows) == ((0.5, 1.0), (0.5, 0.5), (1.0, 0.5))
    assert ev.pr_curve([(0.3, False)]) == ()


def record(labels: list[dict], best: dict | None = None) -> ClassifiedRecord:
    return ClassifiedRecord.from_api({"labels": labels, "best_label": best})


def test_evaluate_predictions_reads_the_records_of_each_task_type() -> None:
    cat, dog = {"name": "cat", "prob": 0.8}, {"name": "dog", "prob": 0.6}
    truth = {"a.jpg": [("cat", None)], "b.jpg": [("dog", None)], "c.jpg": [("dog", None)]}
    predicted = [
        ("a.jpg", record([cat, dog], best=cat)),
        ("b.jpg", record([dog, cat])),  # no best_label: the first label counts
        ("c.jpg", record([])),  # nothing predicted
    ]
    rep = ev.evaluate_predictions("multi_class", ["cat", "dog"], truth, predicted)
    plain = ev.evaluate_multi_class(
        [("a.jpg", "cat", "cat", 0.8), ("b.jpg", "dog", "dog", 0.6), ("c.jpg", "dog", None, None)],
        ["cat", "dog"],
    )
    assert rep.per_label == plain.per_label and rep.mistakes == plain.mistakes
    # cat's scores: a 0.8 (cat), b 0.8 (dog), c 0 (dog) -> at 0.8: tp 1 fp 1
    curves = {c.label: c.points for c in rep.curves}
    assert curves["cat"] == ((1.0, 0.5), (1.0, 1 / 3))
    assert rep.mistakes == (ev.Mistake("c.jpg", ("dog",), (), None),)
    assert ev.mistake_text(rep.mistakes[0]) == "dog -> (nothing)"

    fox = {"name": "fox", "prob": 0.9}  # not a tag of the task: left out
    tags = {"a.jpg": [("cat", None), ("dog", None)]}
    rep = ev.evaluate_predictions(
        "multi_label", ["cat", "dog"], tags, [("a.jpg", record([cat, fox, {**dog, "prob": 0.2}]))]
    )
    f = frozenset
    plain = ev.evaluate_multi_label([("a.jpg", f({"cat", "dog"}), f({"cat"}))], ["cat", "dog"])
    assert rep.per_label == plain.per_label and rep.mistakes == plain.mistakes

    values = {"a.jpg": [("w", 2.0), ("h", None)], "b.jpg": [("w", 4.0)]}
    predicted = [("a.jpg", record([{"name": "w", "value": 3.0}])), ("b.jpg", record([]))]
    rep = ev.evaluate_predictions("regression", ["w", "h"], values, predicted)
    assert rep == ev.evaluate_regression([("a.jpg", "w", 2.0, 3.0), ("b.jpg", "w", 4.0, None)])
    assert rep.curves == ()


def test_holdout_truth_follows_the_layout_rules() -> None:
    files = [
        ("cat/1.jpg", "h1"),
        ("dog/2.jpg", "h2"),
        ("bird/3.jpg", "h3"),  # not a label of the task
        ("loose.jpg", "h4"),  # directly in DIR
        ("_unlabeled/5.jpg", "h5"),
        ("cat/6.jpg", "h6"),
        ("dog/6.jpg", "h6"),  # a copy of cat/6.jpg in another folder: ambiguous
    ]
    held = holdout_truth("multi_class", ["cat", "dog"], files, {})
    assert held.truth == {"cat/1.jpg": (("cat", None),), "dog/2.jpg": (("dog", None),)}
    why = dict(held.skipped)
    assert why["bird/3.jpg"] == "'bird' is not a label of the task (its labels: cat, dog); skipped"
    assert why["loose.jpg"] == why["_unlabeled/5.jpg"] == "not in a label folder"
    assert "different label folders" in why["cat/6.jpg"] and "dog/6.jpg" in why

    # multi_label: copies in two tag folders are one image with both tags
    held = holdout_truth("multi_label", ["a", "b"], [("a/x.jpg", "k"), ("b/x.jpg", "k")], {})
    assert held.truth == {"a/x.jpg": (("a", None), ("b", None))}

    # regression: the value comes from a sidecar; without one the file is skipped
    rows, problems = resolve_sidecars(
        {"w": {"metadata.jsonl": '{"file_name": "1.jpg", "value": 2.5}\n'}}
    )
    assert problems == []
    held = holdout_truth("regression", ["w"], [("w/1.jpg", "k1"), ("w/2.jpg", "k2")], rows)
    assert held.truth == {"w/1.jpg": (("w", 2.5),)}
    assert held.skipped[0][0] == "w/2.jpg" and held.skipped[0][1].startswith("no value for")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.srcs += [v or "" for k, v in attrs if k in ("src", "href")]


def test_render_report_is_self_contained_and_escapes() -> None:
    rows = [*ROWS, ("cat/<b>.jpg", "cat", "dog", 0.51)]
    rep = ev.evaluate_multi_class(rows, ["cat", "dog"])
    html = render_report(
        rep,
        "Evaluation of 'pets'",
        ["Version 1 on 6 images."],
        [("Confusion matrix", b"\x89PNG fake")],
        {"cat/2.jpg": b"\xff\xd8 fake"},
    )
    parser = _Collect()
    parser.feed(html)
    assert parser.srcs and all(s.startswith("data:image/") for s in parser.srcs)
    assert sum(s.startswith("data:image/png;base64,") for s in parser.srcs) == 1
    assert sum(s.startswith("data:image/jpeg;base64,") for s in parser.srcs) == 1
    assert "script" not in parser.tags and not re.search(r"https?://", html)
    assert "cat/&lt;b&gt;.jpg" in html and "<b>.jpg" not in html
    assert "Misclassified (3)" in html and "cat -&gt; dog (0.70)" in html
    assert '<td>cat</td><td class="n">1.000</td>' in html  # cat's precision


def test_pictures_are_real_pngs_with_and_without_curves() -> None:
    import io

    from PIL import Image

    from localrepo.cli import eval_plots

    plt = eval_plots.require()
    rep = ev.evaluate_multi_class(ROWS, ["cat", "dog"])  # no probabilities swept: no curves
    assert rep.curves == ()
    reg = ev.evaluate_regression([("1.jpg", "w", 1.0, 2.0), ("2.jpg", "w", 3.0, 2.5)])
    for data in (
        eval_plots.confusion_png(plt, rep),
        eval_plots.precision_recall_png(plt, rep),  # each label's point instead
        eval_plots.precision_recall_png(plt, ev.with_curves(rep, {"cat": [(0.9, True)]})),
        *eval_plots.regression_pngs(plt, reg),
    ):
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "PNG" and min(img.size) >= 150
            img.load()
