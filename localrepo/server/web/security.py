"""Pure decisions of the web interface's security: where a sign-in may send the browser
back to, the session cookie's flags, and comparing secrets. No I/O; the shell is
server/web/session.py.

- ``safe_next``: only a path on this server (``/...``), never an absolute URL, a
  scheme-relative ``//host`` or a backslash trick (``/\\host``): no open redirect.
- ``cookie_flags``: HttpOnly and SameSite=Lax always; Secure when the request came over
  TLS (directly, or through a proxy trusted with ``--forwarded-allow-ips``).
- ``same_secret``: constant-time comparison; an empty secret never matches.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

HOME = "/web/"


@dataclass(frozen=True)
class CookieFlags:
    httponly: bool
    samesite: str
    secure: bool
    path: str


def safe_next(value: str | None, default: str = HOME) -> str:
    """``value`` when it is a path on this server, else ``default``."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    return value


def cookie_flags(scheme: str) -> CookieFlags:
    return CookieFlags(httponly=True, samesite="lax", secure=scheme == "https", path="/")


def same_secret(given: str | None, expected: str) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def secret_hash(value: str) -> str:
    """What the database keeps of a session cookie's value (sha256, hex)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
