"""`repo conflicts`, `resolve`: list the conflicts a sync recorded, and decide them (by
one side's state, or by the category to keep on disk: sync/keep.py). A decision is
recorded in the catalog and applied to the disk at once where it can be
(sync/decide.py names the core); it never contacts the server: the next sync sends it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from localrepo.cli.context import examples
from localrepo.cli.report import labels_text
from localrepo.errors import LocalrepoError
from localrepo.vocabulary import MULTI_CLASS, POLICY_LOCAL, POLICY_REMOTE


@click.command(epilog=examples("repo conflicts", "repo conflicts --json"))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def conflicts(obj: Any, as_json: bool) -> None:
    """List the conflicts waiting for 'repo resolve'."""
    from localrepo.catalog.conflicts import decided, open_details

    conn = obj.repo().connect()
    rows = open_details(conn)
    decisions = decided(conn)
    conn.close()
    items = [
        {
            "id": r[0],
            "task": r[1],
            "path": r[2],
            "field": r[3],
            "base": json.loads(r[4]),
            "local": json.loads(r[5]),
            "remote": json.loads(r[6]),
            "image": r[7],
            "decision": decisions.get(r[0]),  # `repo resolve`'s side; the next sync sends it
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("No conflicts.")
    for c in items:
        decided = (
            f" (decided: {c['decision']} wins at the next 'repo sync')" if c["decision"] else ""
        )
        click.echo(
            f"{c['path'] or c['image']}\t{c['field']}: base {labels_text(c['base'])}, local "
            f"{labels_text(c['local'])}, remote {labels_text(c['remote'])}{decided}"
        )


@click.command(
    epilog=examples(
        "repo resolve dog/a.jpg --take local",
        "repo resolve cat/b.jpg --keep cat",
        "repo resolve --all --take remote -n",
    )
)
@click.argument("paths", nargs=-1)
@click.option(
    "--take", type=click.Choice([POLICY_LOCAL, POLICY_REMOTE]), help="The side that wins."
)
@click.option(
    "--keep",
    metavar="LABEL",
    help="multi_class: the category the image keeps (its copies in other label "
    "folders go to the trash).",
)
@click.option("--all", "all_", is_flag=True, help="Every open conflict.")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.pass_obj
def resolve(
    obj: Any,
    paths: tuple[str, ...],
    take: str | None,
    keep: str | None,
    all_: bool,
    dry_run: bool,
) -> None:
    """Decide the conflicts of PATHs (any copy of the image); the next sync sends it.

    --take keeps one side's state; --keep LABEL keeps one category of an image
    whose copies sit in several label folders, or that has several on the server.
    The decision is recorded here and, where this side changes (--take remote,
    --keep), the files change at once (copies leave through the trash). Nothing is
    sent to the server: it works offline; the next 'repo sync' sends it.
    """
    from localrepo.catalog import conflicts as catalog_conflicts
    from localrepo.catalog.db import transaction

    if (take is None) == (keep is None):
        raise click.UsageError("give one of --take local|remote or --keep LABEL")
    if bool(paths) == all_:
        raise click.UsageError("give the PATHs of the conflicts to settle, or --all")
    repo = obj.repo()
    side = take or POLICY_LOCAL
    with repo.lock():
        conn = repo.connect()
        try:
            rows = _chosen(conn, repo.root, obj.directory, paths, all_)
            decider = _Decider(repo.root, conn, dry_run)
            lines = decider.keep(rows, keep) if keep is not None else decider.take(rows, side)
            if not dry_run:
                with transaction(conn):
                    catalog_conflicts.decide(conn, [r[0] for r in rows], side)
                if decider.changed:  # the catalog learns the files' new places now
                    from localrepo.scan.scanner import Scanner

                    Scanner(repo.root, conn).scan()
        finally:
            conn.close()
    for line in lines:
        click.echo(line)
    n = len(rows)
    them = "it" if n == 1 else "them"
    if dry_run:
        click.echo(f"Would record {n} decision{'s' * (n != 1)}; nothing was changed (--dry-run).")
    else:
        click.echo(
            f"Recorded {n} decision{'s' * (n != 1)}; nothing was sent: the next 'repo sync' "
            f"sends {them} to the server."
        )


def _chosen(conn: Any, root: Path, cwd: Path, paths: tuple[str, ...], all_: bool) -> list[tuple]:
    """The open conflicts the user names (rows of `open_details`): by any file of the
    image, or by the path the conflict was recorded with; --all: every one."""
    from localrepo.catalog.conflicts import image_at, open_details

    rows = open_details(conn)
    if all_:
        if not rows:
            raise LocalrepoError("no open conflicts (see 'repo conflicts').")
        return rows
    chosen: dict[int, tuple] = {}
    missing = []
    for given in paths:
        rel = _rel(root, cwd, given)
        key = image_at(conn, rel)
        found = [r for r in rows if (key is not None and r[7] == key) or r[2] == rel]
        if not found:
            missing.append(rel)
        chosen.update((r[0], r) for r in found)
    if missing:
        raise LocalrepoError(
            "no open conflict for: " + ", ".join(sorted(missing)) + " (see 'repo conflicts')"
        )
    return sorted(chosen.values())


class _Decider:
    """Applies decisions to the disk (or, with `dry_run`, says what it would do) and
    words each one. The shell around sync/decide.py and sync/keep.py."""

    def __init__(self, root: Path, conn: Any, dry_run: bool) -> None:
        from localrepo.catalog import files as catalog_files
        from localrepo.catalog import tasks as catalog_tasks
        from localrepo.catalog.conflicts import open_by_task
        from localrepo.sync.localfs import LocalFS

        self.conn = conn
        self.dry_run = dry_run
        self.fs = LocalFS(root)
        self.bindings = catalog_tasks.load_bindings(conn)
        self._task_of = {r[0]: r[1] for r in open_by_task(conn)}  # conflict id -> task id
        self.stats = catalog_files.load_stats(conn)
        self._files: dict[int, dict[str, list[str]]] = {}
        self.changed = False

    def files(self, binding: Any) -> dict[str, list[str]]:
        from localrepo.sync.snapshot import local_files

        if binding.task_id not in self._files:
            self._files[binding.task_id] = local_files(self.conn, binding, self.bindings)
        return self._files[binding.task_id]

    def binding(self, row: tuple) -> Any:
        """The task of a conflict row (`open_details`)."""
        task_id = self._task_of[row[0]]
        return next(b for b in self.bindings if b.task_id == task_id)

    def take(self, rows: list[tuple], side: str) -> list[str]:
        from localrepo.sync.decide import local_target

        lines = []
        for row in rows:
            binding = self.binding(row)
            local, remote = json.loads(row[5]), json.loads(row[6])
            where = row[2] or f"image {row[7][:12]}"
            if side == POLICY_LOCAL:
                lines.append(
                    f"{where}: {self._verb('keeps')} the local {labels_text(local)} (the "
                    f"server has {labels_text(remote)}); the next 'repo sync' sends it."
                )
                continue
            intro = (
                f"{where}: {self._verb('takes')} the remote's {labels_text(remote)} (here: "
                f"{labels_text(local)})"
            )
            target = local_target(binding.type, side, remote)
            if target is None or row[7] is None:
                lines.append(f"{intro}; the next 'repo sync' applies it.")
            elif self.dry_run:
                lines.append(f"{intro}; its files would change now to say {labels_text(target)}.")
            else:
                lines.append(f"{intro}; {self._lay_out(binding, row[7], target)}")
        return lines

    def _lay_out(self, binding: Any, key: str, target: dict[str, float | None]) -> str:
        """The image's files laid out as `target` says, by the executor's disk side."""
        from localrepo.sync.disk_side import DiskSide
        from localrepo.sync.localfs import FileChanged
        from localrepo.sync.results import ImageResult

        disk = DiskSide(self.fs, binding, self.files(binding))
        disk.stats = self.stats
        result = ImageResult(key, key, None)
        try:
            disk.set_local(result, target)
        except (FileChanged, LocalrepoError, OSError) as exc:
            return f"its files were left as they are ({exc}); the next 'repo sync' applies it."
        finally:
            self.changed = self.changed or bool(result.added_files or result.removed_files)
        moved = {new for _old, new in result.moves}
        done = [f"moved {old} to {new}" for old, new in result.moves]
        done += [f"added {w.path}" for w in result.added_files if w.path not in moved]
        done += [f"moved {old} to the trash" for old in result.trashed]
        if binding.type != MULTI_CLASS and not done:
            self.changed = True
            done.append(f"{labels_text(target)} written to the sidecar")
        return "done now: " + "; ".join(done or ["the files say it already"]) + "."

    def keep(self, rows: list[tuple], label: str) -> list[str]:
        """`--keep LABEL`: make each image's files say exactly LABEL (sync/keep.py)."""
        from localrepo.labelnames import folder_for_label
        from localrepo.layout import folder_label, nfc
        from localrepo.sync.keep import keep_label, keep_one

        label = nfc(label)
        work = []
        for row in rows:
            binding = self.binding(row)
            if binding.type != MULTI_CLASS:
                raise LocalrepoError(
                    f"--keep is for multi_class tasks; '{binding.name}' is "
                    f"{binding.type}: use --take local|remote."
                )
            name = folder_for_label(label)
            if name is None:
                raise LocalrepoError(f"--keep: no folder can hold the label {label!r}.")
            paths = self.files(binding).get(row[7] or "")
            if not paths:
                raise LocalrepoError(
                    "--keep: an image in conflict has no file here to keep; settle it with "
                    "--take remote (or --take local to keep what the folders say)."
                )
            folder = f"{binding.root}/{name}" if binding.root else name
            work.append((binding, folder, paths, row))
        lines = []
        for binding, folder, paths, row in work:
            where = row[2] or paths[0]
            lines.append(
                f"{where}: {self._verb('keeps')} {label} (local {labels_text(json.loads(row[5]))}"
                f", remote {labels_text(json.loads(row[6]))}); the next 'repo sync' sends it."
            )
            label_of = lambda p, b=binding: folder_label(p, b)  # noqa: E731
            if self.dry_run:
                plan = keep_one(paths, label, label_of)
                if plan.move:
                    lines.append(f"  would move {plan.move} to {folder}/")
                lines += [f"  would move {p} to the trash" for p in plan.trash]
                continue
            done = keep_label(self.fs, paths, label, folder, label_of, self.stats)
            self.changed = self.changed or bool(done)
            lines += [f"  {line}" for line in done]
        return lines

    def _verb(self, verb: str) -> str:
        return f"would {verb.removesuffix('s')}" if self.dry_run else verb


def _rel(root: Path, cwd: Path, given: str) -> str:
    import os

    full = Path(os.path.normpath(cwd / given))
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise LocalrepoError(f"{given} is outside the repository {root}") from None
