"""Where the image bytes live: the ``--storage`` URL, read and checked (pure; no I/O).

Contract: ``parse_storage_url(text)`` answers a `StorageURL` or raises `StorageURLError`
with a one-line message that names the (redacted) URL and what to do.

- ``""`` or ``local``: the data folder's own ``blobs/`` and ``thumbs/`` (the default).
- ``s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME]``: an S3-compatible bucket; the
  objects are ``PREFIX/blobs/<aa>/<sha256>`` and ``PREFIX/thumbs/<aa>/<sha256>.jpg``.

Credentials come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``), never from the URL: the URL is printed in messages and passed
on the worker's command line, so a URL carrying a secret (``user:secret@`` or a secret
query parameter) is refused, and ``redact`` hides it in the refusal itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

ENV_STORAGE = "LOCALREPO_STORAGE"

_KNOWN = ("endpoint", "region")
_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "signature")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StorageURLError(ValueError):
    """A ``--storage`` URL that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class StorageURL:
    kind: str  # "local" | "s3"
    bucket: str = ""
    prefix: str = ""  # without leading or trailing "/"
    endpoint: str = ""  # "" : the provider's default (AWS)
    region: str = ""
    shown: str = "local"  # the URL as messages may print it

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def redact(text: str) -> str:
    """``text`` with any ``user:password@`` and secret-looking query values hidden."""
    text = re.sub(r"//[^/@?#]*@", "//***@", text)
    return re.sub(
        r"([?&][^=&]*(?:" + "|".join(_SECRET_WORDS) + r")[^=&]*=)[^&#]*",
        r"\1***",
        text,
        flags=re.IGNORECASE,
    )


def parse_storage_url(text: str) -> StorageURL:
    text = text.strip()
    if text in ("", "local"):
        return StorageURL("local")
    shown = redact(text)
    parts = urlsplit(text)
    if parts.scheme != "s3":
        raise StorageURLError(
            f"--storage {shown}: use 'local' (the data folder) or s3://BUCKET/PREFIX"
            "?endpoint=URL&region=NAME"
        )
    if (
        "@" in parts.netloc
        or "@" in urlsplit(dict(parse_qsl(parts.query)).get("endpoint", "")).netloc
    ):
        raise StorageURLError(
            f"--storage {shown}: credentials in the URL are refused (it is shown in logs); "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead"
        )
    bucket = parts.hostname or ""
    if not _BUCKET.match(bucket):
        raise StorageURLError(
            f"--storage {shown}: {bucket!r} is not a bucket name (3 to 63 lower-case "
            "letters, digits, dots and hyphens)"
        )
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise StorageURLError(
                f"--storage {shown}: secrets in the URL are refused (it is shown in logs); "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead"
            )
        if name not in _KNOWN:
            raise StorageURLError(
                f"--storage {shown}: unknown parameter {name!r} (known: {', '.join(_KNOWN)})"
            )
        query[name] = value
    endpoint = query.get("endpoint", "")
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise StorageURLError(
            f"--storage {shown}: endpoint must be an http:// or https:// URL, e.g. "
            "endpoint=http://127.0.0.1:9000"
        )
    return StorageURL(
        "s3",
        bucket=bucket,
        prefix=parts.path.strip("/"),
        endpoint=endpoint.rstrip("/"),
        region=query.get("region", ""),
        shown=shown,
    )
