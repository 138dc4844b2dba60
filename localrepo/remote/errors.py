"""Errors of the remote client, each a `LocalrepoError` with the design's exit code.

    RemoteError                    any failure talking to the API (exit 1)
    ├── AuthError                  401/403: wrong or missing token (exit 4)
    ├── NotFoundError              404
    ├── BadRequestError            400/422, with the server's detail and field errors
    └── RemoteUnavailableError     unreachable, timeouts, 5xx (exit 5)
        ├── ServerError            a 5xx answer (retried only for 502/503/504)
        ├── ThrottledError         429 until the retry budget ran out
        └── OutcomeUnknownError    a non-idempotent request whose answer was lost

Messages name the operation ("POST label/: ...") and never contain the token; URLs are
shown without any user-info part.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from localrepo.errors import EXIT_AUTH, EXIT_UNREACHABLE, LocalrepoError


def safe_url(url: str) -> str:
    """`url` without user-info (``user:pass@``) and without a fragment."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class RemoteError(LocalrepoError):
    """A request to the remote API failed.

    `operation` is e.g. ``"POST label/"``; `status` the HTTP status when there was an
    answer; `detail` the server's message; `body` the parsed answer (if JSON)."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        detail: str | None = None,
        body: Any = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, exit_code=exit_code)
        self.operation = operation
        self.status = status
        self.detail = detail
        self.body = body


class AuthError(RemoteError):
    exit_code = EXIT_AUTH


class NotFoundError(RemoteError):
    pass


class BadRequestError(RemoteError):
    """400 (or 422): the server refused the input. `field_errors` maps a field name to
    its messages (DRF style ``{"field": ["message"]}``)."""

    def __init__(
        self, message: str, *, field_errors: dict[str, list[str]] | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.field_errors: dict[str, list[str]] = field_errors or {}


class RemoteUnavailableError(RemoteError):
    exit_code = EXIT_UNREACHABLE


class ServerError(RemoteUnavailableError):
    """The server answered with a 5xx status."""


class ThrottledError(RemoteUnavailableError):
    """Still throttled (429) when the retry budget ran out."""


class OutcomeUnknownError(RemoteUnavailableError):
    """A request that is not safe to repeat was sent, and its answer was lost (read
    timeout, dropped connection, 502/504): the server may or may not have acted."""


class PaginationError(RemoteError):
    """A listing's `next` links do not end (a loop, or endless empty pages)."""
