"""Endpoints: training images (list, count, get, upload with the duplicate answer
adopted, label links and values, update, delete, bulk update)."""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .answers import duplicate_image_id, json_or_none
from .models import RemoteImage
from .pagination import Pager

log = logging.getLogger("localrepo.remote")


class ImageEndpoints(Pager):
    def iter_images(
        self,
        *,
        labels: Sequence[str] | None = None,
        not_labels: Sequence[str] | None = None,
        test: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteImage]:
        """Every training image matching the filters (label ids: any of `labels`, none
        of `not_labels`)."""
        params = {
            "labels": list(labels) if labels else None,
            "not_labels": list(not_labels) if not_labels else None,
            "test": test,
            "page_size": page_size,
        }
        for item in self._items("training-image/", params):
            yield RemoteImage.from_api(item)

    def count_images(self, *, labels: Sequence[str]) -> int:
        """How many training images carry any of `labels` (one small request)."""
        body = self._request(
            "GET", "training-image/", params={"labels": list(labels), "page_size": 1}
        )
        if isinstance(body, Mapping) and isinstance(body.get("count"), int):
            return int(body["count"])
        results = body.get("results") if isinstance(body, Mapping) else body
        return len(results) if isinstance(results, list) else 0

    def list_images(self, **filters: Any) -> list[RemoteImage]:
        return list(self.iter_images(**filters))

    def get_image(self, image_id: str) -> RemoteImage:
        return RemoteImage.from_api(self._request("GET", f"training-image/{image_id}/"))

    def upload_image(
        self,
        data: bytes,
        *,
        meta_data: Mapping[str, Any] | None = None,
        noresize: bool = False,
        test_image: bool = False,
    ) -> tuple[RemoteImage, bool]:
        """Upload image bytes. Returns ``(image, created)``: the duplicate answer (these
        bytes are already in the workspace) adopts the existing image with
        ``created=False``. Safe to repeat, so retried like a GET."""
        path = "training-image/"
        op = self._op("POST", path)
        body = self._body(
            {
                "base64": base64.b64encode(data).decode("ascii"),
                "meta_data": dict(meta_data or {}),
                "noresize": bool(noresize),
                "test_image": bool(test_image),
            }
        )
        response = self._call("POST", path, json=body)
        if response.status_code in (400, 409):
            existing = duplicate_image_id(json_or_none(response))
            if existing:
                log.debug("%s: duplicate of %s", op, existing)
                return self.get_image(existing), False
        return RemoteImage.from_api(self._parse(response, op)), True

    @staticmethod
    def _maybe_image(body: Any) -> RemoteImage | None:
        if isinstance(body, Mapping) and "id" in body and ("img_path" in body or "labels" in body):
            return RemoteImage.from_api(body)
        return None

    def add_image_label(
        self, image_id: str, label_id: str, value: float | None = None
    ) -> RemoteImage | None:
        """Link a label (with `value` for a value label). Returns the image when the
        server answers with it (localrepo-server does; the hosted service may not)."""
        body: dict[str, Any] = {"label_id": label_id}
        if value is not None:
            body["value"] = _finite(value)
        answer = self._request("POST", f"training-image/{image_id}/add-label/", json=body)
        return self._maybe_image(answer)

    def remove_image_label(self, image_id: str, label_id: str) -> RemoteImage | None:
        answer = self._request(
            "POST", f"training-image/{image_id}/remove-label/", json={"label_id": label_id}
        )
        return self._maybe_image(answer)

    def update_image_value(self, image_id: str, label_id: str, value: float) -> RemoteImage | None:
        answer = self._request(
            "POST",
            f"training-image/{image_id}/update-value/",
            json={"label_id": label_id, "value": _finite(value)},
        )
        return self._maybe_image(answer)

    def update_image(
        self,
        image_id: str,
        *,
        meta_data: Mapping[str, Any] | None = None,
        test_image: bool | None = None,
    ) -> RemoteImage:
        """PUT: `meta_data` replaces the whole object."""
        body: dict[str, Any] = {}
        if meta_data is not None:
            body["meta_data"] = dict(meta_data)
        if test_image is not None:
            body["test_image"] = bool(test_image)
        return RemoteImage.from_api(self._request("PUT", f"training-image/{image_id}/", json=body))

    def delete_image(self, image_id: str) -> bool:
        """True if deleted, False if it was already gone."""
        return self._delete(f"training-image/{image_id}/")

    def bulk_update_images(
        self,
        *,
        images: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        labels_add: Sequence[str] = (),
        labels_remove: Sequence[str] = (),
        mark_test: bool = False,
        unmark_test: bool = False,
    ) -> int:
        """``training-image/update/`` on images (ids) or on a label filter; returns the
        number of images touched."""
        if not images and not labels:
            raise ValueError("give images (ids) or labels (a filter)")
        body: dict[str, Any] = {}
        if images:
            body["images"] = list(images)
        if labels:
            body["labels"] = list(labels)
        if labels_add:
            body["labels-add"] = list(labels_add)
        if labels_remove:
            body["labels-remove"] = list(labels_remove)
        if mark_test:
            body["mark-test"] = True
        if unmark_test:
            body["unmark-test"] = True
        answer = self._request("POST", "training-image/update/", json=body)
        count = answer.get("count") if isinstance(answer, Mapping) else None
        return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _finite(value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a label value must be a finite number, got {value!r}")
    return number
