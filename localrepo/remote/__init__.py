"""The Recognition v2 client (see docs/remote.md).

    from localrepo.remote import RecognitionClient, RemoteUnavailableError

Names are imported lazily, so importing `localrepo.remote.errors` (or this package)
does not pay for httpx and stamina until the client is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import RemoteAPI
    from .client import RecognitionClient, parse_retry_after
    from .errors import (
        AuthError,
        BadRequestError,
        NotFoundError,
        OutcomeUnknownError,
        PaginationError,
        RemoteError,
        RemoteUnavailableError,
        ServerError,
        ThrottledError,
    )
    from .models import (
        RemoteImage,
        RemoteImageLabel,
        RemoteLabel,
        RemoteModel,
        RemoteTask,
        Workspace,
    )

_WHERE = {
    "RemoteAPI": "api",
    "RecognitionClient": "client",
    "parse_retry_after": "client",
    "AuthError": "errors",
    "BadRequestError": "errors",
    "NotFoundError": "errors",
    "OutcomeUnknownError": "errors",
    "PaginationError": "errors",
    "RemoteError": "errors",
    "RemoteUnavailableError": "errors",
    "ServerError": "errors",
    "ThrottledError": "errors",
    "RemoteImage": "models",
    "RemoteImageLabel": "models",
    "RemoteLabel": "models",
    "RemoteModel": "models",
    "RemoteTask": "models",
    "Workspace": "models",
}

__all__ = [
    "AuthError",
    "BadRequestError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PaginationError",
    "RecognitionClient",
    "RemoteAPI",
    "RemoteError",
    "RemoteImage",
    "RemoteImageLabel",
    "RemoteLabel",
    "RemoteModel",
    "RemoteTask",
    "RemoteUnavailableError",
    "ServerError",
    "ThrottledError",
    "Workspace",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
