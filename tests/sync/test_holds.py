"""What a sync holds back, applied to the planner's input (localrepo.sync.holds): a held
image's local side is taken as unchanged, an ambiguous multi_class image is in all its
folders' labels, and the plan then deletes nothing of either."""

from __future__ import annotations

from localrepo.sync import plan as P
from localrepo.sync.holds import Hold, TaskFiles, hold_back


def tags(*names: str) -> dict[str, None]:
    return dict.fromkeys(names)


ALL = frozenset({"ok", "two", "refused", "damaged", "new_damaged"})

# A multi_class task rooted at pets/: "ok" is in sync; "two" has copies in two label
# folders; "refused" sits in a folder the naming rule refused; the one file of
# "damaged" (synced) went bad, as did that of "new_damaged" (never synced). The scanner
# reads the last three as having no label here.
STATE = P.TaskState(
    task_type="multi_class",
    base={k: tags("dog") for k in ("ok", "two", "refused", "damaged")},
    local={"ok": tags("dog"), "two": tags("dog")},
    remote={k: tags("dog") for k in ("ok", "two", "refused", "damaged")},
    local_files=frozenset({"ok", "two", "refused"}),
    remote_exists=frozenset({"ok", "two", "refused", "damaged"}),
    created_here=ALL,
    local_blocked=frozenset({"blocked_before"}),
    base_labels=frozenset({"dog"}),
    local_labels=frozenset({"dog", "cat"}),
    remote_labels=frozenset({"dog"}),
)
FILES = TaskFiles(
    "multi_class",
    "pets",
    {
        "ok": ["pets/dog/ok.jpg"],
        "two": ["pets/dog/two.jpg", "pets/cat/two.jpg"],
        "refused": ["pets/do%zzg/refused.jpg"],
    },
    {
        "pets/dog/damaged.jpg": ("damaged", "truncated"),
        "pets/dog/new.jpg": ("new_damaged", "cannot be decoded"),
    },
    ("pets/do%zzg",),
)


def test_held_images_are_blocked_and_reported_by_path() -> None:
    state, held = hold_back(STATE, FILES)
    assert held == [
        Hold("refused", "pets/do%zzg/refused.jpg", "its folder 'do%zzg' cannot be a label folder"),
        Hold("damaged", "pets/dog/damaged.jpg", "damaged (truncated)"),
    ]
    assert state.local_blocked == {"blocked_before", "refused", "damaged"}


def test_an_ambiguous_image_is_in_every_label_its_folders_say() -> None:
    state, _held = hold_back(STATE, FILES)
    assert state.local["two"] == {"cat": None, "dog": None}
    assert state.local["ok"] == {"dog": None}
    assert "refused" not in state.local and "damaged" not in state.local


def test_the_plan_deletes_nothing_held_and_makes_the_ambiguous_image_a_conflict() -> None:
    unheld = P.plan_task(STATE, max_delete_fraction=None)
    assert {op.key for op in unheld.by_kind(P.REMOVE_REMOTE)} == {"refused", "damaged"}
    state, _held = hold_back(STATE, FILES)
    plan = P.plan_task(state, max_delete_fraction=None)
    assert not plan.by_kind(P.REMOVE_REMOTE)
    assert [(c.key, c.resolution) for c in plan.conflicts] == [("two", None)]


def test_nothing_to_hold_leaves_the_state_as_it_was() -> None:
    files = TaskFiles("multi_class", "pets", {"ok": ["pets/dog/ok.jpg"]}, {})
    state, held = hold_back(STATE, files)
    assert held == []
    assert state == STATE
