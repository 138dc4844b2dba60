"""Alembic environment for the localrepo catalog (SQLite, batch mode for ALTERs)."""

from __future__ import annotations

from pathlib import Path

from alembic import context
from sqlmodel import SQLModel

import localrepo.catalog.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from localrepo.catalog.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    url = config.get_main_option("sqlalchemy.url") or ""
    path = Path(config.attributes.get("catalog_path") or url.removeprefix("sqlite:///"))
    engine = make_engine(path)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
