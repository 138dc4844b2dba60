"""The executor's remote side: every request a sync run makes for one task (design
section 3, "Push" and "Crashes"); sync/execute.py decides when each is made.

Contract: `RemoteSide` holds the task's label ids by name (`label_ids`, the dict the
executor records them from, shared with it) and makes the requests of one op at a time:
labels created or adopted and detached (`ensure_label`, `detach_label`, on the calling
thread before and after the images), and per image, on the executor's workers: an
upload (`upload`), a relabel (`relabel`), an unlink or delete (`remove`), the bytes of
a download, checked before they reach the disk (`fetch`), the server's word before a
local file goes to the trash (`confirm_removal`), and one label set linked to many
uploads at once (`bulk_link`). Each writes what it did into the image's `ImageResult`
(remote id, `remote_done`, its count); none touches the catalog or the disk. Crash
points (sync/faults.py) sit around every request that changes the server.

An upload that meets its bytes on the server already, labelled in this task with
labels the plan did not see, raises `Deferred`: linking blind could give a multi_class
image two categories, so the engine re-plans it from a listing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from localrepo.errors import LocalrepoError
from localrepo.remote.errors import NotFoundError
from localrepo.scan.hashing import check_image
from localrepo.sync.faults import crash_point
from localrepo.sync.snapshot import HASH_PREFIX, META_HASH, META_NAME, list_remote_labels

if TYPE_CHECKING:
    from localrepo.remote.api import RemoteAPI
    from localrepo.sync import plan as P
    from localrepo.sync.results import ImageResult
    from localrepo.sync.snapshot import RemoteImageView


class Deferred(Exception):  # a signal, not an error
    """An upload met a labelled duplicate: this image's ops end here (see Executor)."""


class RemoteSide:
    def __init__(
        self,
        client: RemoteAPI,
        remote_task_id: str,
        label_type: str,
        label_ids: dict[str, str],
        *,
        noresize: bool,
        share_labels: bool,
    ) -> None:
        """`label_ids`: name -> remote id, shared with the executor (which records the
        labels it creates there). `share_labels`: a label of this name attached to
        another task may be adopted (the user asked for it; by default each task
        creates its own)."""
        self.client = client
        self.remote_task_id = remote_task_id
        self.label_type = label_type
        self.label_ids = label_ids
        self.noresize = noresize
        self.share_labels = share_labels
        self._lock = threading.Lock()
        self._attached_now: set[str] = set()  # see _task_label_ids
        self._attached_read = False

    # -- labels (the calling thread) --------------------------------------------------------
    def ensure_label(self, name: str) -> str:
        """Create or adopt the label `name` and attach it to the task; its remote id."""
        crash_point("before_http")
        label = self.client.ensure_task_label(
            self.remote_task_id, name, self.label_type, share=self.share_labels
        )
        self.client.add_task_label(self.remote_task_id, label.id)
        crash_point("after_http")
        return label.id

    def detach_label(self, name: str) -> None:
        label_id = self.label_ids.get(name)
        if label_id is not None:
            self.client.remove_task_label(self.remote_task_id, label_id)

    def bulk_link(self, names: tuple[str, ...], remote_ids: list[str]) -> None:
        """Link the labels `names` to every image of `remote_ids`, in one request."""
        label_ids = [self.label_id(name) for name in names]
        crash_point("before_http")
        self.client.bulk_update_images(images=remote_ids, labels_add=label_ids)
        crash_point("after_http")

    # -- one image (the executor's workers) -------------------------------------------------
    def upload(
        self, result: ImageResult, op: P.Op, data: bytes, file_name: str, *, link_later: bool
    ) -> None:
        """Upload the image's bytes (read from `file_name`), then link the op's target,
        unless `link_later` (the executor links many uploads at once: bulk_link)."""
        meta = {META_HASH: HASH_PREFIX + result.key, META_NAME: file_name}
        crash_point("before_http")
        image, created = self.client.upload_image(data, meta_data=meta, noresize=self.noresize)
        crash_point("after_http")
        result.remote_id = image.id
        result.created_here = created
        if not created:
            seen = {self.label_ids.get(name) for name in op.before_map}
            unseen = {lab.id for lab in image.labels} - seen
            if unseen and unseen & self._task_label_ids(fresh=bool(unseen - self._known_ids())):
                result.deferred = True
                raise Deferred
        result.counts["uploaded"] = 1
        if link_later:
            result.link_later = op.target_map
            return
        self._link_labels(result.remote_id, {}, op.target_map)
        result.remote_done = True

    def relabel(self, result: ImageResult, op: P.Op) -> None:
        """Link and unlink labels from the op's `before` to its `target` (NotFoundError:
        the remote image is gone)."""
        assert result.remote_id is not None
        crash_point("before_http")
        self._link_labels(result.remote_id, op.before_map, op.target_map)
        crash_point("after_http")
        result.remote_done = True
        result.counts["relabelled_remote"] = 1

    def remove(self, result: ImageResult, op: P.Op) -> None:
        """Unlink the task's labels, and delete the image when the op says so."""
        if result.remote_id is not None:
            crash_point("before_http")
            try:
                self._link_labels(result.remote_id, op.before_map, {})
                if op.delete_image:
                    self.client.delete_image(result.remote_id)
                    result.deleted_remote = True
            except NotFoundError:
                result.deleted_remote = op.delete_image
            crash_point("after_http")
        result.remote_done = True
        result.counts["deleted_remote" if result.deleted_remote else "unlinked_remote"] = 1

    def fetch(self, view: RemoteImageView) -> tuple[bytes, tuple[int, int, str] | None]:
        """A remote image's bytes and (width, height, format), refused (LocalrepoError)
        unless they are a valid image."""
        data = self.client.download(view.img_path)
        reason, detail, dims = check_image(data)
        if reason is not None:
            raise LocalrepoError(f"remote image {view.id}: {reason} ({detail}); not downloaded")
        return data, dims

    def confirm_removal(self, remote_id: str | None) -> None:
        """Ask the server before deleting a local file for a remote delete.

        A paginated listing is no snapshot: an image can slip between pages while others
        edit the task. Only an image that is really gone, or really carries none of the
        task's labels any more, takes its local file to the trash.
        """
        if remote_id is None:
            return
        try:
            image = self.client.get_image(remote_id)
        except NotFoundError:
            return
        task_label_ids = set(self.label_ids.values())
        if any(lab.id in task_label_ids for lab in image.labels):
            raise LocalrepoError(
                f"remote image {remote_id} was missing from the listing but still carries "
                "labels of this task; its local file is left alone (the next sync sees it)"
            )

    def label_id(self, name: str) -> str:
        with self._lock:
            label_id = self.label_ids.get(name)
        if label_id is None:  # planned with ENSURE_LABEL, which failed: cannot link
            raise LocalrepoError(f"label {name!r} does not exist on the server")
        return label_id

    def _known_ids(self) -> set[str]:
        with self._lock:
            return set(self.label_ids.values()) | self._attached_now

    def _task_label_ids(self, *, fresh: bool) -> set[str]:
        """The ids of the labels attached to the task: those the plan knew, and with
        `fresh` those attached now (read once a run: a label another clone attached
        since the listing, say the category it gave the same bytes)."""
        if fresh and not self._attached_read:
            attached = {lab.id for lab in list_remote_labels(self.client, self.remote_task_id)}
            with self._lock:
                self._attached_now |= attached
                self._attached_read = True
        return self._known_ids()

    def _link_labels(
        self, image_id: str, before: dict[str, float | None], target: dict[str, float | None]
    ) -> None:
        for name in sorted(set(before) - set(target)):
            label_id = self.label_ids.get(name)
            if label_id is not None:
                try:
                    self.client.remove_image_label(image_id, label_id)
                except NotFoundError:
                    pass  # already unlinked
        for name, value in sorted(target.items()):
            label_id = self.label_id(name)
            if name not in before:
                self.client.add_image_label(image_id, label_id, value)
            elif before[name] != value and value is not None:
                self.client.update_image_value(image_id, label_id, value)
