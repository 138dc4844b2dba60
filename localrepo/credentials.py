"""API tokens: where they come from, and the per-user credentials file.

Resolution order (`resolve_token`): the ``--token`` argument, then the
``LOCALREPO_TOKEN`` environment variable, then the credentials file
``<user config dir>/localrepo/credentials.toml`` (``LOCALREPO_CONFIG_DIR`` overrides the
folder), keyed by the remote's normalised base URL::

    [remote."https://api.ximilar.com/"]
    token = "..."

The file is written atomically with mode 0600 in a 0700 folder. Tokens are never
logged and never part of an error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from localrepo.errors import EXIT_AUTH, EXIT_USAGE, LocalrepoError

log = logging.getLogger("localrepo.credentials")

ENV_TOKEN = "LOCALREPO_TOKEN"
ENV_CONFIG_DIR = "LOCALREPO_CONFIG_DIR"
FILE_NAME = "credentials.toml"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class MissingTokenError(LocalrepoError):
    exit_code = EXIT_AUTH


def normalise_url(url: str) -> str:
    """The key of a remote: lower-case scheme and host, the port unless it is the
    scheme's default, the path with one trailing slash; no user-info, query or
    fragment. ``api.example.com`` means ``https://api.example.com/``, ``localhost:8000``
    ``http://localhost:8000/`` (`localrepo.remote.urls.with_scheme`)."""
    from localrepo.remote.urls import with_scheme

    parts = urlsplit(with_scheme(url)[0])
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((scheme, netloc, path, "", ""))


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_config_path("localrepo")


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def _fix_mode(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current != mode:
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LocalrepoError(f"{path}: cannot read the credentials file ({exc.strerror}).") from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
        _fix_mode(path, 0o600)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The parser's message may quote a line of the file, which may hold a token.
        raise LocalrepoError(
            f"{path}: the credentials file is not valid TOML; fix or delete it "
            f"({type(exc).__name__})."
        ) from None


def _remotes(data: Mapping[str, Any]) -> dict[str, Any]:
    remotes = data.get("remote")
    return dict(remotes) if isinstance(remotes, Mapping) else {}


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise writers of the credentials file (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder / (FILE_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, data: Mapping[str, Any]) -> None:
    import tomli_w

    text = (
        "# localrepo API tokens, one table per remote base URL. Keep this file private.\n"
        + tomli_w.dumps(dict(data))
    )
    tmp = path.parent / f".{FILE_NAME}.{secrets.token_hex(8)}.tmp"
    # Created 0600 from the start: the token is never in a file others may read.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case the umask was odd
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fix_mode(path, 0o600)


def _prepare_folder() -> Path:
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _fix_mode(folder, 0o700)
    return folder


def load_token(url: str) -> str | None:
    """The stored token for this remote, or None."""
    entry = _remotes(_read(credentials_path())).get(normalise_url(url))
    if isinstance(entry, Mapping):
        token = entry.get("token")
        if isinstance(token, str) and token.strip():
            return token.strip()
    return None


def save_token(url: str, token: str) -> Path:
    """Store `token` for this remote (replacing any other); returns the file's path."""
    token = token.strip()
    if not token:
        raise LocalrepoError("Refusing to store an empty token.", exit_code=EXIT_USAGE)
    key = normalise_url(url)
    folder = _prepare_folder()
    path = folder / FILE_NAME
    with _locked(folder):
        data = _read(path)
        remotes = _remotes(data)
        remotes[key] = {"token": token}
        data["remote"] = remotes
        _write(path, data)
    log.info("stored the token for %s in %s", key, path)
    return path


def resolve_token(
    url: str, token: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    """The token to use for this remote: `token` (``--token``), else
    ``LOCALREPO_TOKEN``, else the credentials file. Raises `MissingTokenError` (exit 4)
    saying how to provide one."""
    if token is not None and token.strip():
        return token.strip()
    env = os.environ if environ is None else environ
    from_env = env.get(ENV_TOKEN, "")
    if from_env.strip():
        return from_env.strip()
    stored = load_token(url)
    if stored:
        return stored
    raise MissingTokenError(
        f"No API token for {normalise_url(url)}. Give one with --token, set "
        f"{ENV_TOKEN}, or store one with `repo login` (saved in {credentials_path()})."
    )
