"""Fault injection for a server subprocess (tests/server/test_server_url_addresses.py):
with this folder on PYTHONPATH, the resolver answers ``rebind.localrepo.test`` with a
public address the first time and with 127.0.0.1 every time after (DNS rebinding), and
counts its answers in the file named by ``$LOCALREPO_TEST_REBIND_COUNT``."""

from __future__ import annotations

import os
import socket
from typing import Any

_COUNT = os.environ.get("LOCALREPO_TEST_REBIND_COUNT", "")
_getaddrinfo = socket.getaddrinfo
_answers = 0


def _rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    global _answers
    if host != "rebind.localrepo.test":
        return _getaddrinfo(host, port, *args, **kwargs)
    _answers += 1
    with open(_COUNT, "w") as fh:
        fh.write(str(_answers))
    address = "8.8.8.8" if _answers == 1 else "127.0.0.1"  # public, then loopback
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]


if _COUNT:
    socket.getaddrinfo = _rebinding
