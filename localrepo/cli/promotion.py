"""Which version is in production: after a training (`repo train --promote`), and for
`repo models promote VERSION` / `repo models rollback`. Pure decisions and their text;
no I/O. The shells (cli/ml_train.py, cli/ml_models.py) read the server, ask these, and
set the task's production version.

Contract:
- `headline(task_type, numbers)`: the one number versions are compared on: accuracy
  (multi_class), F1 (multi_label: the server's f1, else the harmonic mean of its
  precision and recall), MAE (regression; lower is better). None when it is missing.
- `decide(case)`: the policy (`always`, `if-better`, `never`) applied to a finished
  training. There was no production version: the new one is kept. `always` keeps the
  new one, `never` restores the previous one. `if-better` keeps the new one when its
  score is at least the previous one's, measured on the new version's test images
  (the server's `metrics.baseline`); without that (the hosted service), on each
  version's own test images, and the message says so. When no comparison is possible
  the previous version stays: only a version known to be as good replaces it.
- `promote_target(version, models, production)`: the version `promote` sets; a usage
  error (exit 2) naming the trained versions for one that does not exist or did not train.
- `rollback_target(models, production)`: the newest trained version older than the
  production one; an error when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from localrepo.errors import EXIT_USAGE, LocalrepoError
from localrepo.vocabulary import MULTI_LABEL, REGRESSION

ALWAYS, IF_BETTER, NEVER = "always", "if-better", "never"
POLICIES = (ALWAYS, IF_BETTER, NEVER)
TRAINED = "TRAINED"


@dataclass(frozen=True)
class Score:
    metric: str  # as the user reads it: "accuracy", "F1", "MAE"
    value: float
    higher_is_better: bool

    def at_least_as_good_as(self, other: Score) -> bool:
        # Rounded as the server rounds its metrics: equal is equal.
        mine, theirs = round(self.value, 6), round(other.value, 6)
        return mine >= theirs if self.higher_is_better else mine <= theirs


def headline(task_type: str, numbers: Mapping[str, float]) -> Score | None:
    """The score versions of a task of this type are compared on (see the contract)."""
    if task_type == REGRESSION:
        mae = numbers.get("mae")
        return None if mae is None else Score("MAE", float(mae), higher_is_better=False)
    if task_type == MULTI_LABEL:
        f1 = numbers.get("f1")
        if f1 is None:
            p, r = numbers.get("precision"), numbers.get("recall")
            if p is None or r is None:
                return None
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        return Score("F1", float(f1), higher_is_better=True)
    accuracy = numbers.get("accuracy")
    return None if accuracy is None else Score("accuracy", float(accuracy), True)


@dataclass(frozen=True)
class Measured:
    """A version's headline numbers, and on how many test images they were measured."""

    version: int
    numbers: Mapping[str, float]
    test_images: int | None = None


def baseline_from(metrics: Mapping[str, object]) -> Measured | None:
    """The server's `metrics.baseline` of a new version ({version, the headline numbers,
    test_images}); None when absent or malformed."""
    raw = metrics.get("baseline")
    if not isinstance(raw, Mapping):
        return None
    version, images = raw.get("version"), raw.get("test_images")
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    numbers = {
        k: float(v)
        for k, v in raw.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and k not in ("version", "test_images")
    }
    return Measured(version, numbers, images if isinstance(images, int) else None)


@dataclass(frozen=True)
class Case:
    """A training that ended TRAINED. `previous`: the production version before it;
    `baseline`: the previous version scored on the new version's test images (None when
    the server gives none); `previous_own`: the previous version's own metrics."""

    policy: str
    task_type: str
    new: Measured
    previous: int | None
    baseline: Measured | None = None
    previous_own: Measured | None = None


@dataclass(frozen=True)
class Comparison:
    new: Score
    old: Score
    old_version: int
    same_images: bool
    test_images: int | None  # of the new version (and of the baseline when same_images)
    old_test_images: int | None


@dataclass(frozen=True)
class Decision:
    production: int  # the version that is to be in production
    restore: bool  # True: set `production` back (the server made the new one production)
    comparison: Comparison | None
    message: str


def compare(case: Case) -> Comparison | None:
    """The new version's score against the previous one's: on the same test images
    when the server scored the previous version on them, else on each one's own."""
    new = headline(case.task_type, case.new.numbers)
    if new is None or case.previous is None:
        return None
    if case.baseline is not None and case.baseline.version == case.previous:
        old = headline(case.task_type, case.baseline.numbers)
        if old is not None and old.metric == new.metric:
            count = case.baseline.test_images or case.new.test_images
            return Comparison(new, old, case.previous, True, count, count)
    if case.previous_own is not None and case.previous_own.version == case.previous:
        old = headline(case.task_type, case.previous_own.numbers)
        if old is not None and old.metric == new.metric:
            return Comparison(
                new, old, case.previous, False, case.new.test_images, case.previous_own.test_images
            )
    return None


def comparison_text(new_version: int, c: Comparison) -> str:
    lower = "" if c.new.higher_is_better else " (lower is better)"
    said = (
        f"version {new_version} scored {c.new.value:.3f} {c.new.metric} against version "
        f"{c.old_version}'s {c.old.value:.3f}{lower}"
    )
    if c.same_images:
        images = f" {c.test_images}" if c.test_images is not None else ""
        return f"{said} on the same{images} test images"
    counts = ""
    if c.test_images is not None and c.old_test_images is not None:
        counts = f", {c.test_images} and {c.old_test_images}"
    return f"{said}, each on its own test images{counts} (the server did not score them on the same ones)"


def decide(case: Case) -> Decision:
    """What to do with the new version (see the module contract)."""
    new_v, old_v = case.new.version, case.previous
    if old_v is None or old_v == new_v:
        return Decision(new_v, False, None, f"Version {new_v} is now the production version.")
    comparison = compare(case)
    said = f"{_upper(comparison_text(new_v, comparison))}: " if comparison else ""
    anyway = f"'repo models promote {new_v}' puts version {new_v} in production anyway."
    if case.policy == ALWAYS:
        return Decision(
            new_v,
            False,
            comparison,
            _upper(f"{said}version {new_v} is now the production version (--promote always)."),
        )
    if case.policy == NEVER:
        return Decision(
            old_v,
            True,
            comparison,
            _upper(f"{said}version {old_v} stays in production (--promote never). {anyway}"),
        )
    if comparison is None:
        return Decision(
            old_v,
            True,
            None,
            f"Version {new_v} cannot be compared with version {old_v} (the server gave no "
            f"comparable metrics): version {old_v} stays in production. {anyway}",
        )
    if comparison.new.at_least_as_good_as(comparison.old):
        return Decision(
            new_v, False, comparison, f"{said}version {new_v} is now the production version."
        )
    return Decision(old_v, True, comparison, f"{said}version {old_v} stays in production. {anyway}")


def not_restored(decision: Decision, new_version: int, reason: str) -> Decision:
    """`decision` when setting the previous version back failed: the new one stays."""
    return Decision(
        new_version,
        False,
        decision.comparison,
        f"{decision.message} But version {decision.production} could not be put back "
        f"({reason}), so version {new_version} is the production version.",
    )


# -- promote and rollback ----------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A model version of the task as the server lists it."""

    version: int
    status: str | None
    detail: str | None = None


def _trained(models: Sequence[Version]) -> list[int]:
    return sorted({m.version for m in models if m.status == TRAINED})


def _listed(versions: Sequence[int]) -> str:
    return ", ".join(map(str, versions)) if versions else "none yet (run 'repo train')"


def promote_target(version: int, models: Sequence[Version], task: str) -> int:
    """`version`, when it trained; else a usage error that says why and names the trained
    versions (the nearest as "did you mean")."""
    trained = _trained(models)
    if version in trained:
        return version
    found = next((m for m in models if m.version == version), None)
    if found is None:
        why = f"the task '{task}' has no version {version}"
    elif found.status in ("WAITING", "IN_TRAINING"):
        why = f"version {version} of '{task}' is still training ({found.status})"
    else:
        reason = f": {found.detail}" if found.detail else ""
        why = f"version {version} of '{task}' did not train ({found.status or 'no status'}{reason})"
    hint = ""
    if trained:
        nearest = min(trained, key=lambda v: (abs(v - version), -v))
        hint = f" Did you mean version {nearest}?"
    return _usage(
        f"{why}; only a trained version can be production (trained: {_listed(trained)}).{hint}"
    )


def rollback_target(models: Sequence[Version], production: int | None, task: str) -> int:
    """The newest trained version older than `production`."""
    trained = _trained(models)
    if production is None:
        raise LocalrepoError(
            f"The task '{task}' has no production version yet, so there is nothing to roll "
            f"back (trained versions: {_listed(trained)})."
        )
    older = [v for v in trained if v < production]
    if not older:
        raise LocalrepoError(
            f"Version {production} of '{task}' is in production and no older version "
            f"trained, so there is nothing to roll back to (trained versions: "
            f"{_listed(trained)})."
        )
    return older[-1]


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _usage(message: str) -> int:
    raise LocalrepoError(_upper(message), exit_code=EXIT_USAGE)
