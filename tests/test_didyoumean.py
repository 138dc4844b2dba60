"""didyoumean.py (pure): an unknown name reads the same for every option that names a
task: the option, the name, where it was looked for, the close names, every name, exit 2."""

from __future__ import annotations

import pytest

from localrepo.didyoumean import MAX_LISTED, check_name, close_to, unknown_name
from localrepo.errors import EXIT_USAGE, LocalrepoError


def test_close_names_best_first_same_name_in_another_case_first() -> None:
    assert close_to("pest", ["birds", "pets", "pests"]) == ["pests", "pets"]
    assert close_to("Pets", ["pets", "pots"])[0] == "pets"
    assert close_to("zzz", ["pets", "birds"]) == []
    assert len(close_to("a", ["a1", "a2", "a3", "a4", "a5"])) <= 3


def test_unknown_name_says_everything_and_is_a_usage_error() -> None:
    err = unknown_name("--task", "pest", ["pets", "birds"], where="in this repository")
    assert str(err) == (
        "--task: no task 'pest' in this repository; did you mean 'pets'? (tasks: birds, pets)"
    )
    assert err.exit_code == EXIT_USAGE
    none = unknown_name("--remote-task", "x", [], where="on http://h/")
    assert str(none) == "--remote-task: no task 'x' on http://h/ (there are no tasks)"
    many = unknown_name("--task", "zz", [f"t{i:03}" for i in range(MAX_LISTED + 5)])
    assert "and 5 more)" in str(many)


def test_check_name() -> None:
    assert check_name("--task", "pets", ["pets"]) == "pets"
    with pytest.raises(LocalrepoError, match="did you mean 'pets'") as err:
        check_name("--task", "pet", ["pets"])
    assert err.value.exit_code == EXIT_USAGE
