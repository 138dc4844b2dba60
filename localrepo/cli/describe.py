"""What happened, or will happen, to which file, in the user's words (issue 18, "paths,
not internals"): `repo status`, `repo sync -n` / `-v` and `repo log` name files, labels
and values, never hashes or the planner's op names.

Contract: pure functions, no I/O. Plain data in (label maps, {image key: paths}, a
plan's ops, journal rows); frozen `FileChange`s out, one per file and side. Internal
work (recording an image as synced, a superseded op) maps to no change at all. The
text of a change is `change_text` (status and log) or `action_line` (sync); both name
the file first, then the labels or values before and after (`labels_text`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from localrepo.catalog.journal import OP_PREFIX, SUPERSEDED
from localrepo.sync import plan as P

Labels = Mapping[str, float | None]

# What happened to a file (the kinds, in the order status lists them).
NEW = "new"
RELABELLED = "relabelled"
VALUE = "value changed"
MOVED = "moved"
MODIFIED = "modified"
DELETED = "deleted"
DAMAGED = "damaged"
CONFLICT = "conflict"
LABEL_RENAMED = "label renamed"
# Labels (a task's label on the server, its folder on disk) rather than files.
LABEL_ADDED = "label added"
LABEL_REMOVED = "label removed"
KINDS = (
    NEW,
    RELABELLED,
    VALUE,
    MOVED,
    MODIFIED,
    DELETED,
    DAMAGED,
    CONFLICT,
    LABEL_RENAMED,
    LABEL_ADDED,
    LABEL_REMOVED,
)

# Where it happened: on disk here, or on the server.
LOCAL = "local"
REMOTE = "remote"

NOT_ON_DISK = "(a file no longer on disk)"
NO_LABEL = "(none)"  # one side's labels when it has none  # the path of an image no journal named


@dataclass(frozen=True)
class FileChange:
    kind: str  # one of KINDS
    path: str  # relative to the repository root (a label's folder for label kinds)
    old: str | None = None  # labels / values before (`labels_text`), when known
    new: str | None = None  # labels / values after
    side: str | None = None  # LOCAL | REMOTE | None (a conflict: both)
    old_path: str | None = None  # a move's source
    detail: str | None = None  # why a file is damaged, how many images a rename moved
    delete_image: bool = True  # DELETED on the server: the image goes (else: its labels)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "side": self.side,
            "path": self.path,
            "old_path": self.old_path,
            "old": self.old,
            "new": self.new,
            "detail": self.detail,
            "delete_image": self.delete_image,
        }


def labels_text(labels: Labels) -> str:
    """One side's labels in the user's words: 'cat'; tags 'cat, dog'; a regression
    value as 'label=value' ('price=20'); '(none)' for no label."""
    if not labels:
        return NO_LABEL
    return ", ".join(
        name if value is None else f"{name}={value:g}" for name, value in sorted(labels.items())
    )


def _label_change(old: Labels, new: Labels) -> str:
    """RELABELLED, or VALUE when only values changed (the same label names)."""
    return VALUE if old and set(old) == set(new) else RELABELLED


# -- changes not yet synced (repo status) -------------------------------------------------


def pending_changes(
    base: Mapping[str, Labels],
    local: Mapping[str, Labels],
    paths: Mapping[str, Sequence[str]],
    last_seen: Mapping[str, str],
    moves: Mapping[str, tuple[str, str]],
    damaged: Iterable[str],
) -> list[FileChange]:
    """The task's local changes since the last sync, one per image: `base` and `local`
    are {image key: labels} (synced, on disk now), `paths` {key: files now},
    `last_seen` {key: where a file gone from disk was last seen}, `moves` {key:
    (first source, last target)} of the moves not synced yet, `damaged` the keys of
    images whose files are damaged (listed apart, held back). A file deleted and a new
    one at the same path is one MODIFIED change. (`image_pending` and `pending_change`
    are this for one image, `fold_modified` the folding: `repo status` streams them.)"""
    skip = set(damaged)
    out: list[FileChange] = []
    for key in sorted(set(base) | set(local)):
        if key in skip:
            continue
        b, now = base.get(key), local.get(key)
        found = image_pending(b, now, paths.get(key, ()), last_seen.get(key), moves.get(key))
        if found is not None:
            out.append(pending_change(*found, b or {}, now or {}))
    deleted_at = {c.path for c in out if c.kind == DELETED}
    new_at = {c.path: c.new for c in out if c.kind == NEW and c.path in deleted_at}
    kept = [c for c in out if c.kind != NEW or c.path not in new_at]
    return sort_changes(fold_modified(kept, new_at))


def image_pending(
    b: Labels | None,
    now: Labels | None,
    here: Sequence[str],
    seen: str | None,
    moved: tuple[str, str] | None,
) -> tuple[str, str, str | None] | None:
    """(kind, path, source of a move) of one image's change since the last sync, None
    if it has none: `b` and `now` its labels synced and on disk now (None: the image
    was not there), `here` its files now, `seen` where it was last seen, `moved` (first
    source, last target) of its moves not synced yet. What `pending_change` builds; a
    NEW change at the path of a DELETED one is MODIFIED (`fold_modified`)."""
    path = here[0] if here else (seen or NOT_ON_DISK)
    old_path = moved[0] if moved and moved[0] != path else None
    if b is None and now is not None:  # new since the last sync, labelled or not
        return NEW, path, old_path
    b, now = b or {}, now or {}
    if b == now:
        return (MOVED, path, old_path) if old_path is not None else None
    if not now and not here:
        return DELETED, path, old_path
    return _label_change(b, now), path, old_path


def pending_change(
    kind: str, path: str, old_path: str | None, b: Labels, now: Labels
) -> FileChange:
    """The change `image_pending` found, in the user's words."""
    if kind == NEW:
        return FileChange(NEW, path, new=labels_text(now), side=LOCAL)
    if kind == MOVED:
        return FileChange(MOVED, path, side=LOCAL, old_path=old_path)
    if kind == DELETED:
        return FileChange(DELETED, path, old=labels_text(b), side=LOCAL)
    return FileChange(kind, path, labels_text(b), labels_text(now), LOCAL, old_path)


def fold_modified(
    changes: Iterable[FileChange], new_at: Mapping[str, str | None]
) -> list[FileChange]:
    """New bytes at a deleted file's path: one MODIFIED change, as git says. `new_at`
    {path: the new file's labels} of the NEW changes at a DELETED one's path (the last
    of them; they are left out of `changes`); the first DELETED change at such a path
    becomes MODIFIED, in its place."""
    out: list[FileChange] = []
    folded: set[str] = set()
    for c in changes:
        if c.kind == DELETED and c.path in new_at and c.path not in folded:
            folded.add(c.path)
            c = FileChange(MODIFIED, c.path, c.old, new_at[c.path], LOCAL)
        out.append(c)
    return out


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def sort_changes(changes: Iterable[FileChange]) -> list[FileChange]:
    return sorted(changes, key=lambda c: (_KIND_ORDER[c.kind], c.path, c.side or ""))


# A change's place in `sort_changes` order, then where it came from (ties keep it).
SortKey = tuple[int, str, str, tuple[Any, ...]]


def sort_key(kind: str, path: str, side: str | None, came: tuple[Any, ...]) -> SortKey:
    return (_KIND_ORDER[kind], path, side or "", came)


@dataclass(frozen=True)
class Listing:
    """What `repo status` lists: `changes` the first `cap` of each kind, in
    `sort_changes` order, and `counts` {kind: how many there are}."""

    changes: tuple[FileChange, ...]
    counts: Mapping[str, int]


def first_of_each_kind(
    found: Iterable[tuple[SortKey, Callable[[], FileChange]]], cap: int | None
) -> Listing:
    """The Listing of changes given as (sort key, how to build it): every change is
    counted, and only those among the first `cap` of their kind (None: all) are built.
    Sorted by key, as sort_changes sorts them in the order they came (`sort_key`'s
    `came`). Holds at most 2 x `cap` changes of a kind at a time, however many come."""
    counts: Counter[str] = Counter()
    kept: dict[int, list[tuple[SortKey, Callable[[], FileChange]]]] = {}
    worst: dict[int, SortKey] = {}  # a kind's cap-th key once trimmed: later ones beyond
    for key, build in found:
        kind = key[0]
        counts[KINDS[kind]] += 1
        if cap is not None and kind in worst and key >= worst[kind]:
            continue
        group = kept.setdefault(kind, [])
        group.append((key, build))
        if cap is not None and len(group) >= 2 * cap + 16:
            group.sort(key=_by_key)
            del group[cap:]
            worst[kind] = group[-1][0]
    out: list[FileChange] = []
    for kind in sorted(kept):
        out += [build() for _key, build in sorted(kept[kind], key=_by_key)[:cap]]
    return Listing(tuple(out), dict(counts))


def _by_key(item: tuple[SortKey, Any]) -> SortKey:
    return item[0]


def conflict_change(
    path: str | None, local: Labels, remote: Labels, decided: str | None = None
) -> FileChange:
    """An open conflict: the file, with the state on each side, and the side `repo
    resolve` chose for it (`local` / `remote`) when it is decided but not sent yet."""
    return FileChange(
        CONFLICT, path or NOT_ON_DISK, labels_text(local), labels_text(remote), detail=decided
    )


DECIDED_TEXT = {
    "local": "decided: this side wins at the next 'repo sync'",
    "remote": "decided: the server's side wins at the next 'repo sync'",
}


# -- what a sync does (repo sync -n, -v) --------------------------------------------------


def plan_changes(ops: Iterable[P.Op], paths: Mapping[str, Sequence[str]]) -> list[FileChange]:
    """One change per file and side a plan's ops make, in the plan's order (by path
    within a kind of op); recording
    an image as synced (both sides agree already) is none. `paths`: {image key: its
    files, or where it was last seen, or where a download will put it}."""
    out: list[tuple[int, str, FileChange]] = []
    for op in ops:
        change = op_change(op.kind, op, _first(paths.get(op.key or "")))
        if change is not None:
            out.append((P.OP_ORDER.index(op.kind), change.path, change))
    out.sort(key=lambda item: item[:2])  # each kind of op by path, not by image hash
    return [change for _order, _path, change in out]


def _first(paths: Sequence[str] | None) -> str:
    return paths[0] if paths else NOT_ON_DISK


_LABEL_OPS = {
    P.ENSURE_LABEL: (LABEL_ADDED, REMOTE),
    P.DETACH_LABEL: (LABEL_REMOVED, REMOTE),
    P.MAKE_FOLDER: (LABEL_ADDED, LOCAL),
    P.REMOVE_FOLDER: (LABEL_REMOVED, LOCAL),
}


def op_change(kind: str, op: P.Op, path: str) -> FileChange | None:
    """The user-level change of one op (of plan kind `kind`) on the file at `path`."""
    if kind in _LABEL_OPS:
        what, side = _LABEL_OPS[kind]
        return FileChange(what, op.label or "", side=side)
    before, target = op.before_map, op.target_map
    if kind == P.UPLOAD:
        return FileChange(NEW, path, new=labels_text(target), side=REMOTE)
    if kind == P.DOWNLOAD:
        return FileChange(NEW, path, new=labels_text(target), side=LOCAL)
    if kind in (P.SET_REMOTE, P.SET_LOCAL):
        side = REMOTE if kind == P.SET_REMOTE else LOCAL
        old = labels_text(before) if op.before else None
        return FileChange(_label_change(before, target), path, old, labels_text(target), side)
    if kind == P.REMOVE_REMOTE:
        old = labels_text(before) if op.before else None
        return FileChange(DELETED, path, old=old, side=REMOTE, delete_image=op.delete_image)
    if kind == P.TRASH_LOCAL:
        old = labels_text(before) if op.before else None
        return FileChange(DELETED, path, old=old, side=LOCAL)
    return None  # SET_BASE: bookkeeping, both sides agree already


# -- the journal (repo log) ---------------------------------------------------------------


@dataclass(frozen=True)
class JournalRow:
    kind: str  # an observation (scan/changes.py) or OP_PREFIX + a plan op kind
    status: str
    path: str | None
    old_path: str | None
    key: str | None  # image hash
    detail: Mapping[str, Any] | None


def journal_change(
    row: JournalRow,
    path_of: Callable[[str | None], str | None],
    label_of: Callable[[str], str | None],
) -> FileChange | None:
    """The user-level change a journal row records, or None for internal bookkeeping
    (an image recorded as synced, an interrupted op whose work a later run re-derived).
    `path_of(hash)`: a file of the image (now, or where last seen); `label_of(path)`:
    the label its folder gives."""
    if row.kind.startswith(OP_PREFIX):
        return _op_row_change(row, path_of)
    detail = dict(row.detail or {})
    path = row.path or path_of(row.key) or row.old_path or NOT_ON_DISK

    def label(p: str | None) -> str:
        return (label_of(p) if p else None) or "(none)"

    if row.kind == "added":
        return FileChange(NEW, path, new=label(row.path), side=LOCAL)
    if row.kind == "deleted":
        gone = row.old_path or path
        return FileChange(DELETED, gone, old=label(gone), side=LOCAL)
    if row.kind == "moved":
        old, new = label(row.old_path), label(row.path)
        kind = MOVED if old == new else RELABELLED
        shown = (None, None) if kind == MOVED else (old, new)
        return FileChange(kind, path, *shown, side=LOCAL, old_path=row.old_path)
    if row.kind == "modified":
        if detail.get("invalid"):
            return FileChange(DAMAGED, path, side=LOCAL, detail=str(detail["invalid"]))
        return FileChange(MODIFIED, path, side=LOCAL)
    if row.kind == "value_changed":
        old = {k: v[0] for k, v in detail.items() if isinstance(v, list) and len(v) == 2}
        new = {k: v[1] for k, v in detail.items() if isinstance(v, list) and len(v) == 2}
        return FileChange(VALUE, path, labels_text(old), labels_text(new), LOCAL)
    if row.kind == "labels_changed":
        old_names = dict.fromkeys(detail.get("from") or [])
        new_names = dict.fromkeys(detail.get("to") or [])
        return FileChange(RELABELLED, path, labels_text(old_names), labels_text(new_names), LOCAL)
    if row.kind == "label_renamed":
        n = detail.get("images")
        how_many = f"{n} images" if n is not None else None
        return FileChange(
            LABEL_RENAMED, row.path or "", side=LOCAL, old_path=row.old_path, detail=how_many
        )
    return None


def _op_row_change(
    row: JournalRow, path_of: Callable[[str | None], str | None]
) -> FileChange | None:
    if row.status == SUPERSEDED:
        return None
    detail = dict(row.detail or {})
    target = detail.get("target") or {}
    before = detail.get("before")
    op = P.Op(
        row.kind[len(OP_PREFIX) :],
        row.key,
        label=detail.get("label"),
        before=P.frozen(before or {}),
        target=P.frozen(target),
        delete_image=bool(detail.get("delete_image")),
    )
    change = op_change(op.kind, op, row.path or path_of(row.key) or NOT_ON_DISK)
    if change is not None and before is None and change.old == "(none)":
        # Rows journalled before `before` was recorded: what it was is not known.
        change = replace(change, old=None)
    return change


# -- text ---------------------------------------------------------------------------------


def _suffix(c: FileChange) -> str:
    if c.kind == CONFLICT:
        decided = f"; {DECIDED_TEXT[c.detail]}" if c.detail in DECIDED_TEXT else ""
        return f" (here {c.old}, on the server {c.new}{decided})"
    if c.kind == DAMAGED:
        return f" ({c.detail})" if c.detail else ""
    if c.kind == LABEL_RENAMED:
        what = f"{c.old_path}/ -> {c.path}/"
        return f": {what} ({c.detail})" if c.detail else f": {what}"
    parts: list[str] = []
    if c.kind == MODIFIED:
        parts.append("new content")
        if c.old == c.new:
            return f" ({parts[0]})"
    if c.old_path and c.kind in (MOVED, RELABELLED):
        parts.append(f"from {c.old_path}")
    if c.old is not None and c.new is not None:
        parts.append(f"{c.old} -> {c.new}")
    elif c.new is not None:
        if c.kind in (RELABELLED, VALUE):
            parts.append(f"now {c.new}")
        else:
            parts.append("no label" if c.new == NO_LABEL else c.new)
    elif c.old is not None:
        parts.append(f"was {c.old}")
    return f" ({'; '.join(parts)})" if parts else ""


def change_text(c: FileChange) -> str:
    """'cats/a.jpg (cats)', 'dogs/b.jpg (from cats/b.jpg; cats -> dogs)': the file and
    what changed, without the kind (status groups by kind; log prints it before)."""
    if c.kind == LABEL_RENAMED:
        return _suffix(c)[2:]
    if c.kind in (LABEL_ADDED, LABEL_REMOVED):
        return f"{c.path}/" if c.side == LOCAL else c.path
    return c.path + _suffix(c)


# (kind, side) -> (what a sync will do, what it did): `repo sync -n` / `-v`, `repo log`.
_ACTIONS: dict[tuple[str, str | None], tuple[str, str]] = {
    (NEW, REMOTE): ("upload", "uploaded"),
    (NEW, LOCAL): ("download", "downloaded"),
    (RELABELLED, REMOTE): ("relabel on the server", "relabelled on the server"),
    (VALUE, REMOTE): ("change value on the server", "value changed on the server"),
    (DELETED, REMOTE): ("delete on the server", "deleted on the server"),
    (RELABELLED, LOCAL): ("relabel here", "relabelled here"),
    (VALUE, LOCAL): ("change value here", "value changed here"),
    (DELETED, LOCAL): ("move to the trash", "moved to the trash"),
    (LABEL_ADDED, REMOTE): ("add label on the server", "label added on the server"),
    (LABEL_REMOVED, REMOTE): ("remove label on the server", "label removed on the server"),
    (LABEL_ADDED, LOCAL): ("make folder", "folder made"),
    (LABEL_REMOVED, LOCAL): ("remove empty folder", "empty folder removed"),
}
_UNLINK = ("remove from the task on the server", "removed from the task on the server")


def action(c: FileChange, *, done: bool = False) -> str:
    """What a sync does to the file ('upload', 'delete on the server'), or did."""
    if c.kind == DELETED and c.side == REMOTE and not c.delete_image:
        pair = _UNLINK
    else:
        pair = _ACTIONS.get((c.kind, c.side), (c.kind, c.kind))
    return pair[1] if done else pair[0]


def action_line(c: FileChange, *, done: bool = False) -> str:
    """One line of `repo sync -n` / `-v`: 'upload: cats/a.jpg (new, cats)'."""
    text = change_text(c)
    if c.kind == NEW and c.side == REMOTE and c.new is not None:
        text = f"{c.path} (new, {c.new})"
    return f"{action(c, done=done)}: {text}"


_PLURAL = {"label": "labels", "folder": "folders", "value": "values"}


def totals_text(changes: Iterable[FileChange]) -> str:
    """'upload 3, relabel 1 on the server': how many of each action, in plan order."""
    counts = Counter(action(c) for c in changes)
    out = []
    for what, n in counts.items():
        verb, _, rest = what.partition(" ")
        if n > 1:
            rest = " ".join(_PLURAL.get(word, word) for word in rest.split())
        out.append(f"{verb} {n} {rest}".rstrip())
    return ", ".join(out)


def capped(lines: Sequence[str], cap: int | None, hint: str, total: int | None = None) -> list[str]:
    """At most `cap` lines (None: all), then '... and N more (hint)'; `total` how many
    lines there are when `lines` holds only the first ones (the default: all of them)."""
    total = len(lines) if total is None else total
    if cap is None or total <= cap:
        return list(lines)
    return [*lines[:cap], f"... and {total - cap} more ({hint})"]
