"""Fixtures of the sync scenario tests (helpers live in tests/support/synchelp.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.synchelp import World


@pytest.fixture
def world(account, tmp_path: Path) -> Iterator[World]:
    """A fresh account on the shared live server, and a folder for its clones."""
    w = World(account.url, account.token, tmp_path)
    yield w
    w.remote.close()
