"""Pure: a remote URL as a user typed it, made usable or refused with a clear message.

``localhost:8000`` has no scheme; without one, a loopback host (``localhost``,
``127.x.y.z``, ``::1``) means ``http://`` (a local server rarely speaks TLS) and any other
host ``https://``. The caller says once that a scheme was added. No network, no imports
of httpx: the CLI and the credentials file use it too.

A password in a URL (``https://user:secret@host/``) is a token typed in the wrong
place: ``split_password`` takes it out (the CLI stores it in the credentials file and
keeps the URL without user-info), ``masked`` shows a URL with it as ``user:***@``.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from localrepo.errors import EXIT_USAGE, LocalrepoError

SCHEMES = ("http", "https")
_EXAMPLE = "http://localhost:8000/ or https://api.example.com/"


def is_loopback(host: str) -> bool:
    """`host` (no brackets) is this machine: ``localhost`` (and ``*.localhost``), an
    address in 127.0.0.0/8, or ``::1``."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(text: str, why: str) -> LocalrepoError:
    shown = re.sub(r"^([^/@]*//)?[^/@]*@", r"\1***@", text)  # never a user:password
    return LocalrepoError(
        f"Not a usable remote URL: {shown!r} ({why}). Give one like {_EXAMPLE}",
        exit_code=EXIT_USAGE,
    )


def with_scheme(url: str) -> tuple[str, bool]:
    """`url` stripped, with ``http://`` or ``https://`` in front when it had no scheme,
    and whether one was added. Raises `LocalrepoError` (exit 2) for an empty value, one
    with spaces, another scheme (``ftp://``), no host, or a port that is not a number."""
    typed = text = str(url).strip()
    if not text:
        raise _refuse(text, "it is empty")
    if any(c.isspace() for c in text):
        raise _refuse(text, "it contains spaces")
    added = "://" not in text
    if added:
        host = urlsplit("//" + text).hostname or ""
        text = ("http://" if is_loopback(host) else "https://") + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _refuse(typed, "the port is not a number from 0 to 65535") from None
    if parts.scheme.lower() not in SCHEMES:
        raise _refuse(typed, f"the scheme is {parts.scheme!r}, not http or https")
    if not parts.hostname:
        raise _refuse(typed, "it names no host")
    del port  # only checked
    return text, added


def split_password(url: str) -> tuple[str, str | None]:
    """`url` without its user-info, and the password it held (None: none)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    password = unquote(userinfo.split(":", 1)[1]) if ":" in userinfo else None
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), (
        password or None
    )


def masked(url: str) -> str:
    """`url` with the password of its user-info (if any) shown as ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    shown = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    return urlunsplit((parts.scheme, shown, parts.path, parts.query, parts.fragment))
