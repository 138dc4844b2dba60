"""Fixtures of the watcher tests: the REAL daemon process (`repo daemon start`) against
the real localrepo-server. Helpers live in watchhelp.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.synchelp import Clone, World


@pytest.fixture
def world(account, tmp_path: Path) -> Iterator[World]:
    """A fresh account on the shared live server, and a folder for its clones."""
    w = World(account.url, account.token, tmp_path)
    yield w
    w.remote.close()


@pytest.fixture
def repo(world: World) -> Clone:
    """A repository of one multi_class task with one image, cats/seed.jpg, not synced yet."""
    clone = world.init("photos", "animals")
    clone.write("cats/seed.jpg", 1)
    return clone
