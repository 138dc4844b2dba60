"""A task's filtered image listing at depth: a page by number (OFFSET) against the same
page reached through `next` (the keyset cursor `after`), in one run on one server.

    python benchmarks/listing.py [--images 200000] [--labels 50] [--pages 1,100,200]
                                 [--page-size 1000] [--rounds 3] [--postgres]

A `serve --dev` server (SQLite, or with --postgres a throwaway PostgreSQL cluster,
tests/support/pgcluster.py) is seeded with N image rows (no bytes: the listing never
reads them) spread over `--labels` labels, one each, as `repo sync` leaves a task whose
folders are its labels. Then `GET training-image/?labels=<every label>&page_size=1000`,
as a sync's first listing asks, at each depth of `--pages`:

- by number: `?page=N` (OFFSET over the images matching the filter);
- by keyset: the `next` link of page N-1 (its cursor `after`), i.e. what a client that
  follows `next` asks for page N;

best of `--rounds` each (after the first request, which counts the images: timed
too), and the whole listing read through `next` from page 1.
Prints the seconds and the ratio number/keyset per depth (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import httpx  # noqa: E402
from benchcommon import compile_package, start_dev_server  # noqa: E402

CHUNK = 20_000


def seed_rows(url: str, ws: str, images: int, labels: int) -> list[str]:
    """N image rows of the workspace ``ws`` and one label link each, straight into the
    database (the triggers of image_docs and the change feed run as for any write); the
    label ids."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from localrepo.server.data import labels as label_rows
    from localrepo.server.data.db import Database
    from localrepo.server.data.images import INSERT_IMAGE
    from localrepo.server.data.tables import iso_at

    db = Database(url)
    try:
        ids = [
            label_rows.create_label(db, ws, f"label_{k}", "category", "", None)["id"]
            for k in range(labels)
        ]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        link = text(
            "INSERT INTO image_labels (image_id, label_id, value, created) VALUES (:i, :l, NULL, :c)"
        )
        for first in range(0, images, CHUNK):
            rows, links = [], []
            for n in range(first, min(images, first + CHUNK)):
                created = iso_at(start + timedelta(milliseconds=n))
                image_id = f"00000000-0000-4000-8000-{n:012d}"
                rows.append(_row(ws, image_id, n, created))
                links.append({"i": image_id, "l": ids[n % labels], "c": created})
            with db.write_conn() as conn:
                conn.execute(INSERT_IMAGE, rows)
                conn.execute(link, links)
        if not db.is_sqlite:
            # The statistics autovacuum would gather soon after (plans made before it
            # would measure the bulk load, not the listing).
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        db.dispose()
    return ids


def workspace_of(url: str, token: str) -> str:
    """The workspace a token's requests default to."""
    from localrepo.server.data import accounts
    from localrepo.server.data.db import Database

    db = Database(url)
    try:
        owner = accounts.token_owner(db, accounts.hash_token(token))
        assert owner is not None
        return str(owner[2])
    finally:
        db.dispose()


def _row(ws: str, image_id: str, n: int, created: str) -> dict[str, Any]:
    return {
        "id": image_id,
        "created": created,
        "workspace_id": ws,
        "upload_sha256": f"{n:064x}",
        "blob_sha256": f"{n:064x}",
        "media_key": f"{n:032x}",
        "extension": ".jpg",
        "content_type": "image/jpeg",
        "size_bytes": 4096,
        "img_width": 64,
        "img_height": 48,
        "meta_data": f'{{"name": "IMG_{n:07d}.jpg"}}',
        "test_image": False,
        "real": False,
        "verify_count": 0,
    }


def timed_get(client: httpx.Client, url: str, params: dict[str, Any] | None) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = client.get(url, params=params)
    took = time.perf_counter() - t0
    r.raise_for_status()
    return took, r.json()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--labels", type=int, default=50)
    ap.add_argument("--pages", default="1,100,200")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    args = ap.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="localrepo-listing-"))
    cluster = None
    extra: list[str] = []
    if args.postgres:
        from support.pgcluster import PostgresCluster

        cluster = PostgresCluster().start()
        extra = ["--database-url", cluster.new_database()]
    proc, info = start_dev_server(work, *extra)
    try:
        url = extra[1] if extra else f"sqlite:///{work / 'data' / 'server.db'}"
        t0 = time.perf_counter()
        label_ids = seed_rows(url, workspace_of(url, info["token"]), args.images, args.labels)
        db_name = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{db_name}: seeded {args.images:,} images in {time.perf_counter() - t0:.1f} s")
        base = info["url"] + "recognition/v2/training-image/"
        headers = {"Authorization": f"Token {info['token']}"}
        params = {"labels": ",".join(label_ids), "page_size": args.page_size}
        with httpx.Client(headers=headers, timeout=600) as client:
            took, _ = timed_get(client, base, params)
            print(f"page 1, the first request (it counts the {args.images:,}): {took:.3f} s")
            print(f"{'page':>5} {'by number':>10} {'by keyset':>10} {'ratio':>7}")
            for page in (int(p) for p in args.pages.split(",")):
                by_number = min(
                    timed_get(client, base, {**params, "page": page})[0] for _ in range(args.rounds)
                )
                if page == 1:
                    by_keyset = by_number  # page 1 has no cursor: the same request
                else:
                    _, before = timed_get(client, base, {**params, "page": page - 1})
                    by_keyset = min(
                        timed_get(client, before["next"], None)[0] for _ in range(args.rounds)
                    )
                ratio = by_number / by_keyset
                print(f"{page:>5} {by_number:>9.3f}s {by_keyset:>9.3f}s {ratio:>6.1f}x")
            t0 = time.perf_counter()
            _, body = timed_get(client, base, params)
            seen, pages = len(body["results"]), 1
            while body["next"]:
                _, body = timed_get(client, body["next"], None)
                seen += len(body["results"])
                pages += 1
            total = time.perf_counter() - t0
            assert seen == args.images, (seen, args.images)
            print(f"the whole listing through next: {pages} pages, {seen:,} images, {total:.1f} s")
    finally:
        proc.terminate()
        proc.wait()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
