"""Snapshots of a task's three states: LOCAL and SYNCED read from the catalog, REMOTE
from a listing of the API (`build_snapshot`, `RemoteSnapshot`), or from the catalog and a
GET per changed image (`catalog_snapshot`, the watcher's push). The result is the
planner's plain-data input (`load_task_state` -> `plan.TaskState`)."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localrepo.catalog import images as catalog_images
from localrepo.catalog.files import valid_files_under
from localrepo.catalog.labels import task_image_labels, task_label_names
from localrepo.catalog.sides import LOCAL, SYNCED
from localrepo.labelnames import folder_for_label
from localrepo.layout import TaskBinding, task_for
from localrepo.remote.api import RemoteAPI
from localrepo.sync.plan import REMOTE_KEY_PREFIX, TaskState
from localrepo.vocabulary import LABEL_TYPE, REGRESSION

# What localrepo writes into an uploaded image's meta_data.
META_HASH = "content_hash"  # "xxh3_128:<hex>"
META_NAME = "original_file_name"
HASH_PREFIX = "xxh3_128:"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def meta_hash(meta: Any) -> str | None:
    """The content hash an uploader recorded in meta_data, if it is one of ours."""
    if not isinstance(meta, dict):
        return None
    value = meta.get(META_HASH)
    if isinstance(value, str) and value.startswith(HASH_PREFIX):
        digest = value[len(HASH_PREFIX) :]
        if _HEX32.match(digest):
            return digest
    return None


@dataclass
class RemoteImageView:
    id: str
    key: str  # content hash, or remote:<id>
    labels: dict[str, float | None]  # this task's labels only
    other_labels: bool  # carries labels of other tasks too
    img_path: str
    meta_data: dict


@dataclass
class RemoteSnapshot:
    task_id: str
    labels: dict[str, str] = field(default_factory=dict)  # name -> remote label id
    images: dict[str, RemoteImageView] = field(default_factory=dict)  # by key
    problems: list[str] = field(default_factory=list)
    twins: int = 0  # labels read as another of the same name (see sync/twins.py)


def build_snapshot(
    task_id: str,
    task_type: str,
    attached: Iterable[Any],  # RemoteLabel-like: id, name, type
    images: Iterable[Any],  # RemoteImage-like: id, img_path, meta_data, labels
    hash_by_remote_id: dict[str, str],
) -> RemoteSnapshot:
    """Turn listed objects into the REMOTE view of one task (pure)."""
    snap = RemoteSnapshot(task_id)
    wanted_type = LABEL_TYPE[task_type]
    label_ids: dict[str, str] = {}
    # Oldest first: of two labels of one name (sync/twins.py) the oldest is the one the
    # snapshot links to, and images of the other count as carrying that name.
    for lab in sorted(attached, key=created_order):
        if getattr(lab, "negative_for_task", None):
            continue  # the multi_label task's own "none of the tags" label
        if lab.type != wanted_type:
            continue
        if folder_for_label(lab.name) is None:
            snap.problems.append(
                f"remote label {lab.name!r} cannot be a folder name (it is not in Unicode "
                "NFC form, or too long); its images are left alone. Rename it on the "
                "server to sync it."
            )
            continue
        if lab.name in snap.labels:  # a twin: read as the same label
            label_ids[lab.id] = lab.name
            snap.twins += 1
            continue
        snap.labels[lab.name] = lab.id
        label_ids[lab.id] = lab.name
    for img in images:
        task_labels: dict[str, float | None] = {}
        other = False
        canonical_first = sorted(  # of twins on one image, the oldest label's value
            img.labels, key=lambda lab: snap.labels.get(label_ids.get(lab.id, "")) != lab.id
        )
        for lab in canonical_first:
            name = label_ids.get(lab.id)
            if name is None:
                other = True
                continue
            if name in task_labels:
                continue  # a twin of a label the image carries already
            value = getattr(lab, "value", None)
            if task_type == REGRESSION:
                if value is None or not isinstance(value, int | float) or not math.isfinite(value):
                    snap.problems.append(
                        f"remote image {img.id}: label {name!r} has no usable value "
                        f"({value!r}); left alone"
                    )
                    continue
                task_labels[name] = float(value)
            else:
                task_labels[name] = None
        if not task_labels:
            continue
        meta = img.meta_data if isinstance(img.meta_data, dict) else {}
        key = hash_by_remote_id.get(img.id) or meta_hash(meta) or REMOTE_KEY_PREFIX + img.id
        if key in snap.images:
            snap.problems.append(
                f"remote images {snap.images[key].id} and {img.id} hold the same content; "
                f"using {snap.images[key].id}"
            )
            continue
        snap.images[key] = RemoteImageView(img.id, key, task_labels, other, img.img_path, meta)
    return snap


def created_order(label: Any) -> tuple[str, str]:
    """Oldest first: by the object's `created`, then its id."""
    raw = getattr(label, "raw", None) or {}
    return (str(raw.get("created") or ""), str(label.id))


# The largest page the API allows (localrepo-server: 1000): a 10,000-image listing is
# 10 requests, not 200.
LISTING_PAGE = 1000


def list_remote_labels(client: RemoteAPI, remote_task_id: str) -> list[Any]:
    """The labels attached to the task (two requests, whatever the task's size)."""
    task = client.get_task(remote_task_id)
    attached = client.list_labels(task=remote_task_id)
    if task.labels:
        wanted = set(task.labels)
        attached = [lab for lab in attached if lab.id in wanted]
    return list(attached)


def list_task_images(client: RemoteAPI, attached: list[Any]) -> list[Any]:
    """The images carrying any of the labels `attached` (the task's)."""
    ids = [lab.id for lab in attached]
    return list(client.iter_images(labels=ids, page_size=LISTING_PAGE)) if ids else []


def list_remote_task(client: RemoteAPI, remote_task_id: str) -> tuple[list[Any], list[Any]]:
    """(labels attached to the task, images carrying any of them): the remote's side of
    one task, as `repo verify` reads it."""
    attached = list_remote_labels(client, remote_task_id)
    return attached, list_task_images(client, attached)


# -- the watcher's push: the remote seen through the catalog -------------------------------
# More images to look at one by one than this, and listing the task is cheaper.
MAX_FETCH = 100


def changed_keys(
    base: Mapping[str, Mapping[str, float | None]], local: Mapping[str, Mapping[str, float | None]]
) -> set[str]:
    """Images whose local state is not the synced one: what a push has to look at."""
    return {k for k in set(base) | set(local) if dict(local.get(k, {})) != dict(base.get(k, {}))}


def catalog_snapshot(
    task_id: str,
    task_type: str,
    attached: Iterable[Any],
    fetched: Mapping[str, Any | None],
    base: Mapping[str, Mapping[str, float | None]],
    remote_ids: Mapping[str, str],
    hash_by_remote_id: dict[str, str],
) -> RemoteSnapshot:
    """The REMOTE view of one task without listing its images (pure).

    `fetched`: {key: the image as the server answers it now, or None when it is gone}
    for the images whose local state changed. Every other synced image is taken to be
    on the remote as it was synced (its base state): only the pull timer's listing
    learns what changed there meanwhile. A fetched image that the remote changed too is
    seen as it is now, so the planner merges or records a conflict, as after a listing.
    """
    snap = build_snapshot(
        task_id,
        task_type,
        attached,
        [img for img in fetched.values() if img is not None],
        hash_by_remote_id,
    )
    for key, labels in base.items():
        if key in fetched or key in snap.images or not labels:
            continue
        rid = remote_ids.get(key)
        if rid is not None:
            snap.images[key] = RemoteImageView(rid, key, dict(labels), False, "", {})
    return snap


def catalog_view_blocker(
    attached_names: Iterable[str],
    base_labels: Iterable[str],
    local_labels: Iterable[str],
    fetch: int,
    remote_known: bool,
) -> str | None:
    """Why a push must list the task after all (None: the catalog view will do).

    A label attached or detached on the remote since the last sync changes the state
    of images that were not fetched. A label whose folder is gone here is detached
    from the remote task unless some image keeps it, and only a listing shows the
    images the remote gave it meanwhile (found by the simulation, seed 20)."""
    if not remote_known:
        return "the task is not on the remote yet"
    if set(attached_names) != set(base_labels):
        return "the remote task's labels changed"
    if set(base_labels) - set(local_labels):
        return "a label folder is gone here"
    if fetch > MAX_FETCH:
        return f"{fetch} changed images (listing is cheaper)"
    return None


def local_files(
    conn: sqlite3.Connection, binding: TaskBinding, bindings: list[TaskBinding]
) -> dict[str, list[str]]:
    """{hash: [paths]} of the valid image files under the task root (deepest binding)."""
    out: dict[str, list[str]] = {}
    owned: dict[str, bool] = {}
    prefix = binding.root + "/" if binding.root else ""
    for path, h in valid_files_under(conn, prefix):
        folder = path.rpartition("/")[0]
        mine = owned.get(folder)
        if mine is None:  # every file of a folder belongs to the same task
            owner = task_for(path, bindings)
            mine = owned[folder] = owner is not None and owner.task_id == binding.task_id
        if mine:
            out.setdefault(h, []).append(path)
    return out


Labelled = dict[str, dict[str, float | None]]  # {image key: {label name: value}}


@dataclass(frozen=True)
class CatalogStates:
    """One task's SYNCED and LOCAL states, as the catalog holds them."""

    base: Labelled
    local: Labelled
    base_labels: frozenset[str]
    local_labels: frozenset[str]


def catalog_states(conn: sqlite3.Connection, task_id: int) -> CatalogStates:
    return CatalogStates(
        task_image_labels(conn, task_id, SYNCED),
        task_image_labels(conn, task_id, LOCAL),
        task_label_names(conn, task_id, SYNCED),
        task_label_names(conn, task_id, LOCAL),
    )


def load_task_state(
    conn: sqlite3.Connection,
    binding: TaskBinding,
    bindings: list[TaskBinding],
    snapshot: RemoteSnapshot,
    *,
    states: CatalogStates | None = None,
) -> tuple[TaskState, dict[str, list[str]]]:
    """The planner's input for one task, and the task's files by hash. `states`: what
    `catalog_states` read already in this run (the catalog has not changed since)."""
    files = local_files(conn, binding, bindings)
    states = states or catalog_states(conn, binding.task_id)
    known_remote = catalog_images.known_remote(conn)
    created = catalog_images.created_here(conn)
    state = TaskState(
        task_type=binding.type,
        base=states.base,
        local=states.local,
        remote={k: v.labels for k, v in snapshot.images.items()},
        local_files=frozenset(files),
        remote_exists=frozenset(known_remote | set(snapshot.images)),
        remote_other_labels=frozenset(k for k, v in snapshot.images.items() if v.other_labels),
        created_here=frozenset(created),
        base_labels=states.base_labels,
        local_labels=states.local_labels,
        remote_labels=frozenset(snapshot.labels),
        remote_listing_empty=not snapshot.images,
    )
    return state, files
