"""The pure part of training: the seeded split and the checks before a training."""

from __future__ import annotations

import numpy as np

from localrepo.server.ml.heads import (
    Head,
    LabelInfo,
    Sample,
    evaluate,
    split,
    too_few_problems,
)


def samples(per_label: dict[str, int], marked: int = 0) -> list[Sample]:
    out = []
    for label, n in per_label.items():
        for i in range(n):
            out.append(Sample(f"{label}-{i}", f"sha-{label}-{i}", i < marked, (label,)))
    return out


def test_split_is_stratified_seeded_and_keeps_marked_images_in_test() -> None:
    data = samples({"a": 10, "b": 5, "c": 2}, marked=1)
    train, test = split("multi_class", data, seed="task-1")
    assert sorted(train + test) == list(range(len(data)))
    by_label = {lab: [data[i] for i in test if data[i].labels[0] == lab] for lab in "abc"}
    assert [len(by_label[lab]) for lab in "abc"] == [2, 1, 1]
    assert all(any(s.test_image for s in group) for group in by_label.values())
    assert split("multi_class", data, seed="task-1") == (train, test)
    # Another task (seed) picks other images; an added image moves at most one other.
    assert split("multi_class", data, seed="task-2") != (train, test)
    more = [*data, Sample("a-new", "sha-new", False, ("a",))]
    _, test2 = split("multi_class", more, seed="task-1")
    moved = {data[i].image_id for i in test} ^ {more[i].image_id for i in test2}
    assert len(moved - {"a-new"}) <= 1


def test_every_marked_image_is_test_even_past_20_percent() -> None:
    data = samples({"a": 5, "b": 5}, marked=4)
    train, test = split("multi_class", data, seed="t")
    assert {data[i].image_id for i in test} == {f"{x}-{i}" for x in "ab" for i in range(4)}
    assert len(train) == 2


def test_too_few_names_every_short_label_and_ignores_the_negative() -> None:
    labels = [LabelInfo("a", "apple"), LabelInfo("b", "pear"), LabelInfo("n", "neg", negative=True)]
    data = samples({"a": 5, "b": 2})
    message = too_few_problems("multi_label", labels, data, minimum=3)
    assert message is not None and "'pear' (2)" in message and "apple" not in message
    assert "neg" not in message
    assert too_few_problems("multi_label", labels, data, minimum=2) is None
    assert "two category labels" in (too_few_problems("multi_class", labels[:1], data, 1) or "")


def test_a_head_round_trips_as_plain_weights_and_evaluates() -> None:
    head = Head(
        "multi_class",
        "handcrafted",
        ["a", "b"],
        np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        np.zeros(2, dtype=np.float32),
    )
    again = Head.from_bytes(head.to_bytes())
    x = np.array([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    assert np.allclose(again.predict(x), head.predict(x))
    assert np.allclose(head.predict(x).sum(axis=1), 1.0)
    truth = [
        Sample("1", "", True, ("a",)),
        Sample("2", "", True, ("b",)),
        Sample("3", "", True, ("b",)),
    ]
    metrics = evaluate(head, [LabelInfo("a", "A"), LabelInfo("b", "B")], x, truth)
    assert metrics["accuracy"] == round(2 / 3, 6)
    assert metrics["confusion_matrix"]["matrix"] == [[1, 0], [1, 1]]
    per = {p["name"]: p for p in metrics["per_label"]}
    assert per["A"]["precision"] == 0.5 and per["B"]["recall"] == 0.5


def test_two_classes_get_one_output_each_with_scikit_learns_probabilities() -> None:
    from sklearn.linear_model import LogisticRegression

    from localrepo.server.ml.heads import LOGREG_C, fit_head

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (8, 5)), rng.normal(2, 1, (8, 5))])
    data = [Sample(str(i), "", False, ("a" if i < 8 else "b",)) for i in range(16)]
    labels = [LabelInfo("a", "A"), LabelInfo("b", "B")]
    head = fit_head("multi_class", "handcrafted", labels, x, data)
    assert head.label_ids == ["a", "b"] and head.weights.shape == (2, 5)
    mean, std = x.mean(axis=0), x.std(axis=0)
    ref = LogisticRegression(C=LOGREG_C, max_iter=3000).fit(
        (x - mean) / std, [s.labels[0] for s in data]
    )
    assert np.allclose(head.predict(x), ref.predict_proba((x - mean) / std), atol=1e-4)


def test_the_production_version_is_scored_on_the_new_test_part_when_it_can_be() -> None:
    from localrepo.server.ml.heads import TaskData
    from localrepo.server.ml.train import score_baseline

    head = Head(
        "multi_class",
        "handcrafted",
        ["a", "b"],
        np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        np.zeros(2, dtype=np.float32),
    )
    labels = [LabelInfo("a", "A"), LabelInfo("b", "B")]
    truth = [Sample("1", "", False, ("a",)), Sample("2", "", False, ("b",))]
    data = TaskData("t", "t", "multi_class", labels, truth)
    x = np.array([[2.0, 0.0], [3.0, 1.0]])  # the second is taken for "a": half right
    stored = (4, head.to_bytes())
    assert score_baseline(stored, data, "handcrafted", x, truth) == {
        "version": 4,
        "accuracy": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "test_images": 2,
    }
    # Not comparable: nothing in production, other features, a head that does not load,
    # no test images.
    assert score_baseline(None, data, "handcrafted", x, truth) is None
    assert score_baseline(stored, data, "efficientnet-lite0", x, truth) is None
    assert score_baseline((4, b"not a head"), data, "handcrafted", x, truth) is None
    assert score_baseline(stored, data, "handcrafted", x[:0], []) is None
    wider = np.hstack([x, x])  # features of another size
    assert score_baseline(stored, data, "handcrafted", wider, truth) is None
    truncated = (4, head.to_bytes()[:-20])
    assert score_baseline(truncated, data, "handcrafted", x, truth) is None
