"""Classification: records in, the contract's answers out.

``MLService`` (one per server) holds the feature backends (loaded on first use) and a
small cache of model heads. ``fetch_url`` gets a ``_url`` record's bytes under the
server's rules; ``answer_record`` builds one record's answer from a model's outputs
(pure).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from ..data import training
from ..data.db import Database
from .features import Backends
from .heads import MULTI_CLASS, MULTI_LABEL, Head, LabelInfo

HEAD_CACHE = 32
MAX_REDIRECTS = 3


class RecordError(Exception):
    """A record that cannot be classified: its ``_status`` code and text."""

    def __init__(self, code: int, text: str):
        super().__init__(code, text)
        self.code = code
        self.text = text


class MLService:
    def __init__(self, backends: Backends):
        self.backends = backends
        # Called after a training is queued (serve: start the worker if needed).
        self.on_queued: Callable[[], None] = lambda: None
        self._heads: OrderedDict[str, Head] = OrderedDict()
        self._lock = threading.Lock()

    def head(self, db: Database, model_id: str) -> Head | None:
        with self._lock:
            found = self._heads.get(model_id)
            if found is not None:
                self._heads.move_to_end(model_id)
                return found
        data = training.load_head(db, model_id)
        if data is None:
            return None
        head = Head.from_bytes(data)
        with self._lock:
            self._heads[model_id] = head
            while len(self._heads) > HEAD_CACHE:
                self._heads.popitem(last=False)
        return head


# ---- answers -------------------------------------------------------------------------------


def answer_record(head: Head, labels: dict[str, LabelInfo], outputs: np.ndarray) -> dict[str, Any]:
    """``best_label``, ``labels`` (and ``best_labels`` for multi_label) of one record."""

    def ref(k: int) -> dict[str, Any]:
        lid = head.label_ids[k]
        info = labels.get(lid)
        return {"id": lid, "name": info.shown if info else lid}

    if head.task_type == MULTI_CLASS or head.task_type == MULTI_LABEL:
        order = sorted(range(len(head.label_ids)), key=lambda k: (-outputs[k], k))
        entries = [{**ref(k), "prob": round(float(outputs[k]), 6)} for k in order]
        out: dict[str, Any] = {"best_label": entries[0] if entries else None, "labels": entries}
        if head.task_type == MULTI_LABEL:
            out["best_labels"] = [e for e in entries if e["prob"] >= 0.5]
        return out
    entries = [{**ref(k), "value": round(float(outputs[k]), 6)} for k in range(len(head.label_ids))]
    return {"best_label": entries[0] if entries else None, "labels": entries}


def labels_to_store(head: Head, answer: dict[str, Any], negative: str | None) -> list[tuple]:
    """(label id, value) pairs a stored classified image gets: its best label (the
    value labels with their predictions for regression; the tags at >= 0.5, else the
    task's negative label, for multi_label)."""
    if head.task_type == MULTI_CLASS:
        best = answer.get("best_label")
        return [(best["id"], None)] if best else []
    if head.task_type == MULTI_LABEL:
        tags = [(e["id"], None) for e in answer.get("best_labels", [])]
        return tags or ([(negative, None)] if negative else [])
    best = answer.get("best_label")
    return [(best["id"], best["value"])] if best else []


# ---- URL records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlPolicy:
    allow_private: bool
    timeout: float
    max_bytes: int


def _address_allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


async def _resolve(host: str, port: int, policy: UrlPolicy) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RecordError(400, f"_url: cannot resolve host {host!r} ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RecordError(400, f"_url: cannot resolve host {host!r}")
    refused = [a for a in addresses if not _address_allowed(a, policy.allow_private)]
    if refused:
        raise RecordError(
            403,
            f"_url: {host!r} is a private, loopback or reserved address ({refused[0]}); "
            "the server fetches only public addresses unless started with "
            "--allow-private-urls",
        )
    return addresses[0]


async def fetch_url(client: httpx.AsyncClient, url: str, policy: UrlPolicy) -> bytes:
    """The bytes at ``url``: http(s) only, every address checked (the connection goes
    to the checked address, so DNS cannot swap it), redirects followed and checked,
    at most ``max_bytes``, the whole fetch within ``timeout``."""
    try:
        return await asyncio.wait_for(_fetch(client, url, policy), policy.timeout)
    except TimeoutError as exc:
        raise RecordError(504, f"_url: no answer within {policy.timeout:g} s") from exc


async def _fetch(client: httpx.AsyncClient, url: str, policy: UrlPolicy) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RecordError(400, f"_url: only http and https URLs, not {parts.scheme!r}")
        host = parts.hostname
        if not host:
            raise RecordError(400, "_url: the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RecordError(400, f"_url: bad port ({exc})") from exc
        address = await _resolve(host, port, policy)
        literal = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        request = client.build_request(
            "GET",
            target,
            headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
            extensions={"sni_hostname": host} if parts.scheme == "https" else {},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise RecordError(502, f"_url: cannot fetch ({type(exc).__name__}: {exc})") from exc
        try:
            if response.is_redirect:
                location = response.headers.get("location", "")
                url = str(httpx.URL(url).join(location))
                continue
            if response.status_code != 200:
                raise RecordError(502, f"_url: the server answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise RecordError(413, f"_url: larger than {policy.max_bytes} bytes")
            chunks: list[bytes] = []
            total = 0
            try:
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > policy.max_bytes:
                        raise RecordError(413, f"_url: larger than {policy.max_bytes} bytes")
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise RecordError(502, f"_url: the download failed ({exc})") from exc
            return b"".join(chunks)
        finally:
            await response.aclose()
    raise RecordError(502, f"_url: more than {MAX_REDIRECTS} redirects")
