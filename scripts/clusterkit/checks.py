"""What the cluster run must end with, checked on what was observed (no I/O here).

Contract: `violations(observed)` lists, in words, every way the end state breaks the
promises of issue 22 item 6; empty when none:

1. every image whose upload was acknowledged is on the server with its bytes: an SDK
   upload by its id and the sha256 of the bytes sent, a clone's by its content hash
   (each image in a clone after a sync that exited 0);
2. every training whose `train/` answered `"queued": true` ran to TRAINED exactly once:
   one job for its version, done, and no worker logged that version trained twice;
3. all clones hold the same images under the same labels, and so does the server (the
   images of the clones' task, by content hash).

`counts(observed)` are the figures the script prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerImage:
    id: str
    sha256: str  # of the stored bytes (in the media path)
    content_hash: str | None  # the client's xxh3 hash, from meta_data, if it sent one
    labels: frozenset[str]
    bytes_ok: bool  # its media answered bytes of that sha256


@dataclass(frozen=True)
class Job:
    task_id: str
    version: int
    status: str  # training_jobs.status: queued, running, done, failed
    model_status: str  # models.train_status: WAITING, IN_TRAINING, TRAINED, ERROR
    attempts: int


@dataclass(frozen=True)
class Observed:
    sdk_acked: Mapping[str, str]  # image id -> sha256 of the bytes sent
    clone_acked: frozenset[str]  # content hashes covered by a sync that exited 0
    trainings_acked: tuple[tuple[str, int], ...]  # (task id, version) queued
    server_images: tuple[ServerImage, ...]
    jobs: tuple[Job, ...]
    trained_logged: tuple[tuple[str, int], ...]  # one per "trained" line of any worker
    clones: Mapping[str, Mapping[str, str]]  # clone -> {content hash: label folder}
    clone_task_labels: frozenset[str]


def _images(o: Observed) -> list[str]:
    out = []
    by_id = {img.id: img for img in o.server_images}
    for image_id, sha in sorted(o.sdk_acked.items()):
        img = by_id.get(image_id)
        if img is None:
            out.append(f"SDK upload {image_id} was acknowledged but is not on the server")
        elif img.sha256 != sha or not img.bytes_ok:
            out.append(f"SDK upload {image_id}: the server does not serve the bytes sent")
    by_hash = {img.content_hash: img for img in o.server_images if img.content_hash}
    for digest in sorted(o.clone_acked):
        img = by_hash.get(digest)
        if img is None:
            out.append(f"clone image {digest} was synced but is not on the server")
        elif not img.bytes_ok:
            out.append(f"clone image {digest} ({img.id}): the server has lost its bytes")
    return out


def _trainings(o: Observed) -> list[str]:
    out = []
    jobs: dict[tuple[str, int], list[Job]] = {}
    for job in o.jobs:
        jobs.setdefault((job.task_id, job.version), []).append(job)
    for key, found in sorted(jobs.items()):
        if len(found) > 1:
            out.append(f"task {key[0]} version {key[1]} has {len(found)} training jobs")
    for (task, version), times in sorted(Counter(o.trained_logged).items()):
        if times > 1:
            out.append(f"task {task} version {version} was trained {times} times")
    for key in o.trainings_acked:
        found = jobs.get(key, [])
        if not found:
            out.append(f"queued training of task {key[0]} version {key[1]} has no job")
        elif any(j.status != "done" or j.model_status != "TRAINED" for j in found):
            states = ", ".join(f"{j.status}/{j.model_status}" for j in found)
            out.append(f"queued training of task {key[0]} version {key[1]} ended {states}")
    return out


def _agreement(o: Observed) -> list[str]:
    out = []
    names = sorted(o.clones)
    if not names:
        return out
    first = dict(o.clones[names[0]])
    for name in names[1:]:
        other = dict(o.clones[name])
        if other != first:
            only_a = len(first.keys() - other.keys())
            only_b = len(other.keys() - first.keys())
            relabelled = sum(1 for h in first.keys() & other.keys() if first[h] != other[h])
            out.append(
                f"clones {names[0]} and {name} disagree: {only_a} image(s) only in the "
                f"first, {only_b} only in the second, {relabelled} under other labels"
            )
    server: dict[str, str] = {}
    for img in o.server_images:
        mine = img.labels & o.clone_task_labels
        if mine and img.content_hash:
            server[img.content_hash] = ",".join(sorted(mine))
    if server != first:
        missing = len(first.keys() - server.keys())
        extra = len(server.keys() - first.keys())
        relabelled = sum(1 for h in first.keys() & server.keys() if first[h] != server[h])
        out.append(
            f"the server and clone {names[0]} disagree: {missing} image(s) only in the "
            f"clone, {extra} only on the server, {relabelled} under other labels"
        )
    return out


def violations(o: Observed) -> list[str]:
    return _images(o) + _trainings(o) + _agreement(o)


def counts(o: Observed) -> dict[str, int]:
    present_ids = {img.id for img in o.server_images if img.bytes_ok}
    present_hashes = {img.content_hash for img in o.server_images if img.bytes_ok}
    done = {(j.task_id, j.version) for j in o.jobs if j.status == "done"}
    return {
        "images acknowledged": len(o.sdk_acked) + len(o.clone_acked),
        "images acknowledged and present": len(o.sdk_acked.keys() & present_ids)
        + len(o.clone_acked & present_hashes),
        "images on the server": len(o.server_images),
        "trainings queued": len(o.trainings_acked),
        "trainings done": len(done & set(o.trainings_acked)),
        "trainings run again after a kill": sum(1 for j in o.jobs if j.attempts > 1),
        "clones": len(o.clones),
        "images in each clone": len(next(iter(o.clones.values()), {})),
    }
