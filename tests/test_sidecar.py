"""Sidecars: metadata.jsonl / metadata.csv parsing and resolution (localrepo/sidecars.py,
design section 2)."""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localrepo.labelnames import nfc
from localrepo.sidecars import SidecarRow, parse_sidecar, resolve_sidecars, sidecar_for

# --------------------------------------------------------------------------- jsonl


def test_jsonl_basic_row() -> None:
    text = (
        '{"file_name": "x.jpg", "label": "cat", "labels": ["a", "b"], "value": 3,'
        ' "source": "web", "score": 0.5, "tags": {"k": [1, 2]}}\n'
    )
    rows, problems = parse_sidecar("animals", "metadata.jsonl", text)
    assert problems == []
    assert rows == [
        SidecarRow(
            path="animals/x.jpg",
            source="animals/metadata.jsonl",
            label="cat",
            labels=("a", "b"),
            value=3.0,
            meta_data={"source": "web", "score": 0.5, "tags": {"k": [1, 2]}},
        )
    ]
    assert isinstance(rows[0].value, float)


def test_jsonl_at_repository_root_and_subfolder_file_names() -> None:
    text = '{"file_name": "cat/x.jpg"}\n{"file_name": "./dog//y.jpg"}\n'
    rows, problems = parse_sidecar("", "metadata.jsonl", text)
    assert problems == []
    assert [(r.path, r.source) for r in rows] == [
        ("cat/x.jpg", "metadata.jsonl"),
        ("dog/y.jpg", "metadata.jsonl"),
    ]


def test_jsonl_blank_lines_crlf_and_bom_are_fine() -> None:
    text = '\ufeff{"file_name": "a.jpg"}\r\n\r\n   \n{"file_name": "b.jpg"}'
    rows, problems = parse_sidecar("f", "metadata.jsonl", text)
    assert problems == [] and [r.path for r in rows] == ["f/a.jpg", "f/b.jpg"]


def test_jsonl_unicode_line_separator_inside_a_string() -> None:
    text = json.dumps({"file_name": "a.jpg", "note": "x\u2028y"}, ensure_ascii=False) + "\n"
    rows, problems = parse_sidecar("", "metadata.jsonl", text)
    assert problems == [] and rows[0].meta_data == {"note": "x\u2028y"}


def test_jsonl_errors_name_file_and_line_and_keep_good_rows() -> None:
    text = "\n".join(
        [
            '{"file_name": "ok1.jpg", "value": 1}',  # 1
            "{not json",  # 2
            "[1, 2]",  # 3
            '{"label": "cat"}',  # 4: missing file_name
            '{"file_name": "/etc/passwd"}',  # 5
            '{"file_name": "../up.jpg"}',  # 6
            '{"file_name": "a/../../up.jpg"}',  # 7
            '{"file_name": "v.jpg", "value": NaN}',  # 8
            '{"file_name": "v.jpg", "value": Infinity}',  # 9
            '{"file_name": "v.jpg", "value": "heavy"}',  # 10
            '{"file_name": "v.jpg", "value": true}',  # 11
            '{"file_name": "v.jpg", "labels": [1]}',  # 12
            '{"file_name": "v.jpg", "label": 3}',  # 13
            '{"file_name": 5}',  # 14
            '{"file_name": "ok2.jpg", "value": "2.5"}',  # 15
        ]
    )
    rows, problems = parse_sidecar("d", "metadata.jsonl", text)
    assert [(r.path, r.value) for r in rows] == [("d/ok1.jpg", 1.0), ("d/ok2.jpg", 2.5)]
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == list(range(2, 15))
    assert all(p.startswith("d/metadata.jsonl:") for p in problems)
    by_line = dict(zip(lines, problems, strict=True))
    assert "file_name" in by_line[4]
    for n in (8, 9, 10, 11):
        assert "'value'" in by_line[n]
    assert "finite" in by_line[8] and "finite" in by_line[9]
    assert "'labels'" in by_line[12] and "'label'" in by_line[13]


def test_jsonl_labels_as_string_is_split() -> None:
    rows, _ = parse_sidecar("", "metadata.jsonl", '{"file_name": "a.jpg", "labels": "x; y;"}')
    assert rows[0].labels == ("x", "y")


def test_jsonl_null_and_empty_fields_are_absent() -> None:
    text = '{"file_name": "a.jpg", "label": null, "labels": null, "value": null}\n'
    text += '{"file_name": "b.jpg", "label": "", "labels": [], "value": ""}\n'
    rows, problems = parse_sidecar("", "metadata.jsonl", text)
    assert problems == []
    assert (rows[0].label, rows[0].labels, rows[0].value) == (None, None, None)
    # An empty list is an explicit "no tags" (it overrides the folder in multi_label).
    assert (rows[1].label, rows[1].labels, rows[1].value) == (None, (), None)


def test_label_names_are_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Crème")
    text = json.dumps({"file_name": f"{nfd}.jpg", "label": nfd, "labels": [nfd]})
    rows, _ = parse_sidecar(nfd, "metadata.jsonl", text)
    assert rows[0].label == "Crème" and rows[0].labels == ("Crème",)
    assert rows[0].path == "Crème/Crème.jpg"


def test_duplicate_file_name_later_row_wins() -> None:
    text = '{"file_name": "a.jpg", "value": 1}\n{"file_name": "./a.jpg", "value": 2}\n'
    rows, problems = parse_sidecar("", "metadata.jsonl", text)
    assert [r.value for r in rows] == [2.0]
    assert len(problems) == 1 and "metadata.jsonl:2" in problems[0]


def test_unknown_sidecar_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_sidecar("", "labels.json", "{}")


# --------------------------------------------------------------------------- csv


def test_csv_basic_row() -> None:
    text = "file_name,label,labels,value,source\nx.jpg,cat,a;b,1.5,web\n"
    rows, problems = parse_sidecar("animals", "metadata.csv", text)
    assert problems == []
    assert rows == [
        SidecarRow(
            "animals/x.jpg", "animals/metadata.csv", "cat", ("a", "b"), 1.5, {"source": "web"}
        )
    ]


def test_csv_empty_cells_mean_absent() -> None:
    text = "file_name,label,labels,value,note\na.jpg,,,,\n"
    rows, problems = parse_sidecar("", "metadata.csv", text)
    assert problems == []
    assert rows == [SidecarRow("a.jpg", "metadata.csv")]


def test_csv_short_rows_are_padded_and_long_rows_rejected() -> None:
    text = "file_name,value,note\na.jpg\nb.jpg,2,x,extra\n"
    rows, problems = parse_sidecar("", "metadata.csv", text)
    assert [r.path for r in rows] == ["a.jpg"]
    assert len(problems) == 1 and problems[0].startswith("metadata.csv:3:")


def test_csv_only_header_and_empty_file() -> None:
    assert parse_sidecar("", "metadata.csv", "file_name,label\n") == ([], [])
    assert parse_sidecar("", "metadata.csv", "") == ([], [])


def test_csv_without_file_name_column() -> None:
    rows, problems = parse_sidecar("f", "metadata.csv", "name,label\na.jpg,cat\n")
    assert rows == [] and len(problems) == 1
    assert problems[0].startswith("f/metadata.csv:1:") and "file_name" in problems[0]


def test_csv_duplicate_header_columns() -> None:
    rows, problems = parse_sidecar("", "metadata.csv", "file_name,a,a\nx.jpg,1,2\n")
    assert rows == [] and len(problems) == 1


def test_csv_errors_name_line_and_field() -> None:
    text = (
        "file_name,value\n"  # 1
        "good.jpg,1e3\n"  # 2
        "\n"  # 3 blank
        "bad.jpg,nan\n"  # 4
        "bad2.jpg,inf\n"  # 5
        "bad3.jpg,-Infinity\n"  # 6
        "bad4.jpg,twelve\n"  # 7
        '"multi\nline.jpg",2\n'  # 8-9
        "../esc.jpg,1\n"  # 10
        ",3\n"  # 11 missing file_name
        "C:/abs.jpg,1\n"  # 12
    )
    rows, problems = parse_sidecar("v", "metadata.csv", text)
    assert [(r.path, r.value) for r in rows] == [("v/good.jpg", 1000.0), ("v/multi\nline.jpg", 2.0)]
    assert [p.split(":")[1] for p in problems] == ["4", "5", "6", "7", "10", "11", "12"]
    assert all("'value'" in p for p in problems[:4])
    assert all("'file_name'" in p for p in problems[4:])


def test_csv_bom_and_crlf() -> None:
    text = "\ufefffile_name,label\r\na.jpg,cat\r\n"
    rows, problems = parse_sidecar("", "metadata.csv", text)
    assert problems == [] and rows == [SidecarRow("a.jpg", "metadata.csv", label="cat")]


def test_csv_labels_are_trimmed_and_empty_items_dropped() -> None:
    rows, _ = parse_sidecar("", "metadata.csv", 'file_name,labels\na.jpg," x ;; y ;"\n')
    assert rows[0].labels == ("x", "y")


# --------------------------------------------------------------------------- escapes


@pytest.mark.parametrize(
    "file_name",
    ["/abs.jpg", "\\abs.jpg", "C:\\x.jpg", "c:/x.jpg", "..", "../x.jpg", "a/../../x.jpg",
     "a/..", "a\\..\\..\\x.jpg", ".", "./", "", "   "],
)  # fmt: skip
def test_bad_file_names_are_rejected(file_name: str) -> None:
    for name, text in (
        ("metadata.jsonl", json.dumps({"file_name": file_name})),
        ("metadata.csv", _csv_text(["file_name", "v"], [{"file_name": file_name, "v": "1"}])),
    ):
        rows, problems = parse_sidecar("f", name, text)
        assert rows == [] and len(problems) == 1, (name, file_name, problems)
        assert problems[0].startswith(f"f/{name}:")


_segment = st.text(st.characters(codec="ascii", categories=("Ll", "Nd")), min_size=1, max_size=5)


@given(
    st.lists(st.one_of(_segment, st.just(".."), st.just("."), st.just("")), max_size=5),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
)
def test_escaping_file_names_are_always_rejected(parts: list[str], at: int, absolute: bool) -> None:
    parts = list(parts)
    parts.insert(min(at, len(parts)), "..")
    file_name = "/".join(parts)
    if absolute:
        file_name = "/" + file_name
    rows, problems = parse_sidecar("f", "metadata.jsonl", json.dumps({"file_name": file_name}))
    assert rows == [] and len(problems) == 1


@given(st.lists(st.one_of(_segment, st.just(".")), max_size=4), _segment)
def test_accepted_file_names_stay_inside_the_folder(dirs: list[str], name: str) -> None:
    file_name = "/".join([*dirs, name])
    rows, problems = parse_sidecar("base/f", "metadata.jsonl", json.dumps({"file_name": file_name}))
    assert problems == []
    assert rows[0].path.startswith("base/f/")
    assert ".." not in rows[0].path.split("/") and "." not in rows[0].path.split("/")


# --------------------------------------------------------------------------- round trip

# Clean label names: what parse returns unchanged (NFC, no surrounding space, no ";").
_label_chars = st.characters(
    codec="utf-8", categories=("Lu", "Ll", "Lo", "Nd"), include_characters="-_ .()"
)
clean_labels = (
    st.text(_label_chars, min_size=1, max_size=10)
    .map(lambda s: nfc(s).strip())
    .filter(lambda s: s != "" and ";" not in s)
)
file_names = st.lists(
    st.text(_label_chars, min_size=1, max_size=8)
    .map(nfc)
    .filter(lambda s: s.strip() not in ("", ".", "..")),
    min_size=1,
    max_size=3,
).map("/".join)
finite = st.floats(allow_nan=False, allow_infinity=False)
meta_keys = st.text(
    st.characters(codec="ascii", categories=("Ll",)), min_size=1, max_size=6
).filter(lambda k: k not in ("file_name", "label", "labels", "value"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def row_specs(draw: st.DrawFn, *, for_csv: bool) -> list[dict[str, Any]]:
    names = draw(st.lists(file_names, max_size=5, unique=True))
    specs = []
    for name in names:
        spec: dict[str, Any] = {"file_name": name}
        if draw(st.booleans()):
            spec["label"] = draw(clean_labels)
        if draw(st.booleans()):
            spec["labels"] = draw(st.lists(clean_labels, min_size=1 if for_csv else 0, max_size=3))
        if draw(st.booleans()):
            spec["value"] = draw(finite)
        meta_values = st.text(min_size=1, max_size=8).filter(str.strip) if for_csv else json_values
        spec.update(draw(st.dictionaries(meta_keys, meta_values, max_size=3)))
        specs.append(spec)
    return specs


def _expected(folder: str, name: str, spec: dict[str, Any]) -> SidecarRow:
    meta = {k: v for k, v in spec.items() if k not in ("file_name", "label", "labels", "value")}
    labels = spec.get("labels")
    return SidecarRow(
        path=f"{folder}/{spec['file_name']}" if folder else spec["file_name"],
        source=f"{folder}/{name}" if folder else name,
        label=spec.get("label"),
        labels=tuple(labels) if labels is not None else None,
        value=float(spec["value"]) if "value" in spec else None,
        meta_data=meta,
    )


def _csv_text(header: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, restval="")  # "\r\n": quotes \r and \n
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


@settings(max_examples=150)
@given(row_specs(for_csv=False), st.sampled_from(["", "a", "a/b"]))
def test_jsonl_round_trip(specs: list[dict[str, Any]], folder: str) -> None:
    text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in specs)
    rows, problems = parse_sidecar(folder, "metadata.jsonl", text)
    assert problems == []
    assert rows == [_expected(folder, "metadata.jsonl", s) for s in specs]


@settings(max_examples=150)
@given(row_specs(for_csv=True), st.sampled_from(["", "a", "a/b"]))
def test_csv_round_trip(specs: list[dict[str, Any]], folder: str) -> None:
    header = ["file_name", "label", "labels", "value"]
    header += sorted({k for s in specs for k in s} - set(header))
    cells = []
    for s in specs:
        row = dict(s)
        if "labels" in row:
            row["labels"] = ";".join(row["labels"])
        if "value" in row:
            row["value"] = repr(row["value"])
        cells.append(row)
    rows, problems = parse_sidecar(folder, "metadata.csv", _csv_text(header, cells))
    assert problems == []
    assert rows == [_expected(folder, "metadata.csv", s) for s in specs]


@given(st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.text(max_size=6)))
def test_non_finite_or_non_numeric_values_are_errors(raw: Any) -> None:
    if isinstance(raw, str):
        try:
            if raw.strip() == "" or math.isfinite(float(raw.strip())):
                return  # an empty or numeric text is a legitimate cell
        except ValueError:
            pass
    text = _csv_text(["file_name", "value"], [{"file_name": "x.jpg", "value": str(raw)}])
    rows, problems = parse_sidecar("", "metadata.csv", text)
    assert rows == [] and len(problems) == 1
    assert problems[0].startswith("metadata.csv:2:") and "'value'" in problems[0]


# --------------------------------------------------------------------------- resolve


def test_resolve_prefers_jsonl_over_csv() -> None:
    rows, problems = resolve_sidecars(
        {
            "cats": {
                "metadata.csv": "file_name,value\nx.jpg,1\n",
                "metadata.jsonl": '{"file_name": "x.jpg", "value": 2}\n',
            }
        }
    )
    assert rows["cats/x.jpg"].value == 2.0
    assert rows["cats/x.jpg"].source == "cats/metadata.jsonl"
    assert len(problems) == 1
    assert "cats/metadata.csv" in problems[0] and "cats/metadata.jsonl" in problems[0]


def test_resolve_deepest_folder_wins() -> None:
    rows, problems = resolve_sidecars(
        {
            "a/b": {"metadata.jsonl": '{"file_name": "x.jpg", "value": 3}\n'},
            "": {"metadata.csv": "file_name,value\na/b/x.jpg,1\na/y.jpg,5\n"},
            "a": {"metadata.jsonl": '{"file_name": "b/x.jpg", "value": 2}\n'},
        }
    )
    assert rows["a/b/x.jpg"].value == 3.0 and rows["a/b/x.jpg"].source == "a/b/metadata.jsonl"
    assert rows["a/y.jpg"].value == 5.0
    assert len(problems) == 2
    assert all("a/b/x.jpg" in p for p in problems)
    assert "a/b/metadata.jsonl" in problems[-1]


def test_resolve_collects_parse_errors_and_skips_other_names() -> None:
    rows, problems = resolve_sidecars(
        {
            "a": {"metadata.jsonl": '{"file_name": "x.jpg"}\n{oops\n'},
            "b": {"README.txt": "hello"},
        }
    )
    assert list(rows) == ["a/x.jpg"]
    assert len(problems) == 1 and problems[0].startswith("a/metadata.jsonl:2:")


def test_sidecar_for_looks_up_nfd_paths() -> None:
    nfd = unicodedata.normalize("NFD", "Crème/x.jpg")
    rows, _ = resolve_sidecars({"": {"metadata.jsonl": json.dumps({"file_name": nfd})}})
    assert list(rows) == ["Crème/x.jpg"]
    assert sidecar_for(rows, nfd) is rows["Crème/x.jpg"]
    assert sidecar_for(rows, "Crème/x.jpg") is rows["Crème/x.jpg"]
    assert sidecar_for(rows, "other.jpg") is None


@given(
    st.dictionaries(
        st.sampled_from(["", "a", "a/b", "a/b/c", "d"]),
        st.dictionaries(st.sampled_from(["x.jpg", "b/x.jpg", "b/c/x.jpg"]), finite, max_size=3),
        max_size=5,
    )
)
def test_resolve_deepest_wins_property(tree: dict[str, dict[str, float]]) -> None:
    files = {
        folder: {
            "metadata.jsonl": "".join(
                json.dumps({"file_name": n, "value": v}) + "\n" for n, v in entries.items()
            )
        }
        for folder, entries in tree.items()
    }
    rows, _ = resolve_sidecars(files)
    expected: dict[str, tuple[int, float]] = {}
    for folder, entries in tree.items():
        depth = 0 if folder == "" else folder.count("/") + 1
        for name, value in entries.items():
            path = f"{folder}/{name}" if folder else name
            if path not in expected or expected[path][0] < depth:
                expected[path] = (depth, value)
    assert {p: r.value for p, r in rows.items()} == {p: v for p, (_, v) in expected.items()}
