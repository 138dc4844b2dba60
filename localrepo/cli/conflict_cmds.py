"""`repo conflicts`, `resolve`: list the conflicts a sync recorded, and settle them (by
one side's state, or by the category to keep on disk: sync/keep.py), then sync."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from localrepo.cli.connect import repo_client, token_option
from localrepo.cli.sync_cmds import print_sync, sync_exit_code, sync_summary
from localrepo.errors import LocalrepoError
from localrepo.vocabulary import MULTI_CLASS, POLICY_LOCAL, POLICY_REMOTE


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def conflicts(obj: Any, as_json: bool) -> None:
    """List the conflicts waiting for 'repo resolve'."""
    from localrepo.catalog.conflicts import open_details

    conn = obj.repo().connect()
    rows = open_details(conn)
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
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("No conflicts.")
    from localrepo.cli.report import labels_text

    for c in items:
        click.echo(
            f"{c['path'] or c['image']}\t{c['field']}: base {labels_text(c['base'])}, local "
            f"{labels_text(c['local'])}, remote {labels_text(c['remote'])}"
        )


@click.command()
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
@token_option
@click.pass_obj
def resolve(
    obj: Any,
    paths: tuple[str, ...],
    take: str | None,
    keep: str | None,
    all_: bool,
    token: str | None,
) -> None:
    """Settle the conflicts of PATHs (any copy of the image), then sync.

    --take keeps one side's state; --keep LABEL keeps one category of an image
    whose copies sit in several label folders, or that has several on the server.

    \b
    Examples:
      repo resolve dog/a.jpg --take local
      repo resolve cat/b.jpg --keep cat
      repo resolve --all --take remote
    """
    from localrepo.sync.engine import Engine, SyncOptions

    if (take is None) == (keep is None):
        raise click.UsageError("give one of --take local|remote or --keep LABEL")
    if bool(paths) == all_:
        raise click.UsageError("give the PATHs of the conflicts to settle, or --all")
    repo = obj.repo()
    keys = _conflict_keys(repo, obj.directory, paths, all_)
    if keep is not None:
        _keep_on_disk(repo, keys, keep)
        take = POLICY_LOCAL
    repo, client = repo_client(obj, token)
    try:
        options = SyncOptions(
            policy=take,  # type: ignore[arg-type]
            resolve_keys=frozenset(keys),
            share_labels=repo.config().sync.share_labels,
        )
        report = Engine(repo, client, options).run()
    finally:
        client.close()
    summary = sync_summary(report, dry_run=False)
    print_sync(summary, verbose=obj.verbose)
    sys.exit(sync_exit_code(summary))


def _conflict_keys(repo: Any, cwd: Path, paths: tuple[str, ...], all_: bool) -> set[str]:
    """The images whose open conflicts the user names: by any file of the image, or by
    the path the conflict was recorded with."""
    from localrepo.catalog.conflicts import image_at, open_conflicts

    conn = repo.connect()
    try:
        rows = open_conflicts(conn)
        if all_:
            if not rows:
                raise LocalrepoError("no open conflicts (see 'repo conflicts').")
            return {r[2] for r in rows if r[2]}
        open_keys = {r[2] for r in rows if r[2]}
        keys: set[str] = set()
        missing = []
        for given in paths:
            rel = _rel(repo.root, cwd, given)
            key = image_at(conn, rel) or next((r[2] for r in rows if r[1] == rel), None)
            if key is None or key not in open_keys:
                missing.append(rel)
            else:
                keys.add(key)
    finally:
        conn.close()
    if missing:
        raise LocalrepoError(
            "no open conflict for: " + ", ".join(sorted(missing)) + " (see 'repo conflicts')"
        )
    return keys


def _keep_on_disk(repo: Any, keys: set[str], label: str) -> None:
    """`--keep LABEL`: make each image's files say exactly LABEL (sync/keep.py)."""
    from localrepo.catalog import files as catalog_files
    from localrepo.catalog import tasks as catalog_tasks
    from localrepo.labelnames import folder_for_label
    from localrepo.layout import folder_label, nfc
    from localrepo.sync.keep import keep_label
    from localrepo.sync.localfs import LocalFS
    from localrepo.sync.snapshot import local_files

    label = nfc(label)
    with repo.lock():
        conn = repo.connect()
        try:
            bindings = catalog_tasks.load_bindings(conn)
            stats = catalog_files.load_stats(conn)
            fs = LocalFS(repo.root)
            work = []
            for binding in bindings:
                files = local_files(conn, binding, bindings)
                mine = [k for k in sorted(keys) if k in files]
                if not mine:
                    continue
                if binding.type != MULTI_CLASS:
                    raise LocalrepoError(
                        f"--keep is for multi_class tasks; '{binding.name}' is "
                        f"{binding.type}: use --take local|remote."
                    )
                name = folder_for_label(label)
                if name is None:
                    raise LocalrepoError(f"--keep: no folder can hold the label {label!r}.")
                folder = f"{binding.root}/{name}" if binding.root else name
                work += [(binding, folder, files[key]) for key in mine]
            if len(work) < len(keys):
                raise LocalrepoError(
                    "--keep: an image in conflict has no file here to keep; settle it with "
                    "--take remote (or --take local to keep what the folders say)."
                )
            for binding, folder, paths in work:
                for line in keep_label(
                    fs, paths, label, folder, lambda p, b=binding: folder_label(p, b), stats
                ):
                    click.echo(line, err=True)
        finally:
            conn.close()


def _rel(root: Path, cwd: Path, given: str) -> str:
    import os

    full = Path(os.path.normpath(cwd / given))
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise LocalrepoError(f"{given} is outside the repository {root}") from None
