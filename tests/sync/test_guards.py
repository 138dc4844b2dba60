"""The mass-delete guard's ends outside the planner (localrepo.sync.guards): the limit a
user writes, parsed, and the files a stop names."""

from __future__ import annotations

import pytest

from localrepo.errors import LocalrepoError
from localrepo.sync import plan as P
from localrepo.sync.guards import parse_max_delete, stop_paths


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50", (50, None)),
        ("0", (0, None)),
        (" 7 ", (7, None)),
        ("10%", (None, 0.10)),
        ("0%", (None, 0.0)),
        ("100%", (None, 1.0)),
        ("12.5%", (None, 0.125)),
    ],
)
def test_a_count_or_a_percentage_is_accepted(text: str, expected: tuple) -> None:
    count, fraction = parse_max_delete(text)
    assert count == expected[0]
    if expected[1] is None:
        assert fraction is None
    else:
        assert fraction == pytest.approx(expected[1])


@pytest.mark.parametrize("text", ["-1", "abc", "150%", "-5%", "%", "", "2.5", "ten%", "50 %x"])
def test_anything_else_is_refused_with_the_option_named(text: str) -> None:
    with pytest.raises(LocalrepoError) as info:
        parse_max_delete(text)
    message = str(info.value)
    assert message.startswith("--max-delete: ")
    assert repr(text) in message
    assert "percentage" in message


def _stop(*keys: str) -> P.SafetyStop:
    return P.SafetyStop("mass_delete", "remote", len(keys), 0, "stopped", keys)


def test_a_stop_names_a_file_here_before_the_last_seen_path() -> None:
    files = {"k1": ["dog/b.jpg", "dog/a.jpg"], "k2": ["cat/c.jpg"]}
    last_seen = {"k1": "old/place.jpg", "k3": "gone/d.jpg"}
    paths = stop_paths(_stop("k1", "k2", "k3"), files, last_seen)
    # k1: its first file here (not the journal's old path); k3: only the journal knows it.
    assert paths == ["cat/c.jpg", "dog/b.jpg", "gone/d.jpg"]


def test_an_image_known_nowhere_is_named_by_its_key_and_the_list_is_sorted() -> None:
    paths = stop_paths(_stop("zz", "aa"), {"zz": []}, {})
    assert paths == ["aa", "zz"]


def test_an_image_with_no_files_left_takes_its_last_seen_path() -> None:
    assert stop_paths(_stop("k"), {"k": []}, {"k": "dog/x.jpg"}) == ["dog/x.jpg"]
