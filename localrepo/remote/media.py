"""Downloading media (`img_path`, `thumb_img_path`): no auth header, redirects
followed, a size limit, retried from the start when the target can be rewound."""

from __future__ import annotations

from typing import IO, overload

import httpx

from .answers import parse_retry_after
from .errors import RemoteError, RemoteUnavailableError, safe_url
from .transport import RETRY_STATUSES, Transient, Transport, transport_failure


class MediaEndpoints(Transport):
    @overload
    def download(self, url: str, dest: None = None, *, max_bytes: int | None = None) -> bytes: ...

    @overload
    def download(self, url: str, dest: IO[bytes], *, max_bytes: int | None = None) -> int: ...

    def download(
        self, url: str, dest: IO[bytes] | None = None, *, max_bytes: int | None = None
    ) -> bytes | int:
        """Fetch the bytes behind an `img_path` (no auth header; redirects followed).
        Returns the bytes, or writes them to `dest` and returns the count. More than
        `max_bytes` (default: the client's `max_download_bytes`) is an error."""
        limit = max_bytes if max_bytes is not None else self.max_download_bytes
        if url.startswith("/"):
            url = self._origin + url
        op = f"GET {safe_url(url)}"
        start: int | None = None
        if dest is not None:
            try:
                start = dest.tell() if dest.seekable() else None
            except (OSError, ValueError):
                start = None
        attempts = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    if dest is not None and start is not None:
                        dest.seek(start)
                        dest.truncate()
                    return self._download_once(url, op, dest, limit)
        except Transient as exc:
            raise self._gave_up(exc, op, url, attempts) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_once(self, url: str, op: str, dest: IO[bytes] | None, limit: int) -> bytes | int:
        if self._closed.is_set():
            raise RemoteError(f"{op}: the client is closed.", operation=op)
        buffer = bytearray() if dest is None else None
        written = 0
        try:
            with self._http.stream("GET", url, follow_redirects=True) as response:
                status = response.status_code
                if status in RETRY_STATUSES:
                    response.read()
                    raise Transient(
                        f"{status} {response.reason_phrase}",
                        outcome_unknown=False,
                        status=status,
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                        throttled=status == 429,
                    )
                if not response.is_success:
                    response.read()
                    raise self._error(response, op)
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise RemoteError(
                        f"{op}: the image is {int(declared)} bytes, over the {limit}-byte limit.",
                        operation=op,
                    )
                for chunk in response.iter_bytes(64 * 1024):
                    written += len(chunk)
                    if written > limit:
                        raise RemoteError(
                            f"{op}: the image is over the {limit}-byte limit.", operation=op
                        )
                    if buffer is not None:
                        buffer.extend(chunk)
                    else:
                        assert dest is not None
                        dest.write(chunk)
        except httpx.HTTPError as exc:
            failure = transport_failure(exc)
            if failure is None:
                raise RemoteError(f"{op}: {type(exc).__name__}: {exc}", operation=op) from exc
            failure.outcome_unknown = False  # a GET: repeating it is harmless
            if dest is not None and written and not retryable_dest(dest):
                raise RemoteUnavailableError(
                    f"{op}: the download broke off after {written} bytes ({failure.reason}).",
                    operation=op,
                ) from exc
            raise failure from exc
        return bytes(buffer) if buffer is not None else written


def retryable_dest(dest: IO[bytes]) -> bool:
    try:
        return bool(dest.seekable())
    except (OSError, ValueError):
        return False
