"""The transport under every request: one thread-safe `httpx.Client`, the auth header,
the base URL and the workspace, retries with stamina, lost-answer probing, the mapping of
answers to `remote/errors.py`, and scrubbing the token out of every message.

Retry policy (see docs/remote.md):

- retried: connection errors, timeouts, dropped connections, 429 (honouring
  ``Retry-After``, capped) and 502/503/504; never any other 4xx/5xx;
- not retried, failing at once with the URL and what to check: a refused connection,
  a host name that is not known, a failed TLS handshake (remote/failfast.py) while the
  server has not answered yet; once it has, a refused connection is a restart and is
  retried like any connection error;
- a request that was sent and whose answer was lost (read timeout, dropped
  connection, 502/504) is repeated only when repeating it is harmless (GET, PUT, PATCH,
  DELETE, image upload, label links, bulk updates). Creates pass a `probe` (list,
  adopt an exact name+type match) and only create again if nothing is there; other
  non-idempotent requests raise `OutcomeUnknownError`;
- DELETE of something already gone (404) counts as success (`_delete` returns False).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx
import stamina

from localrepo import __version__
from localrepo.errors import LocalrepoError

from .answers import decode_json, detail_text, field_errors, json_or_none, parse_retry_after
from .errors import (
    AuthError,
    BadRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RemoteError,
    RemoteUnavailableError,
    ServerError,
    ThrottledError,
    safe_url,
)
from .failfast import no_way_through, unreachable_text
from .urls import with_scheme

log = logging.getLogger("localrepo.remote")

API_PATH = "recognition/v2/"
ACCOUNT_PATH = "account/v2/"
DEFAULT_MAX_DOWNLOAD = 256 * 1024 * 1024
RETRY_STATUSES = {429, 502, 503, 504}
_UNKNOWN_OUTCOME_STATUSES = {502, 504}  # a gateway may have passed the request on


class Transient(Exception):
    """Internal: a failure worth retrying. `outcome_unknown` when the request may have
    reached the server and been acted on (its answer was lost)."""

    def __init__(
        self,
        reason: str,
        *,
        outcome_unknown: bool,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome_unknown = outcome_unknown
        self.status = status
        self.retry_after = retry_after
        self.body = body
        self.throttled = throttled


# What an API token is made of: visible ASCII, as an HTTP header can carry it.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


def transport_failure(exc: httpx.HTTPError) -> Transient | None:
    """Classify an httpx exception; None for ones that are not worth a retry."""
    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, httpx.ConnectTimeout):
        return Transient(f"connection timed out ({text})", outcome_unknown=False)
    if isinstance(exc, httpx.PoolTimeout):
        return Transient("no free connection in the pool", outcome_unknown=False)
    if isinstance(exc, httpx.ConnectError):
        return Transient(f"cannot connect ({text})", outcome_unknown=False)
    if isinstance(exc, httpx.TimeoutException):
        return Transient(f"no answer in time ({name})", outcome_unknown=True)
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return Transient(f"connection lost ({text})", outcome_unknown=True)
    return None


class Transport:
    """The plumbing of `RecognitionClient` (which adds the endpoints on top): the
    constructor's settings, the connection pool, and `_request`/`_call` with retries.
    ``workspace`` (an id) is sent as ``?workspace=`` on GET/DELETE and as a
    ``"workspace"`` key in POST/PUT/PATCH bodies; None means the user's default."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        workspace: str | None = None,
        concurrency: int = 8,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry_attempts: int = 6,
        retry_timeout: float = 60.0,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 10.0,
        retry_wait_jitter: float = 0.5,
        retry_after_max: float = 60.0,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
    ) -> None:
        if not token or not token.strip():
            raise LocalrepoError("No API token given.", exit_code=4)
        if not _TOKEN_CHARS.fullmatch(token.strip()):
            # Never the token itself: httpx would quote it in its header error.
            raise LocalrepoError(
                "The API token (from --token, LOCALREPO_TOKEN or the credentials file of "
                "'repo login') contains a character no token has (a space, a line break, "
                "a control character or a non-ASCII letter); copy it again.",
                exit_code=4,
            )
        self.base_url = self._normalise_base(base_url)
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self.api_url = self.base_url + API_PATH
        self.account_url = self.base_url + ACCOUNT_PATH
        self.workspace = workspace or None
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.retry_attempts = max(1, int(retry_attempts))
        self.retry_timeout = retry_timeout
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self.retry_wait_jitter = retry_wait_jitter
        self.retry_after_max = retry_after_max
        self.max_download_bytes = max_download_bytes
        self._token = token.strip()
        if not (self._token.isascii() and self._token.isprintable()):
            # A header can carry only these; the HTTP library would raise while writing
            # it (a traceback). The token itself is never shown.
            raise LocalrepoError(
                "The API token holds a character no token has (only ASCII letters, digits "
                "and punctuation): check the token you gave (--token, LOCALREPO_TOKEN or "
                "the credentials file).",
                exit_code=4,
            )
        self._auth = {"Authorization": f"Token {self._token}"}
        if transport is None:
            transport = httpx.HTTPTransport(
                limits=httpx.Limits(
                    max_connections=self.concurrency + 2,
                    max_keepalive_connections=self.concurrency + 2,
                )
            )
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"localrepo/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )
        self._closed = threading.Event()
        # Set by the first answer: from then on a refused connection is a server that
        # restarts (retried), not a wrong address or a stopped server (fail at once).
        self._answered = False

    # -- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _normalise_base(url: str) -> str:
        text, _ = with_scheme(url)  # the CLI said it when it added a scheme
        parts = urlsplit(text)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        path = parts.path
        for suffix in (API_PATH, API_PATH.rstrip("/")):
            if path.endswith("/" + suffix):
                path = path[: -len(suffix)]
        if not path.endswith("/"):
            path += "/"
        return urlunsplit((parts.scheme.lower(), netloc, path, "", ""))

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _scrub_obj(self, value: Any) -> Any:
        """`value` (a parsed answer) with the token replaced in every string."""
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, Mapping):
            return {k: self._scrub_obj(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub_obj(v) for v in value]
        return value

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.api_url + path.lstrip("/")

    def _op(self, method: str, path: str) -> str:
        return f"{method} {path}"

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (params or {}).items():
            if value is None:
                continue
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, (list, tuple, set, frozenset)):
                if value:
                    out[key] = ",".join(str(v) for v in value)
            else:
                out[key] = value
        if self.workspace and "workspace" not in out:
            out["workspace"] = self.workspace
        return out

    def _body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(body)
        if self.workspace and "workspace" not in out:
            out["workspace"] = self.workspace
        return out

    def _retrying(self) -> Any:
        return stamina.retry_context(
            on=self._backoff_hook,
            attempts=self.retry_attempts,
            timeout=self.retry_timeout,
            wait_initial=self.retry_wait_initial,
            wait_max=self.retry_wait_max,
            wait_jitter=self.retry_wait_jitter,
        )

    def _backoff_hook(self, exc: Exception) -> bool | float:
        if not isinstance(exc, Transient):
            return False
        if exc.retry_after is not None:
            return float(min(exc.retry_after, self.retry_after_max))
        return True

    def _send_once(
        self,
        method: str,
        url: str,
        op: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request. Raises `Transient` for what may be retried; returns any other
        answer (including 4xx/5xx) for the caller to judge."""
        if self._closed.is_set():
            raise RemoteError(f"{op}: the client is closed.", operation=op)
        try:
            response = self._http.request(method, url, params=params, json=json, headers=self._auth)
        except httpx.HTTPError as exc:
            log.debug("%s: %s", op, self._scrub(str(exc) or type(exc).__name__))
            why = None if self._answered else no_way_through(exc)
            if why is not None:
                raise self._unreachable(op, why, exc) from exc
            failure = transport_failure(exc)
            if failure is None:
                raise RemoteError(
                    self._scrub(f"{op}: {type(exc).__name__}: {exc}"), operation=op
                ) from exc
            raise failure from exc
        self._answered = True
        status = response.status_code
        log.debug("%s -> %s", op, status)
        if status in RETRY_STATUSES:
            body = self._scrub_obj(json_or_none(response))
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After"))
                if status in (429, 503)
                else None
            )
            detail = detail_text(body) or response.reason_phrase
            raise Transient(
                f"{status} {detail}".strip(),
                outcome_unknown=status in _UNKNOWN_OUTCOME_STATUSES,
                status=status,
                retry_after=retry_after,
                body=body,
                throttled=status == 429,
            )
        return response

    def _gave_up(self, exc: Transient, op: str, url: str, attempts: int) -> RemoteError:
        tries = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        if exc.throttled:
            return ThrottledError(
                self._scrub(f"{op}: the server keeps throttling requests ({exc.reason}); {tries}."),
                operation=op,
                status=429,
                body=exc.body,
            )
        if exc.status is not None:
            return ServerError(
                self._scrub(f"{op}: the server is unavailable ({exc.reason}); {tries}."),
                operation=op,
                status=exc.status,
                body=exc.body,
            )
        return RemoteUnavailableError(
            self._scrub(f"{op}: cannot reach {safe_url(url)}: {exc.reason}; {tries}."),
            operation=op,
        )

    def _unreachable(self, op: str, why: str, exc: httpx.HTTPError) -> RemoteUnavailableError:
        """No retry can help (see `no_way_through`): say which URL and what to check."""
        text = unreachable_text(safe_url(self.base_url), self.base_url, why, exc)
        return RemoteUnavailableError(self._scrub(f"{op}: {text}."), operation=op)

    def _outcome_unknown(self, exc: Transient, op: str, url: str) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            self._scrub(
                f"{op}: the answer from {safe_url(url)} was lost ({exc.reason}); the server "
                "may or may not have done it, and repeating it is not safe."
            ),
            operation=op,
            status=exc.status,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        probe: Callable[[], Any] | None = None,
        op: str | None = None,
    ) -> Any:
        """Send with retries; return the response, or what `probe` adopted.

        With ``idempotent=False`` a lost answer is not repeated blindly: `probe` (if
        given) looks for the effect and its non-None result is returned instead;
        nothing found means the request is sent again. Without a probe:
        `OutcomeUnknownError`."""
        url = self._url(path)
        op = op or self._op(method, path)
        attempts = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    try:
                        return self._send_once(method, url, op, params=params, json=json)
                    except Transient as exc:
                        if exc.outcome_unknown and not idempotent:
                            if probe is None:
                                raise self._outcome_unknown(exc, op, url) from exc
                            found = probe()
                            if found is not None:
                                log.info("%s: answer lost, adopted what the server made", op)
                                return found
                            log.info("%s: answer lost and nothing was made; sending again", op)
                        raise
        except Transient as exc:
            raise self._gave_up(exc, op, url, attempts) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, response: httpx.Response, op: str) -> RemoteError:
        status = response.status_code
        body = self._scrub_obj(json_or_none(response))
        detail = self._scrub(detail_text(body) or response.reason_phrase)
        kw: dict[str, Any] = {"operation": op, "status": status, "detail": detail, "body": body}
        if status in (401, 403):
            return AuthError(
                f"{op}: the server refused the credentials ({status}: {detail}). Check the "
                "token (--token, LOCALREPO_TOKEN) or run `repo login` to store a new one.",
                **kw,
            )
        if status == 404:
            return NotFoundError(f"{op}: not found ({detail}).", **kw)
        if status in (400, 422):
            return BadRequestError(
                f"{op}: the server refused the request: {detail}",
                field_errors=field_errors(body),
                **kw,
            )
        if status == 429:
            return ThrottledError(f"{op}: throttled ({detail}).", **kw)
        if status >= 500:
            return ServerError(f"{op}: server error {status} ({detail}).", **kw)
        if 300 <= status < 400:
            # Only where it leads (no query, no fragment), and never the token: a
            # redirect may carry it back (issue 20).
            where = self._scrub(safe_url(response.headers.get("Location", "")).split("?")[0])
            return RemoteError(f"{op}: unexpected redirect ({status}) to {where}.", **kw)
        return RemoteError(f"{op}: {status} {detail}".rstrip() + ".", **kw)

    def _parse(self, response: httpx.Response, op: str) -> Any:
        if not response.is_success:
            raise self._error(response, op)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return decode_json(response.content)
        except ValueError as exc:
            raise RemoteError(
                f"{op}: the answer is not JSON (status {response.status_code}).",
                operation=op,
                status=response.status_code,
            ) from exc

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """Send (with workspace and retries) and return the parsed JSON answer."""
        op = self._op(method, path)
        if method in ("GET", "DELETE"):
            params = self._params(params)
        elif json is not None:
            json = self._body(json)
        response = self._call(method, path, params=params, json=json, idempotent=idempotent)
        return self._parse(response, op)

    def _delete(self, path: str) -> bool:
        op = self._op("DELETE", path)
        response = self._call("DELETE", path, params=self._params(None))
        if response.status_code == 404:
            log.debug("%s: already gone", op)
            return False
        self._parse(response, op)
        return True

    def _post_created(self, path: str, body: dict[str, Any], probe: Callable[[], Any]) -> Any:
        """POST that creates something: on a lost answer, `probe` (returns the raw dict
        of what was made, or None) decides between adopting and creating again."""
        op = self._op("POST", path)
        result = self._call("POST", path, json=self._body(body), idempotent=False, probe=probe)
        if isinstance(result, httpx.Response):
            return self._parse(result, op)
        return result
