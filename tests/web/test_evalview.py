"""web/evalview.py (pure): a version's stored metrics as the evaluation page shows them,
and a classify answer's labels."""

from __future__ import annotations

from dataclasses import dataclass

from localrepo.server.web.evalview import (
    Shot,
    evaluation,
    f1,
    guesses,
    picked,
    plot,
    shots,
    tag_mistakes,
    trained_choices,
)


def test_f1_is_the_harmonic_mean_and_missing_figures_stay_missing() -> None:
    assert f1(1.0, 0.5) == 2 / 3
    assert f1(0.0, 0.0) == 0.0
    assert f1(None, 0.5) is None


def test_multi_class_figures_and_the_heat_map() -> None:
    metrics = {
        "accuracy": 0.75,
        "precision": 0.8,
        "recall": None,
        "test_images": 4,
        "per_label": [
            {"name": "cat", "precision": 1.0, "recall": 0.5, "support": 2},
            {"name": "dog", "precision": 0.5, "recall": None, "support": 0},
        ],
        "confusion_matrix": {"labels": ["cat", "dog"], "matrix": [[1, 1], [0, 0]]},
    }
    view = evaluation(metrics, "multi_class")
    assert view.headline == (("Accuracy", "0.750"), ("Precision (mean)", "0.800"))
    assert view.columns == ("Precision", "Recall", "F1")
    assert [(r.name, r.figures, r.support) for r in view.rows] == [
        ("cat", ("1.000", "0.500", "0.667"), 2),
        ("dog", ("0.500", "–", "–"), 0),
    ]
    assert view.matrix_labels == ("cat", "dog")
    [cat, dog] = view.matrix
    assert [(c.count, c.share, c.diagonal) for c in cat] == [(1, 0.5, True), (1, 0.5, False)]
    assert [c.share for c in dog] == [0.0, 0.0]  # no test image of dog: no division by zero
    assert view.test_images == 4


def test_regression_figures_have_no_matrix() -> None:
    metrics = {
        "mae": 0.1,
        "rmse": 0.2,
        "per_label": [{"name": "b", "mae": 0.1, "rmse": 0.2, "r2": None, "support": 3}],
    }
    view = evaluation(metrics, "regression")
    assert view.columns == ("MAE", "RMSE", "R²")
    assert view.rows[0].figures == ("0.100", "0.200", "–")
    assert view.matrix == () and view.test_images is None


def test_guesses_best_first_as_given_and_trained_versions_newest_first() -> None:
    answer = {"labels": [{"name": "cat", "prob": 0.9712}, {"name": "dog", "prob": 0.0288}]}
    assert [(g.name, g.value, g.share) for g in guesses(answer)] == [
        ("cat", "97.1%", 0.9712),
        ("dog", "2.9%", 0.0288),
    ]
    assert [(g.value, g.share) for g in guesses({"labels": [{"name": "b", "value": 0.25}]})] == [
        ("0.250", 0.0)
    ]
    models = [
        {"version": 1, "train_status": "TRAINED"},
        {"version": 2, "train_status": "ERROR"},
        {"version": 3, "train_status": "TRAINED"},
    ]
    assert trained_choices(models) == [3, 1]


def test_a_cell_or_the_mistakes_least_confident_first() -> None:
    from localrepo.server.ml.train import SplitOutcome

    outcomes = [
        SplitOutcome("i1", "s1", "cat", "cat", 0.9),
        SplitOutcome("i2", "s2", "cat", "dog", 0.8),
        SplitOutcome("i3", "s3", "dog", "cat", 0.6),
        SplitOutcome("i4", "s4", "dog", "dog", 0.7),
    ]
    wrong = picked(outcomes, None)
    assert [o.image_id for o in wrong] == ["i2", "i3"]
    assert [o.image_id for o in picked(outcomes, ("dog", "dog"))] == ["i4"]
    assert shots(wrong, {"cat": "Cat", "dog": "Dog"}) == [
        Shot("i3", "Dog", "Cat", "60.0%"),
        Shot("i2", "Cat", "Dog", "80.0%"),
    ]


def test_the_plot_puts_both_axes_on_one_scale() -> None:
    drawn = plot([(0.0, 0.5), (1.0, 1.0), (0.5, 0.0)])
    assert drawn is not None
    # x = actual, y = predicted from the top: a perfect answer is on the diagonal.
    assert drawn.points == ((0.0, 50.0), (100.0, 0.0), (50.0, 100.0))
    assert (drawn.low, drawn.high) == ("0", "1")
    assert plot([(2.0, 2.0)]) is not None  # one value: no division by zero
    assert plot([]) is None


@dataclass(frozen=True)
class Tagged:
    image_id: str
    truth: tuple[str, ...]
    scores: tuple[float, ...]  # red, blue


def test_a_multi_label_mistake_is_a_set_of_tags_that_differs_from_the_truth() -> None:
    names = {"r": "red", "b": "blue"}
    outcomes = [
        Tagged("right", ("r",), (0.9, 0.1)),
        Tagged("right-none", (), (0.2, 0.4)),  # the negative label's image, no tag predicted
        Tagged("right-both", ("b", "r"), (0.5, 0.7)),  # 0.5 is a tag: classify/'s >= 0.5
        Tagged("swapped", ("b",), (0.97, 0.2)),  # red is 0.47 wrong, blue 0.3
        Tagged("missed", ("r", "b"), (0.8, 0.45)),  # blue 0.05 under the threshold
        Tagged("extra", (), (0.1, 0.6)),
    ]
    shots = tag_mistakes(outcomes, ["r", "b"], names)
    assert shots == [
        Shot("missed", "blue, red", "red", "45.0%", "blue"),
        Shot("extra", "none", "blue", "60.0%", "blue"),
        Shot("swapped", "blue", "red", "97.0%", "red"),
    ]
    assert tag_mistakes([], ["r", "b"], names) == []
