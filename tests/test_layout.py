"""Layout rules (design section 2): names, task roots, label folders and their properties.
Placements with sidecars are in test_layout_sidecars.py, merging and case twins in
test_layout_merge.py; both use the task bindings below."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrepo.labelnames import folder_for_label, folder_verdict
from localrepo.layout import (
    IMAGE_EXTENSIONS,
    UNLABELED_DIR,
    Placement,
    TaskBinding,
    folder_label,
    is_image_name,
    label_for_folder,
    nfc,
    place,
    task_for,
)
from localrepo.sidecars import SidecarRow
from localrepo.vocabulary import TASK_TYPES, TaskType

MC = TaskBinding(1, "animals", "multi_class", "")
ML = TaskBinding(2, "tags", "multi_label", "")
RG = TaskBinding(3, "ages", "regression", "")


def binding(kind: TaskType, root: str = "", task_id: int = 7) -> TaskBinding:
    return TaskBinding(task_id, f"task-{task_id}", kind, root)


# --------------------------------------------------------------------------- strategies

# Folder-name characters: letters (including accented and non-Latin), digits, a few
# punctuation marks, and combining marks so that NFD spellings show up.
_name_chars = st.characters(
    codec="utf-8",
    categories=("Lu", "Ll", "Lo", "Nd", "Mn"),
    include_characters="-_. ",
)
folder_names = st.text(_name_chars, min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and "/" not in s
)
# Folder names the naming rule reads as a label (labelnames.py refuses, say, " x").
label_names = folder_names.filter(lambda s: s[0] not in "._" and folder_verdict(s).label)
image_names = st.builds(
    lambda stem, ext: f"{stem}.{ext}",
    st.text(st.characters(codec="ascii", categories=("Ll", "Nd")), min_size=1, max_size=8),
    st.sampled_from(sorted(IMAGE_EXTENSIONS)),
)
sub_paths = st.lists(folder_names, max_size=3)
roots = st.lists(
    st.text(st.characters(codec="ascii", categories=("Ll",)), min_size=1, max_size=4),
    max_size=3,
).map("/".join)


def join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


# --------------------------------------------------------------------------- names


def test_nfc_normalises_decomposed_names() -> None:
    nfd = unicodedata.normalize("NFD", "Café")
    assert nfd != "Café"
    assert nfc(nfd) == "Café"
    assert nfc("plain") == "plain"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("a.JPG", True),
        ("a.Jpeg", True),
        ("x.y.png", True),
        ("scan.TIFF", True),
        ("anim.gif", True),
        ("pic.webp", True),
        ("old.bmp", True),
        ("dir/sub/a.tif", True),
        ("notes.txt", False),
        ("jpg", False),
        ("a.jpg.part", False),
        (".jpg", False),
        ("a.", False),
        ("metadata.jsonl", False),
    ],
)
def test_is_image_name(name: str, expected: bool) -> None:
    assert is_image_name(name) is expected


@given(image_names, st.sampled_from([str.upper, str.lower, str.title, str.swapcase]))
def test_is_image_name_ignores_case(name: str, case: object) -> None:
    assert is_image_name(case(name))  # type: ignore[operator]


# --------------------------------------------------------------------------- task_for


def test_task_for_component_boundaries() -> None:
    cats = binding("multi_class", "cats", 1)
    assert task_for("cats/x.jpg", [cats]) is cats
    assert task_for("cats/a/b/x.jpg", [cats]) is cats
    assert task_for("catsdogs/x.jpg", [cats]) is None
    assert task_for("x.jpg", [cats]) is None
    assert task_for("dogs/cats/x.jpg", [cats]) is None


def test_task_for_root_binding_contains_everything() -> None:
    everything = binding("multi_class", "", 1)
    assert task_for("x.jpg", [everything]) is everything
    assert task_for("a/b/c/x.jpg", [everything]) is everything


def test_task_for_deepest_root_wins_regardless_of_order() -> None:
    top = binding("multi_class", "", 1)
    mid = binding("multi_label", "data", 2)
    deep = binding("regression", "data/ages", 3)
    for order in ([top, mid, deep], [deep, mid, top], [mid, deep, top]):
        assert task_for("data/ages/10/x.jpg", order) is deep
        assert task_for("data/tags/x.jpg", order) is mid
        assert task_for("data/agesx/x.jpg", order) is mid
        assert task_for("other/x.jpg", order) is top


def test_task_for_no_bindings() -> None:
    assert task_for("a/x.jpg", []) is None


def test_task_for_same_root_lowest_task_id() -> None:
    a = binding("multi_class", "r", 5)
    b = binding("multi_label", "r", 2)
    assert task_for("r/x/y.jpg", [a, b]) is b
    assert task_for("r/x/y.jpg", [b, a]) is b


def test_task_for_compares_in_nfc() -> None:
    root = binding("multi_class", "Café", 1)
    assert task_for(unicodedata.normalize("NFD", "Café") + "/cat/x.jpg", [root]) is root


@given(st.lists(roots, min_size=1, max_size=5, unique=True), sub_paths, image_names)
def test_task_for_deepest_containing_root_property(
    root_list: list[str], sub: list[str], image: str
) -> None:
    bindings = [binding("multi_class", r, i) for i, r in enumerate(root_list)]
    # Place the file under one of the roots (or anywhere).
    path = join(root_list[0], *sub, image)
    found = task_for(path, bindings)
    containing = [
        b for b in bindings if b.root == "" or path == b.root or path.startswith(b.root + "/")
    ]
    assert found is not None
    assert found in containing
    depth = lambda b: 0 if b.root == "" else b.root.count("/") + 1  # noqa: E731
    assert depth(found) == max(depth(b) for b in containing)


# --------------------------------------------------------------------------- place: folders


def test_first_level_folder_is_the_label() -> None:
    p = place("cat/x.jpg", MC, None)
    assert (p.task_id, p.label, p.labels, p.value, p.problems) == (1, "cat", ("cat",), None, ())


def test_deeper_folders_inherit_the_label() -> None:
    for path in ("cat/2023/x.jpg", "cat/a/b/c/d/x.jpg", "cat/_private/x.jpg", "cat/.x/y.jpg"):
        assert place(path, MC, None).labels == ("cat",)


def test_files_in_task_root_are_unlabelled() -> None:
    p = place("x.jpg", MC, None)
    assert p.label is None and p.labels == () and p.problems == ()


def test_unlabeled_folder_is_unlabelled_at_any_depth() -> None:
    for path in (f"{UNLABELED_DIR}/x.jpg", f"{UNLABELED_DIR}/cat/x.jpg"):
        for b in (MC, ML):
            p = place(path, b, None)
            assert p.label is None and p.labels == () and p.problems == ()


def test_dot_and_underscore_folders_are_never_labels() -> None:
    for path in (".hidden/x.jpg", "_drafts/x.jpg", "__pycache__/x.jpg", "_/x.jpg"):
        assert place(path, MC, None).labels == ()
        assert label_for_folder(path.split("/")[0]) is None


def test_label_inside_nested_task_root() -> None:
    b = binding("multi_class", "data/animals", 4)
    assert place("data/animals/dog/a/x.jpg", b, None).labels == ("dog",)
    assert place("data/animals/x.jpg", b, None).labels == ()
    assert folder_label("data/animals/dog/x.jpg", b) == "dog"


def test_place_outside_the_root_is_an_error() -> None:
    with pytest.raises(ValueError):
        place("other/x.jpg", binding("multi_class", "data"), None)


def test_place_without_task() -> None:
    p = place("x/y.jpg", None, SidecarRow("x/y.jpg", "x/metadata.jsonl", meta_data={"k": 1}))
    assert p == Placement(None, None, (), None, {"k": 1}, (), "x/y.jpg")


def test_nfd_folder_gives_nfc_label() -> None:
    nfd = unicodedata.normalize("NFD", "Épée")
    p = place(f"{nfd}/x.jpg", MC, None)
    assert p.label == "Épée"
    assert unicodedata.is_normalized("NFC", p.label)


def test_case_differing_folders_are_different_labels() -> None:
    # Never merged: the scanner reports them through case_twins.
    assert place("Dog/x.jpg", MC, None).label == "Dog"
    assert place("dog/x.jpg", MC, None).label == "dog"


# --------------------------------------------------------------------------- place: properties


@given(st.sampled_from(TASK_TYPES), roots, folder_names, sub_paths, image_names)
def test_folders_starting_with_dot_or_underscore_are_never_labels(
    kind: TaskType, root: str, first: str, sub: list[str], image: str
) -> None:
    b = binding(kind, root)
    row = SidecarRow(join(root, first, *sub, image), "m", value=1.0)
    p = place(join(root, first, *sub, image), b, row)
    for lab in (*p.labels, *([p.label] if p.label else [])):
        assert unicodedata.is_normalized("NFC", lab)
        assert folder_for_label(lab) == nfc(first)  # the folder it came from, exactly
    if first[0] in "._":
        assert p.label is None and p.labels == ()


@given(st.sampled_from(TASK_TYPES), roots, label_names, sub_paths, image_names)
def test_nfc_and_nfd_spellings_give_the_same_label(
    kind: TaskType, root: str, first: str, sub: list[str], image: str
) -> None:
    b = binding(kind, root)
    labels = set()
    for form in ("NFC", "NFD"):
        spelled = unicodedata.normalize(form, first)
        labels.add(place(join(root, spelled, *sub, image), b, None).label)
    assert labels == {nfc(first)}


@given(st.sampled_from(TASK_TYPES), roots, label_names, sub_paths, sub_paths, image_names)
def test_depth_does_not_matter(
    kind: TaskType, root: str, first: str, sub1: list[str], sub2: list[str], image: str
) -> None:
    b = binding(kind, root)
    a = place(join(root, first, *sub1, image), b, SidecarRow("", "m", value=2.0))
    c = place(join(root, first, *sub2, image), b, SidecarRow("", "m", value=2.0))
    assert (a.label, a.labels, a.value) == (c.label, c.labels, c.value)
    assert a.label == nfc(first)


@given(roots, label_names, label_names, sub_paths, image_names)
def test_moving_between_label_folders_changes_only_the_label(
    root: str, old: str, new: str, sub: list[str], image: str
) -> None:
    for kind in TASK_TYPES:
        b = binding(kind, root)
        row = SidecarRow("", "m", value=5.0, meta_data={"k": "v"})
        before = place(join(root, old, *sub, image), b, row)
        after = place(join(root, new, *sub, image), b, row)
        assert before.label == nfc(old) and after.label == nfc(new)
        assert before.labels == (nfc(old),) and after.labels == (nfc(new),)
        assert (before.task_id, before.value, before.meta_data, before.problems) == (
            after.task_id,
            after.value,
            after.meta_data,
            after.problems,
        )


@given(st.sampled_from(TASK_TYPES), roots, sub_paths, image_names)
def test_root_and_unlabeled_files_are_unlabelled(
    kind: TaskType, root: str, sub: list[str], image: str
) -> None:
    b = binding(kind, root)
    for path in (join(root, image), join(root, UNLABELED_DIR, *sub, image)):
        p = place(path, b, None)
        assert p.label is None and p.labels == () and p.problems == ()
