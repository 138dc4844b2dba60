"""Alembic, run programmatically on the revisions shipped as `localrepo.migrations`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def migrations_dir() -> Path:
    """The Alembic scripts: `localrepo.migrations` in a wheel, `migrations/` in a checkout.

    A wheel maps the top-level migrations/ folder into the package. A development
    install that only puts the checkout on sys.path (fast to start: no import hook) has
    no such mapping, so the folder beside the package is used.
    """
    try:
        return Path(str(resources.files("localrepo.migrations")))
    except ModuleNotFoundError:
        here = Path(__file__).resolve().parents[2] / "migrations"
        if (here / "env.py").is_file():
            return here
        raise


def alembic_config(path: Path):  # -> alembic.config.Config
    from alembic.config import Config

    script_location = str(migrations_dir())
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    cfg.attributes["catalog_path"] = str(path)
    return cfg


def upgrade_to_head(path: Path) -> None:
    from alembic import command

    path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(path), "head")


def script_revisions() -> list[str]:
    """Every revision id in the shipped scripts, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(Path("unused.db")))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
