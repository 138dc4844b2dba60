"""Layout rules (design section 2): task roots, label folders, placements, merging."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localrepo.labelnames import folder_for_label, folder_verdict
from localrepo.layout import (
    IMAGE_EXTENSIONS,
    UNLABELED_DIR,
    Placement,
    TaskBinding,
    case_twins,
    folder_label,
    is_image_name,
    label_for_folder,
    merge_image_labels,
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


# --------------------------------------------------------------------------- place: sidecars


def test_multi_class_sidecar_agreeing_label_is_fine() -> None:
    row = SidecarRow("cat/x.jpg", "metadata.jsonl", label="cat", meta_data={"src": "web"})
    p = place("cat/x.jpg", MC, row)
    assert p.labels == ("cat",) and p.problems == () and p.meta_data == {"src": "web"}


def test_multi_class_sidecar_disagreeing_label_the_folder_decides() -> None:
    row = SidecarRow("cat/x.jpg", "metadata.jsonl", label="dog")
    p = place("cat/x.jpg", MC, row)
    assert p.labels == ("cat",)
    assert len(p.problems) == 1
    assert "cat/x.jpg" in p.problems[0] and "'dog'" in p.problems[0]
    assert "folder decides" in p.problems[0]


def test_multi_class_sidecar_label_does_not_label_a_root_file() -> None:
    row = SidecarRow("x.jpg", "metadata.jsonl", label="dog")
    p = place("x.jpg", MC, row)
    assert p.labels == () and p.label is None
    assert len(p.problems) == 1 and "x.jpg" in p.problems[0]


def test_multi_class_sidecar_label_compared_in_nfc() -> None:
    row = SidecarRow("Café/x.jpg", "metadata.jsonl", label=unicodedata.normalize("NFD", "Café"))
    assert place("Café/x.jpg", MC, row).problems == ()


def test_multi_class_sidecar_labels_list_disagreeing() -> None:
    row = SidecarRow("cat/x.jpg", "metadata.jsonl", labels=("cat", "dog"))
    p = place("cat/x.jpg", MC, row)
    assert p.labels == ("cat",) and len(p.problems) == 1


def test_multi_class_ignores_value() -> None:
    p = place("cat/x.jpg", MC, SidecarRow("cat/x.jpg", "metadata.jsonl", value=2.0))
    assert p.value is None and p.labels == ("cat",) and p.problems == ()


def test_multi_label_folder_tag() -> None:
    p = place("outdoor/x.jpg", ML, None)
    assert p.labels == ("outdoor",) and p.label == "outdoor"


def test_multi_label_sidecar_labels_override_folder() -> None:
    row = SidecarRow("outdoor/x.jpg", "metadata.jsonl", labels=("sunny", "beach", "sunny"))
    p = place("outdoor/x.jpg", ML, row)
    assert p.labels == ("sunny", "beach")
    assert p.label == "outdoor"
    assert p.problems == ()


def test_multi_label_sidecar_empty_labels_clear_the_folder_tag() -> None:
    row = SidecarRow("outdoor/x.jpg", "metadata.jsonl", labels=())
    assert place("outdoor/x.jpg", ML, row).labels == ()


def test_multi_label_sidecar_labels_label_a_root_file() -> None:
    row = SidecarRow("x.jpg", "metadata.jsonl", labels=("a", "b"))
    assert place("x.jpg", ML, row).labels == ("a", "b")


def test_multi_label_sidecar_invalid_label_names_are_reported() -> None:
    # No folder can stand for these: empty, too long, a lone surrogate.
    row = SidecarRow("x.jpg", "metadata.jsonl", labels=("ok", "", "x" * 300, "\ud800"))
    p = place("x.jpg", ML, row)
    assert p.labels == ("ok",)
    assert len(p.problems) == 3 and all("x.jpg" in m for m in p.problems)


def test_multi_label_sidecar_tags_with_escaped_folders_are_labels() -> None:
    # A folder holds them escaped (labelnames.py): '%5Fx', '%2Ex', 'a%2Fb'.
    row = SidecarRow("x.jpg", "metadata.jsonl", labels=("_x", ".x", "a/b"))
    p = place("x.jpg", ML, row)
    assert p.labels == ("_x", ".x", "a/b") and not p.problems


def test_multi_label_sidecar_labels_are_nfc() -> None:
    row = SidecarRow("x.jpg", "metadata.jsonl", labels=(unicodedata.normalize("NFD", "naïve"),))
    assert place("x.jpg", ML, row).labels == ("naïve",)


def test_multi_label_sidecar_single_label_disagreeing() -> None:
    row = SidecarRow("a/x.jpg", "metadata.jsonl", label="b")
    p = place("a/x.jpg", ML, row)
    assert p.labels == ("a",) and len(p.problems) == 1


def test_regression_value_from_sidecar() -> None:
    row = SidecarRow("age/x.jpg", "metadata.csv", value=42.5)
    p = place("age/x.jpg", RG, row)
    assert (p.label, p.labels, p.value, p.problems) == ("age", ("age",), 42.5, ())


def test_regression_value_deep_in_label_folder() -> None:
    row = SidecarRow("age/2020/x.jpg", "age/metadata.csv", value=3.0)
    assert place("age/2020/x.jpg", RG, row).labels == ("age",)


def test_regression_without_value_is_reported_not_linked() -> None:
    for row in (None, SidecarRow("age/x.jpg", "metadata.csv", meta_data={"a": 1})):
        p = place("age/x.jpg", RG, row)
        assert p.labels == () and p.label == "age" and p.value is None
        assert len(p.problems) == 1 and "age/x.jpg" in p.problems[0]
        assert "no value" in p.problems[0]


def test_regression_zero_is_a_value() -> None:
    p = place("age/x.jpg", RG, SidecarRow("age/x.jpg", "metadata.csv", value=0.0))
    assert p.labels == ("age",) and p.value == 0.0


def test_regression_unlabelled_files() -> None:
    assert place("x.jpg", RG, None).problems == ()
    p = place(f"{UNLABELED_DIR}/x.jpg", RG, SidecarRow("_unlabeled/x.jpg", "m", value=1.0))
    assert p.labels == () and len(p.problems) == 1


def test_regression_non_finite_value_in_row_is_reported() -> None:
    p = place("age/x.jpg", RG, SidecarRow("age/x.jpg", "metadata.csv", value=math.nan))
    assert p.labels == () and p.value is None
    assert any("finite" in m for m in p.problems)


def test_placement_meta_data_is_a_copy() -> None:
    row = SidecarRow("cat/x.jpg", "metadata.jsonl", meta_data={"k": 1})
    p = place("cat/x.jpg", MC, row)
    p.meta_data["k"] = 2
    assert row.meta_data == {"k": 1}


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


# --------------------------------------------------------------------------- merge


def pl(*labels: str, value: float | None = None, path: str = "") -> Placement:
    return Placement(1, labels[0] if labels else None, labels, value, {}, (), path)


def test_merge_multi_class_single_label() -> None:
    assert merge_image_labels("multi_class", [pl("cat"), pl("cat"), pl()]) == ({"cat": None}, [])


def test_merge_multi_class_conflicting_copies_link_nothing() -> None:
    labels, problems = merge_image_labels(
        "multi_class", [pl("cat", path="cat/x.jpg"), pl("dog", path="dog/x.jpg")]
    )
    assert labels == {}
    assert len(problems) == 1
    assert "'cat'" in problems[0] and "'dog'" in problems[0]
    assert "cat/x.jpg" in problems[0] and "dog/x.jpg" in problems[0]


def test_merge_unlabelled_only() -> None:
    for kind in TASK_TYPES:
        assert merge_image_labels(kind, [pl(), pl()]) == ({}, [])
        assert merge_image_labels(kind, []) == ({}, [])


def test_merge_multi_label_union() -> None:
    labels, problems = merge_image_labels("multi_label", [pl("a"), pl("b", "c"), pl("a"), pl()])
    assert labels == {"a": None, "b": None, "c": None} and problems == []


def test_merge_regression() -> None:
    labels, problems = merge_image_labels(
        "regression", [pl("age", value=3.0), pl("age", value=3.0), pl("height", value=1.5)]
    )
    assert labels == {"age": 3.0, "height": 1.5} and problems == []


def test_merge_regression_conflict_not_linked() -> None:
    labels, problems = merge_image_labels(
        "regression",
        [pl("age", value=3.0, path="age/a.jpg"), pl("age", value=4.0, path="age/b.jpg"),
         pl("height", value=1.0)],
    )  # fmt: skip
    assert labels == {"height": 1.0}
    assert len(problems) == 1 and "'age'" in problems[0] and "age/a.jpg" in problems[0]


def test_merge_rejects_several_tasks() -> None:
    a = Placement(1, "a", ("a",), None, {}, ())
    b = Placement(2, "a", ("a",), None, {}, ())
    with pytest.raises(ValueError):
        merge_image_labels("multi_label", [a, b])


def test_merge_from_placements() -> None:
    # Two hard links of one image in two tag folders carry both tags; removing one
    # copy (dropping its placement) removes that tag.
    copies = [place("sunny/x.jpg", ML, None), place("beach/x.jpg", ML, None)]
    assert set(merge_image_labels("multi_label", copies)[0]) == {"sunny", "beach"}
    assert set(merge_image_labels("multi_label", copies[:1])[0]) == {"sunny"}


tag_sets = st.lists(st.frozensets(st.sampled_from("abcdef"), max_size=4), max_size=6)


@given(tag_sets)
def test_merge_multi_label_is_the_union_property(sets: list[frozenset[str]]) -> None:
    placements = [pl(*sorted(s)) for s in sets]
    labels, problems = merge_image_labels("multi_label", placements)
    assert set(labels) == set().union(*sets)
    assert all(v is None for v in labels.values()) and problems == []


@given(st.lists(st.sampled_from(["", "a", "b", "c"]), max_size=6))
def test_merge_multi_class_property(folders: list[str]) -> None:
    placements = [pl(f) if f else pl() for f in folders]
    labels, problems = merge_image_labels("multi_class", placements)
    distinct = {f for f in folders if f}
    if len(distinct) <= 1:
        assert set(labels) == distinct and problems == []
    else:
        assert labels == {} and len(problems) == 1


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([1.0, 2.0, None])), max_size=6)
)
def test_merge_regression_property(copies: list[tuple[str, float | None]]) -> None:
    placements = [pl(lab, value=v) if v is not None else pl() for lab, v in copies]
    labels, problems = merge_image_labels("regression", placements)
    for lab in ("a", "b"):
        vals = {v for la, v in copies if la == lab and v is not None}
        if len(vals) == 1:
            assert labels[lab] == next(iter(vals))
        else:
            assert lab not in labels
    assert len(problems) == sum(
        1 for lab in ("a", "b") if len({v for la, v in copies if la == lab and v}) > 1
    )


# --------------------------------------------------------------------------- case twins


def test_case_twins_examples() -> None:
    assert case_twins(["Dog", "dog", "cat", "DOG", "Cat", "bird"]) == [
        ("Cat", "cat"),
        ("DOG", "Dog", "dog"),
    ]
    assert case_twins(["a", "b"]) == []
    assert case_twins([]) == []
    assert case_twins(["dog", "dog"]) == []


def test_case_twins_unicode() -> None:
    assert case_twins(["Straße", "STRASSE", "strasse"]) == [("STRASSE", "Straße", "strasse")]
    # NFC and NFD spellings are the same name (one label), not twins.
    assert case_twins(["Café", unicodedata.normalize("NFD", "Café")]) == []
    assert case_twins(["Café", unicodedata.normalize("NFD", "CAFÉ")]) == [("CAFÉ", "Café")]


@settings(max_examples=200)
@given(st.lists(st.text(st.sampled_from("aAbBßSsÉéE\u0301"), min_size=1, max_size=3)))
def test_case_twins_are_the_casefold_classes(names: list[str]) -> None:
    groups = case_twins(names)
    distinct = {nfc(n) for n in names}
    # Exactly the classes of size >= 2 under (NFC) casefold equality.
    key = lambda n: nfc(nfc(n).casefold())  # noqa: E731
    classes: dict[str, set[str]] = {}
    for n in distinct:
        classes.setdefault(key(n), set()).add(n)
    expected = sorted(tuple(sorted(c)) for c in classes.values() if len(c) >= 2)
    assert groups == expected
    assert groups == sorted(groups)
    seen = [n for g in groups for n in g]
    assert len(seen) == len(set(seen))
    assert case_twins(reversed(names)) == groups
