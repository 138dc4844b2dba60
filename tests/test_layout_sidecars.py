"""Layout rules (design section 2), placements with sidecars: a sidecar row's labels and
value against the folder, for the three task types."""

from __future__ import annotations

import math
import unicodedata

from test_layout import MC, ML, RG

from localrepo.layout import UNLABELED_DIR, place
from localrepo.sidecars import SidecarRow

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
