"""Layout rules (design section 2), merging: the labels of an image's copies merged into
one, and case twins."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_layout import ML

from localrepo.layout import Placement, case_twins, merge_image_labels, nfc, place
from localrepo.vocabulary import TASK_TYPES

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
