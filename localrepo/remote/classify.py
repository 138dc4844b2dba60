"""Endpoints: classification (``classify/`` records, and image bytes lined up with
the answer by their echoed ``_id``)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import RemoteError
from .models import ClassifyResult
from .transport import Transport


class ClassifyEndpoints(Transport):
    def classify(
        self,
        task_id: str,
        records: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        store_images: bool = False,
    ) -> dict[str, Any]:
        """``POST classify/`` with records (``{"_url": ...}`` or ``{"_base64": ...}``;
        extra keys are echoed). Returns the whole answer; its ``records`` keep order.
        Repeated after a lost answer unless `store_images` (which stores images)."""
        body: dict[str, Any] = {
            "task_id": task_id,
            "records": [dict(r) for r in records],
            "store_images": bool(store_images),
        }
        if version is not None:
            body["version"] = version
        answer = self._request("POST", "classify/", json=body, idempotent=not store_images)
        return dict(answer) if isinstance(answer, Mapping) else {}

    def classify_images(
        self,
        task_id: str,
        images: Sequence[bytes],
        *,
        version: int | None = None,
        store_images: bool = False,
    ) -> ClassifyResult:
        """Classify image bytes (sent as ``_base64``; at most `vocabulary.CLASSIFY_BATCH`
        per call on the hosted service). The result's records line up with `images`: each
        record carries an ``_id`` that the server echoes, so a server that reorders is
        caught."""
        if not images:
            return ClassifyResult.from_api({"task_id": task_id, "records": []})
        records = [
            {"_id": str(i), "_base64": base64.b64encode(data).decode("ascii")}
            for i, data in enumerate(images)
        ]
        answer = self.classify(task_id, records, version=version, store_images=store_images)
        result = ClassifyResult.from_api(answer)
        got = result.records
        ids = [r.raw.get("_id") for r in got]
        if len(got) != len(images):
            raise RemoteError(
                f"POST classify/: sent {len(images)} records, the answer has {len(got)}.",
                operation="POST classify/",
            )
        if all(isinstance(i, str) for i in ids) and ids != [r["_id"] for r in records]:
            by_id = {r.raw["_id"]: r for r in got}
            if set(by_id) != {r["_id"] for r in records}:
                raise RemoteError(
                    "POST classify/: the answer's records do not match the ones sent.",
                    operation="POST classify/",
                )
            result = ClassifyResult(
                task_id=result.task_id,
                version=result.version,
                model_format=result.model_format,
                records=tuple(by_id[str(i)] for i in range(len(images))),
                raw=result.raw,
            )
        return result
