"""Fixtures of the server's data-layer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localrepo.server.data.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty server database, once on a SQLite file and once on the throwaway
    PostgreSQL cluster (a test module may define its own `db` instead)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = str(request.getfixturevalue("postgres").new_database())
    database = Database(url)
    database.create_all()
    yield database
    database.dispose()
