"""What a sync run reports (localrepo.sync.report): `in_sync`, the rule the exit codes
follow, is false for each thing that leaves disk, catalog and server apart."""

from __future__ import annotations

import pytest

from localrepo.sync import plan as P
from localrepo.sync.holds import Hold
from localrepo.sync.report import SyncReport, TaskReport
from localrepo.sync.results import Outcome


def report(**task: object) -> SyncReport:
    return SyncReport(tasks=[TaskReport("pets", "1"), TaskReport("cars", "2", **task)])  # type: ignore[arg-type]


def test_a_run_with_nothing_left_is_in_sync() -> None:
    done = report(outcome=Outcome(uploaded=3, synced=3))
    assert done.in_sync
    assert done.outcome.uploaded == 3  # the tasks' outcomes add up
    assert SyncReport().in_sync


@pytest.mark.parametrize(
    "task",
    [
        {"conflicts": [P.Conflict("k", "label", (), (("a", None),), (("b", None),))]},
        {"outcome": Outcome(failed=[("k", "timed out")])},
        {"held": [Hold("k", "dog/k.jpg", "damaged (truncated)")]},
        {"problems": ["remote label 'x' would live in x/, which is ignored"]},
        {"left_for_other_side": 1},
        {"stop": P.SafetyStop("mass_delete", "remote", 9, 3, "stopped")},
        {"outcome": Outcome(deferred=["k"])},
        {"twins_left": 1},
    ],
    ids=lambda t: next(iter(t)),
)
def test_anything_left_apart_is_not_in_sync(task: dict[str, object]) -> None:
    assert not report(**task).in_sync


def test_a_settled_conflict_is_not_open() -> None:
    settled = P.Conflict("k", "label", (), (("a", None),), (("b", None),), "local")
    done = report(conflicts=[settled])
    assert done.conflicts == 0 and done.in_sync
