"""The pieces of object storage without a server: the ``--storage`` URL (redaction and
refusals) and the per-hash blob locks across processes (data/storage/)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.waiting import limit

from localrepo.server.data.storage import StorageURLError, parse_storage_url
from localrepo.server.data.storage.locks import AdvisoryLocks, BlobLocks, FileRangeLocks

SHA = "ab" * 32


def test_the_storage_url_is_read_and_checked() -> None:
    assert parse_storage_url("").is_local and parse_storage_url("local").is_local
    where = parse_storage_url("s3://my-bucket/a/b/?endpoint=http://127.0.0.1:9000/&region=eu-1")
    assert (where.bucket, where.prefix, where.endpoint, where.region) == (
        "my-bucket",
        "a/b",
        "http://127.0.0.1:9000",
        "eu-1",
    )
    assert parse_storage_url("s3://my-bucket").prefix == ""
    for bad, words in (
        ("/var/blobs", "use 'local'"),
        ("s3://B/x", "not a bucket name"),
        ("s3://bucket/x?endpint=http://h", "unknown parameter 'endpint'"),
        ("s3://bucket/x?endpoint=ftp://h", "http:// or https://"),
    ):
        with pytest.raises(StorageURLError, match=words):
            parse_storage_url(bad)


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIA:topsecret@bucket/x",
        "s3://bucket/x?secret_access_key=topsecret",
        "s3://bucket/x?endpoint=http://u:topsecret@h:9000",
        "s3://bucket/x?aws_session_token=topsecret&region=r",
    ],
)
def test_a_secret_in_the_url_is_refused_and_never_repeated(url: str) -> None:
    with pytest.raises(StorageURLError) as caught:
        parse_storage_url(url)
    message = str(caught.value)
    assert "refused" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "topsecret" not in message


_HOLDER = """
import sys, time
from localrepo.server.data.storage.locks import {make}
locks = BlobLocks({across})
with locks.locked(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _hold_in_another_process(make: str, across: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(_HOLDER.format(make=make, across=across))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, SHA], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _check_excludes_across_processes(mine: BlobLocks, holder: subprocess.Popen[str]) -> None:
    assert mine.try_lock(SHA) is None  # the other process holds it
    other = mine.try_lock("cd" * 32)  # another stripe is free
    assert other is not None
    other.release()
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=limit(30))
    held = mine.try_lock(SHA)
    assert held is not None  # released with the other process's lock
    assert mine.try_lock(SHA) is None  # and now held here, threads included
    held.release()
    with mine.locked(SHA):
        pass


def test_file_range_locks_exclude_another_process(tmp_path: Path) -> None:
    path = tmp_path / "blobs.lock"
    holder = _hold_in_another_process(
        "BlobLocks, FileRangeLocks", f"FileRangeLocks(__import__('pathlib').Path({str(path)!r}))"
    )
    _check_excludes_across_processes(BlobLocks(FileRangeLocks(path)), holder)


def test_advisory_locks_exclude_another_process(postgres: Any) -> None:
    from sqlalchemy import create_engine

    url = postgres.new_database()
    holder = _hold_in_another_process(
        "BlobLocks, AdvisoryLocks",
        f"AdvisoryLocks(__import__('sqlalchemy').create_engine({url!r}, "
        "isolation_level='AUTOCOMMIT'))",
    )
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        _check_excludes_across_processes(BlobLocks(AdvisoryLocks(engine)), holder)
    finally:
        engine.dispose()


def test_a_bucket_that_does_not_answer_is_named_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from localrepo.server.data.storage import StorageUnavailable
    from localrepo.server.data.storage.s3 import S3Storage

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNIT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-secret-value")
    store = S3Storage(parse_storage_url(f"s3://bucket/x?endpoint=http://127.0.0.1:{port}"))
    with pytest.raises(StorageUnavailable) as caught:
        store.require()
    message = str(caught.value)
    assert message.startswith(f"--storage s3://bucket/x?endpoint=http://127.0.0.1:{port}: ")
    assert "(the endpoint does not answer)" in message and "unit-secret-value" not in message
