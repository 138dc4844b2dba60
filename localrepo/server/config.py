"""Server settings: one immutable object built by the CLI (or by tests) and passed down."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ENV_DATA = "LOCALREPO_SERVER_DATA"
APP_NAME = "localrepo-server"  # the per-user data folder's name (platformdirs)
ENV_DATABASE_URL = "LOCALREPO_SERVER_DATABASE_URL"

# Pillow's own default (Image.MAX_IMAGE_PIXELS); a larger image is a decompression bomb.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485


# `--compat`: the fewest images per label a training takes. The hosted service asks
# for 20; this server's own default is small so that demos and tests train in seconds
# (docs/api.md, "Differences from the hosted service").
COMPAT_MIN_IMAGES = {"local": 5, "hosted": 20}


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second, bursts of up to ``burst``."""

    rate: float
    burst: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``N/s``, ``N/m``, ``N/h`` or a bare ``N`` (per second)."""
        match = re.fullmatch(
            r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*", text
        )
        if not match:
            raise ValueError(f"invalid rate limit {text!r}: expected N/s, N/m or N/h")
        count = float(match.group(1))
        if count <= 0:
            raise ValueError(f"invalid rate limit {text!r}: the count must be positive")
        unit = (match.group(2) or "s")[0]
        seconds = {"s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        return cls(rate=count / seconds, burst=max(1.0, count if unit == "s" else 1.0))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str = ""
    max_body_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Decoded pixels held at once, in bytes (server/decodebudget.py).
    decode_budget_bytes: int = 512 * 1024 * 1024
    decode_wait_seconds: float = 30.0  # then 503 with Retry-After
    resize_to: int = 1024
    thumb_size: int = 256
    page_size_default: int = 50
    page_size_max: int = 1000
    rate_limit: RateLimit | None = None
    # Fault knobs (for tests): every Nth API request answers 503; fixed extra latency.
    fail_every: int = 0
    latency_ms: int = 0
    sqlite_synchronous: str = "NORMAL"
    inline_fsync_ms: float = 1.0  # see BlobStore.fsync_is_fast
    sqlite_busy_timeout_ms: int = 10_000
    auth_cache_seconds: float = 2.0
    # The web interface (docs/web.md): how long a sign-in lasts, and how many sign-in
    # attempts one address may make for one user name (a token bucket: 10, then 1 a
    # minute), against password guessing.
    session_seconds: int = 7 * 24 * 3600
    login_rate_limit: RateLimit = RateLimit(rate=1 / 60, burst=10)
    # Training and classification (docs/server.md, "Training and classification").
    feature_backend: str = "auto"  # auto | efficientnet-lite0 | handcrafted
    torch_threads: int | None = None
    min_images_per_label: int = 5
    train_delay: float = 0.0  # fault injection: a training waits this long (tests)
    train_step_delay: float = 0.0  # fault injection: ... and this long after each step
    classify_max_records: int = 10
    allow_private_urls: bool = False
    url_timeout: float = 10.0
    url_max_bytes: int = 20 * 1024 * 1024
    # Where the image bytes live (data/storage/url.py): "" the data folder, or s3://...;
    # media answers with the bytes ("proxy") or a presigned URL ("redirect", S3 only).
    storage_url: str = ""
    media_mode: str = "proxy"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'server.db').resolve()}"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def thumbs_dir(self) -> Path:
        return self.data_dir / "thumbs"


def default_data_dir() -> Path:
    """The data folder when ``--data`` is not given: ``$LOCALREPO_SERVER_DATA``, else
    the per-user data folder (platformdirs: ``~/.local/share/localrepo-server`` on
    Linux). Never the current folder: a command run elsewhere must find the same data
    (docs/server.md, "The data folder")."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_data_path(APP_NAME)


def default_database_url() -> str:
    return os.environ.get(ENV_DATABASE_URL, "")
