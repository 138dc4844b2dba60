"""Classification: records in, the contract's answers out.

``MLService`` (one per server) holds the feature backends (loaded on first use) and a
small cache of model heads, and finds the model a ``classify/`` request asks for.
``gather_bytes`` gets the records' bytes (``fetch_url`` a ``_url`` record's, under the
server's rules), ``predict`` runs the model on them; ``answer_record`` builds one
record's answer from a model's outputs (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
from PIL import Image

from ..addresses import host_literal, refusal
from ..data import models, training
from ..data.db import Database
from ..errors import bad_request
from ..imaging import ImageRejected, decode_base64, decoded_bytes, no_reservation
from .features import Backends, BackendUnavailable, decode_rgb
from .heads import MULTI_CLASS, MULTI_LABEL, TAG_THRESHOLD, Head, LabelInfo

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

    def classify_model(
        self, db: Database, ws: str, task_id: str, version: int | None
    ) -> ClassifyModel:
        """The task's production version (or ``version``) for ``classify/``: its head
        and labels (404 / 400 when there is none)."""
        model, head, label_rows = models.classify_model(
            db, ws, task_id, version, lambda model_id: self.head(db, model_id)
        )
        labels = {r[0]: LabelInfo(r[0], r[1], r[2], r[3] == task_id) for r in label_rows}
        negative = next((lid for lid, info in labels.items() if info.negative), None)
        return ClassifyModel(task_id, model[1], model[2] or head.backend, head, labels, negative)


@dataclass(frozen=True)
class ClassifyModel:
    task_id: str
    version: int
    backend: str
    head: Head
    labels: dict[str, LabelInfo]
    negative: str | None


# ---- records -------------------------------------------------------------------------------


def _record_bytes(record: dict[str, Any]) -> bytes:
    payload = record.get("_base64")
    if not isinstance(payload, str) or not payload:
        raise RecordError(400, "_base64: must be a non-empty string of base64 (or a data URI)")
    try:
        return decode_base64(payload)
    except ImageRejected as exc:
        raise RecordError(400, f"_base64: {exc}") from exc


async def gather_bytes(
    records: list[dict[str, Any]], policy: UrlPolicy
) -> list[bytes | RecordError]:
    """Per record: its image bytes (decoded from ``_base64``, or fetched from ``_url``
    under ``policy``, all at once) or its error."""
    out: list[bytes | RecordError] = []
    urls: dict[int, str] = {}
    for k, record in enumerate(records):
        out.append(RecordError(400, "record: give _base64 (an image) or _url"))
        try:
            if "_base64" in record:
                out[k] = _record_bytes(record)
            elif "_url" in record:
                url = record["_url"]
                if not isinstance(url, str) or not url.strip():
                    raise RecordError(400, "_url: must be a non-empty string")
                urls[k] = url.strip()
        except RecordError as exc:
            out[k] = exc
    if urls:
        timeout = httpx.Timeout(policy.timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as c:
            fetched = await asyncio.gather(
                *(fetch_url(c, url, policy) for url in urls.values()), return_exceptions=True
            )
        for k, got in zip(urls, fetched, strict=True):
            if isinstance(got, RecordError | bytes):
                out[k] = got
            else:
                out[k] = RecordError(502, f"_url: cannot fetch ({type(got).__name__})")
    return out


_DRAFT = 448  # a JPEG is decoded at a reduced scale no smaller than this


def _decode(data: bytes) -> Image.Image:
    try:
        return decode_rgb(data, draft=_DRAFT)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RecordError(400, f"the image is too large to decode safely ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise RecordError(400, "the data is not an image Pillow can identify") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RecordError(400, f"the image does not decode ({exc})") from exc


def decode_cost(data: bytes) -> int:
    """What decoding ``data`` as ``_decode`` does holds (from its header alone); 0 for
    bytes that do not open (they fail in ``_decode``, holding nothing)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG":
                im.draft("RGB", (_DRAFT, _DRAFT))
            return decoded_bytes(im, resampled=True)
    except Exception:
        return 0


def predict(
    backends: Backends,
    model: ClassifyModel,
    raw: list[bytes | RecordError],
    reserve: Callable[[int], contextlib.AbstractContextManager[None]] = no_reservation,
) -> list[dict[str, Any] | RecordError]:
    """Per record: its answer (labels, size) or its error. ``reserve`` is held for the
    request's decoded images at once (one reservation: waiting for more while holding
    some could deadlock against another request)."""
    cost = sum(decode_cost(item) for item in raw if isinstance(item, bytes))
    with reserve(cost):
        return _predict(backends, model, raw)


def _predict(
    backends: Backends, model: ClassifyModel, raw: list[bytes | RecordError]
) -> list[dict[str, Any] | RecordError]:
    results: list[dict[str, Any] | RecordError] = []
    images: list[Image.Image] = []
    slots: list[int] = []
    for item in raw:
        if isinstance(item, RecordError):
            results.append(item)
            continue
        try:
            im = _decode(item)
        except RecordError as exc:
            results.append(exc)
            continue
        slots.append(len(results))
        results.append({"_width": im.width, "_height": im.height})
        images.append(im)
    if images:
        try:
            backend = backends.get(model.backend)
        except BackendUnavailable as exc:
            raise bad_request(
                f"Version {model.version} of this task was trained with the "
                f"'{model.backend}' features, which this server cannot compute: {exc}."
            ) from exc
        outputs = model.head.predict(backend.embed(images))
        for slot, row in zip(slots, outputs, strict=True):
            entry = results[slot]
            assert isinstance(entry, dict)
            entry.update(answer_record(model.head, model.labels, row))
    return results


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
            out["best_labels"] = [e for e in entries if e["prob"] >= TAG_THRESHOLD]
        return out
    entries = [{**ref(k), "value": round(float(outputs[k]), 6)} for k in range(len(head.label_ids))]
    return {"best_label": entries[0] if entries else None, "labels": entries}


def labels_to_store(head: Head, answer: dict[str, Any], negative: str | None) -> list[tuple]:
    """(label id, value) pairs a stored classified image gets: its best label (the
    value labels with their predictions for regression; the tags at >= TAG_THRESHOLD, else the
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


def _refused(host: str, address: str, why: str) -> RecordError:
    shown = host if host == address else f"{host!r} ({address})"
    return RecordError(
        403,
        f"_url: {shown} is {why}; the server fetches only public addresses unless "
        "started with --allow-private-urls",
    )


async def _resolve(host: str, port: int, policy: UrlPolicy) -> str:
    """The one address the fetch connects to: every address the host has is checked
    (server/addresses.py), and the connection goes to the checked one, so a second
    answer of the resolver (DNS rebinding) is never asked for."""
    literal = host_literal(host)
    if literal is not None:
        why = refusal(literal, policy.allow_private)
        if why:
            raise _refused(host, str(literal), why)
        return str(literal)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RecordError(400, f"_url: cannot resolve host {host!r} ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RecordError(400, f"_url: cannot resolve host {host!r}")
    for address in addresses:
        why = refusal(address, policy.allow_private)
        if why:
            raise _refused(host, address, why)
    return addresses[0]


def _check_peer(response: httpx.Response, host: str, policy: UrlPolicy) -> None:
    """The address the connection really went to, checked again (a proxy or a
    resolver in between must not lead it elsewhere)."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return
    why = refusal(str(peer[0]), policy.allow_private)
    if why:
        raise _refused(host, str(peer[0]), why)


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
            _check_peer(response, host, policy)
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
