"""cli/promotion.py (pure): which version stays in production after a training, and the
version `repo models promote` / `rollback` set."""

from __future__ import annotations

import pytest

from localrepo.cli.promotion import (
    ALWAYS,
    IF_BETTER,
    NEVER,
    Case,
    Measured,
    Score,
    Version,
    baseline_from,
    decide,
    headline,
    promote_target,
    rollback_target,
)
from localrepo.errors import EXIT_ERROR, EXIT_USAGE, LocalrepoError


def case(
    policy: str = IF_BETTER,
    new: float = 0.61,
    base: float | None = 0.84,
    own: float | None = None,
    previous: int | None = 2,
    task_type: str = "multi_class",
) -> Case:
    key = "mae" if task_type == "regression" else "accuracy"
    return Case(
        policy=policy,
        task_type=task_type,
        new=Measured(3, {key: new}, 40),
        previous=previous,
        baseline=Measured(2, {key: base}, 40) if base is not None else None,
        previous_own=Measured(2, {key: own}, 35) if own is not None else None,
    )


def test_a_worse_version_is_set_back_with_the_numbers_on_the_same_images() -> None:
    d = decide(case())
    assert (d.production, d.restore) == (2, True)
    assert d.message == (
        "Version 3 scored 0.610 accuracy against version 2's 0.840 on the same 40 test "
        "images: version 2 stays in production. 'repo models promote 3' puts version 3 in "
        "production anyway."
    )
    assert d.comparison is not None and d.comparison.same_images


@pytest.mark.parametrize("new", [0.84, 0.9])
def test_an_equal_or_better_version_stays(new: float) -> None:
    d = decide(case(new=new))
    assert (d.production, d.restore) == (3, False)
    assert d.message.endswith(": version 3 is now the production version.")


def test_regression_compares_mae_lower_is_better() -> None:
    better = decide(case(new=0.1, base=0.2, task_type="regression"))
    worse = decide(case(new=0.3, base=0.2, task_type="regression"))
    assert (better.production, worse.production) == (3, 2)
    assert "0.300 MAE against version 2's 0.200 (lower is better)" in worse.message


def test_multi_label_compares_f1_from_precision_and_recall() -> None:
    score = headline("multi_label", {"precision": 0.5, "recall": 1.0})
    assert score == Score("F1", pytest.approx(2 / 3), True)
    assert headline("multi_label", {"f1": 0.7, "precision": 0.1, "recall": 0.1}) == Score(
        "F1", 0.7, True
    )
    assert headline("multi_label", {"precision": 0.5}) is None
    assert headline("multi_class", {"precision": 0.5}) is None


def test_always_and_never() -> None:
    always = decide(case(policy=ALWAYS))
    assert (always.production, always.restore) == (3, False)
    assert always.message.endswith("version 3 is now the production version (--promote always).")
    never = decide(case(policy=NEVER, new=0.99))
    assert (never.production, never.restore) == (2, True)
    assert "version 2 stays in production (--promote never)" in never.message
    # Without numbers to show, the sentence still starts with a capital.
    bare = decide(case(policy=NEVER, base=None))
    assert bare.message.startswith("Version 2 stays in production (--promote never).")
    bare = decide(case(policy=ALWAYS, base=None))
    assert bare.message == "Version 3 is now the production version (--promote always)."


def test_no_previous_version_keeps_the_new_one_whatever_the_policy() -> None:
    for policy in (ALWAYS, IF_BETTER, NEVER):
        d = decide(case(policy=policy, previous=None, base=None))
        assert (d.production, d.restore, d.comparison) == (3, False, None)
        assert d.message == "Version 3 is now the production version."


def test_without_a_baseline_each_versions_own_numbers_with_a_warning() -> None:
    d = decide(case(base=None, own=0.8, new=0.9))
    assert (d.production, d.restore) == (3, False)
    assert d.comparison is not None and not d.comparison.same_images
    assert "each on its own test images, 40 and 35" in d.message


def test_a_baseline_of_another_version_is_not_used() -> None:
    other = Case(
        IF_BETTER, "multi_class", Measured(3, {"accuracy": 0.5}), 2, Measured(1, {"accuracy": 0.9})
    )
    d = decide(other)
    assert (d.production, d.restore, d.comparison) == (2, True, None)
    assert "cannot be compared with version 2" in d.message


def test_baseline_from_the_servers_metrics() -> None:
    metrics = {"baseline": {"version": 2, "accuracy": 0.5, "recall": None, "test_images": 7}}
    assert baseline_from(metrics) == Measured(2, {"accuracy": 0.5}, 7)
    assert baseline_from({}) is None
    assert baseline_from({"baseline": {"version": "2"}}) is None
    assert baseline_from({"baseline": [1]}) is None


MODELS = [
    Version(1, "TRAINED"),
    Version(2, "ERROR", "Too few images"),
    Version(3, "TRAINED"),
    Version(4, "IN_TRAINING"),
]


def test_promote_takes_a_trained_version_and_explains_the_others() -> None:
    assert promote_target(3, MODELS, "t") == 3
    with pytest.raises(LocalrepoError) as unknown:
        promote_target(9, MODELS, "t")
    assert unknown.value.exit_code == EXIT_USAGE
    assert str(unknown.value) == (
        "The task 't' has no version 9; only a trained version can be production "
        "(trained: 1, 3). Did you mean version 3?"
    )
    with pytest.raises(LocalrepoError, match=r"did not train \(ERROR: Too few images\)"):
        promote_target(2, MODELS, "t")
    with pytest.raises(LocalrepoError, match=r"is still training \(IN_TRAINING\)"):
        promote_target(4, MODELS, "t")
    with pytest.raises(LocalrepoError, match=r"trained: none yet \(run 'repo train'\)\)\.$"):
        promote_target(1, [], "t")


def test_rollback_goes_to_the_newest_trained_version_before_production() -> None:
    assert rollback_target(MODELS, 3, "t") == 1
    assert rollback_target(MODELS, 4, "t") == 3
    for production in (1, None):
        with pytest.raises(LocalrepoError) as none:
            rollback_target(MODELS, production, "t")
        assert none.value.exit_code == EXIT_ERROR
        assert "nothing to roll back" in str(none.value)


def test_a_failed_restore_says_the_new_version_stays() -> None:
    from localrepo.cli.promotion import not_restored

    d = not_restored(decide(case()), 3, "version 2 does not exist")
    assert (d.production, d.restore) == (3, False)
    assert d.message.endswith(
        "But version 2 could not be put back (version 2 does not exist), so version 3 is "
        "the production version."
    )
