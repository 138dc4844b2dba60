"""connect.choose_remote (pure): --url, else the repository's remote inside one, else
the remote `repo login` remembered; none of them is a usage error saying what to do."""

from __future__ import annotations

import pytest

from localrepo.cli.connect import FROM_LOGIN, FROM_OPTION, FROM_REPOSITORY, choose_remote
from localrepo.errors import EXIT_USAGE, LocalrepoError

REPO = ("http://repo/", "ws1")


def test_the_typed_url_wins_then_the_repository_then_the_login() -> None:
    chosen = choose_remote("http://typed/", REPO, "http://login/")
    assert (chosen.url, chosen.workspace, chosen.source) == ("http://typed/", None, FROM_OPTION)
    chosen = choose_remote(None, REPO, "http://login/")
    assert (chosen.url, chosen.workspace, chosen.source) == ("http://repo/", "ws1", FROM_REPOSITORY)
    chosen = choose_remote(None, None, "http://login/")
    assert (chosen.url, chosen.workspace, chosen.source) == ("http://login/", None, FROM_LOGIN)


def test_a_repository_without_a_remote_does_not_fall_back_to_the_login() -> None:
    with pytest.raises(LocalrepoError, match="repo remote set URL") as err:
        choose_remote(None, (None, None), "http://login/")
    assert err.value.exit_code == EXIT_USAGE


def test_nothing_to_go_by_says_how_to_give_a_remote() -> None:
    with pytest.raises(LocalrepoError, match=r"--url URL.*repo login URL") as err:
        choose_remote(None, None, None)
    assert err.value.exit_code == EXIT_USAGE
