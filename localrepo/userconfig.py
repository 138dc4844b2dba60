"""The per-user settings file: the remote `repo login` remembered.

``<user config dir>/localrepo/config.toml`` (the folder of the credentials file,
credentials.py: ``LOCALREPO_CONFIG_DIR`` overrides it)::

    [remote]
    url = "http://localhost:8000/"

Commands run outside a repository (`repo tasks`, `repo labels --remote-task`, `repo
login`) use this remote when no ``--url`` is given; inside a repository, the
repository's remote wins (docs/remote.md, "Which remote"). Never a token here: tokens
live in the credentials file only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tomllib
from pathlib import Path

from localrepo.credentials import config_dir
from localrepo.errors import LocalrepoError

FILE_NAME = "config.toml"


def user_config_path() -> Path:
    return config_dir() / FILE_NAME


def load_default_remote() -> str | None:
    """The remote `repo login` remembered, or None."""
    path = user_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LocalrepoError(
            f"{path}: cannot read the user settings ({type(exc).__name__}); fix or delete it."
        ) from None
    remote = data.get("remote")
    url = remote.get("url") if isinstance(remote, dict) else None
    return url.strip() if isinstance(url, str) and url.strip() else None


def save_default_remote(url: str) -> Path:
    """Remember `url` as the remote for commands run outside a repository."""
    import tomli_w

    path = user_config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = (
        "# localrepo user settings: the remote of the last 'repo login', used outside a\n"
        "# repository. No secrets here (tokens are in credentials.toml).\n"
        + tomli_w.dumps({"remote": {"url": url}})
    )
    tmp = path.parent / f".{FILE_NAME}.{secrets.token_hex(8)}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
