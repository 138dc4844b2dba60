"""Connection failures that no retry can fix, and what to tell the user about them.

Contract (docs/remote.md, "Retry policy"): `no_way_through` looks at an
`httpx.ConnectError` (nothing was sent) and names why waiting will not help:
"refused" (nothing listens on the port), "unknown host" (the name is not known, not a
temporary DNS failure) or "tls" (a plain-HTTP server, a certificate that is not
trusted); None for anything else, which the transport retries. `unreachable_text`
words one of those reasons with the URL and what to check. The transport
(remote/transport.py) fails at once on these only while the server has not answered
yet; once it has, a refused connection is a restart and is retried.

Pure: an exception (and its chain of causes) in, a reason or a text out.
"""

from __future__ import annotations

import errno
import socket
import ssl
from urllib.parse import urlsplit

import httpx

_UNKNOWN_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in out and len(out) < 10:
        out.append(cause)
        cause = cause.__cause__ or cause.__context__
    return out


def no_way_through(exc: httpx.HTTPError) -> str | None:
    """Why a connection failed in a way that waiting will not fix, or None: the port
    refuses connections (nothing listens), the host name is not known (not a temporary
    DNS failure), or TLS failed (a plain-HTTP server, a certificate that is not
    trusted). Only for `httpx.ConnectError`: nothing was sent."""
    if not isinstance(exc, httpx.ConnectError):
        return None
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "refused"
        if isinstance(cause, socket.gaierror) and cause.errno in _UNKNOWN_HOST:
            return "unknown host"
        if isinstance(cause, ssl.SSLError):
            return "tls"
    return None


def unreachable_text(where: str, base_url: str, why: str, exc: BaseException) -> str:
    """What to tell the user for a `no_way_through` reason `why`: the URL (`where`, with
    no credentials in it), what went wrong, and where to check or change the address."""
    check = "`repo remote show` shows this repository's; `repo remote set URL` changes it"
    if why == "refused":
        return (
            f"cannot connect to {where}: connection refused. Is the server running, and "
            f"is this its address and port? ({check})"
        )
    if why == "unknown host":
        host = urlsplit(base_url).hostname
        return (
            f"cannot reach {where}: the host name '{host}' is not known. Check the host "
            f"name for a typo ({check})"
        )
    plain = "http://" + where.split("://", 1)[-1]
    return (
        f"cannot reach {where}: the TLS handshake failed ({exc}). If the server "
        f"speaks plain HTTP, use {plain} ({check})"
    )
