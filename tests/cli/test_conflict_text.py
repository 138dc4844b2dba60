"""How a conflict's sides read (issue 18, item 4): labels, tags, and values, never a
list of label names where a value was in conflict."""

from __future__ import annotations

from localrepo.cli.report import labels_text


def test_a_category_side_is_its_label() -> None:
    assert labels_text({"cat": None}) == "cat"


def test_tags_are_listed_in_order() -> None:
    assert labels_text({"dog": None, "cat": None}) == "cat, dog"


def test_a_regression_side_shows_its_value() -> None:
    assert labels_text({"price": 20.0}) == "price=20"
    assert labels_text({"price": 2.5}) == "price=2.5"
    assert labels_text({"price": 0.0}) == "price=0"


def test_no_label_says_so() -> None:
    assert labels_text({}) == "(none)"
