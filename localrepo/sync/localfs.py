"""The executor's disk side: atomic, never-overwriting file operations inside one
repository, with the trash for everything removed.

Every operation re-checks a file against what the catalog recorded before it moves or
removes it: a file the user changed since the last scan is left alone (the caller
reports a conflict and the next sync sees the change).
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from localrepo.errors import LocalrepoError
from localrepo.sync.faults import crash_point
from localrepo.sync.names import with_suffix
from localrepo.vocabulary import STATE_DIR, TMP_SUFFIX, TRASH_DIR

# Temp files are ".<name>.localrepo-tmp" in the destination folder: dot files, so the
# scanner never takes them for images; it lists them so the engine can remove them.


class FileChanged(LocalrepoError):
    """A file no longer matches the catalog: someone edited it since the last scan."""


@dataclass(frozen=True)
class Written:
    path: str  # repository-relative
    dev: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


class LocalFS:
    def __init__(self, root: Path, run_id: str | None = None) -> None:
        self.root = root
        self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S")
        self.trash_dir = root / STATE_DIR / TRASH_DIR / self.run_id
        # Sidecars are read, changed and replaced by the executor's worker threads: one
        # at a time, or two downloads into one folder race on the temp file and one
        # value is lost.
        self._sidecar_lock = threading.Lock()

    # -- paths ----------------------------------------------------------------------------
    def abs(self, rel: str) -> Path:
        full = (self.root / rel).resolve(strict=False)
        root = self.root.resolve()
        if full != root and root not in full.parents:  # belt and braces: names are checked
            raise LocalrepoError(f"refusing to touch {rel!r}: it is outside the repository")
        return self.root / rel

    def stat(self, rel: str) -> Written:
        st = os.lstat(self.abs(rel))
        return Written(rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def check(self, rel: str, expected: tuple[int, int, int, int, int] | None) -> None:
        """Raise FileChanged unless rel still has the (dev, inode, size, mtime) we know."""
        if expected is None:
            return
        try:
            st = os.lstat(self.abs(rel))
        except FileNotFoundError:
            raise FileChanged(f"{rel} is gone since the last scan") from None
        dev, inode, size, mtime_ns, _ctime = expected
        # ctime moves when a hard link is added or removed: not a content change.
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (dev, inode, size, mtime_ns):
            raise FileChanged(f"{rel} changed since the last scan; left alone")

    # -- writes ---------------------------------------------------------------------------
    def _free_name(self, folder: str, name: str) -> str:
        candidate = f"{folder}/{name}" if folder else name
        n = 2
        while os.path.lexists(self.abs(candidate)):
            candidate = f"{folder}/{with_suffix(name, n)}" if folder else with_suffix(name, n)
            n += 1
        return candidate

    def write_new(self, folder: str, name: str, data: bytes) -> Written:
        """Write bytes as a new file in folder: temp file, fsync, link into place.

        The link fails instead of replacing a file that appeared meanwhile; a clash gets
        a suffix, never an overwrite.
        """
        self.abs(folder).mkdir(parents=True, exist_ok=True)
        tmp_rel = f"{folder}/.{name}{TMP_SUFFIX}" if folder else f".{name}{TMP_SUFFIX}"
        tmp = self.abs(tmp_rel)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            half = len(view) // 2
            _write_all(fd, view[:half])
            crash_point("mid_download")  # the temp file holds half the bytes
            _write_all(fd, view[half:])
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            dest = self._link_free(tmp_rel, folder, name)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._fsync_dir(folder)
        return self.stat(dest)

    def _link_free(self, src_rel: str, folder: str, name: str) -> str:
        for _ in range(1000):
            dest = self._free_name(folder, name)
            try:
                os.link(self.abs(src_rel), self.abs(dest))
                return dest
            except FileExistsError:
                continue  # raced with a new file of that name: pick the next suffix
        raise LocalrepoError(f"cannot find a free name for {name} in {folder or '.'}/")

    def link(self, src: str, folder: str, name: str) -> Written:
        """A hard link of src in folder (a multi_label tag): same bytes, one image."""
        self.abs(folder).mkdir(parents=True, exist_ok=True)
        try:
            dest = self._link_free(src, folder, name)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
                raise
            data = self.abs(src).read_bytes()  # no hard links here: a copy
            return self.write_new(folder, name, data)
        return self.stat(dest)

    def move(self, src: str, folder: str, name: str) -> Written:
        """Move src into folder without overwriting anything."""
        self.abs(folder).mkdir(parents=True, exist_ok=True)
        try:
            dest = self._link_free(src, folder, name)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise
            dest = self._free_name(folder, name)
            os.rename(self.abs(src), self.abs(dest))
            return self.stat(dest)
        crash_point("mid_move")  # the file is in both folders (one inode, two names)
        os.unlink(self.abs(src))
        self._fsync_dir(folder)
        return self.stat(dest)

    def unlink_second_name(self, rel: str, dev: int, inode: int) -> bool:
        """Remove `rel` only if it is still the file (dev, inode) and that file has
        another name (a move's old name): nothing is lost. True if removed."""
        try:
            st = os.lstat(self.abs(rel))
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) != (dev, inode) or st.st_nlink < 2:
            return False
        os.unlink(self.abs(rel))
        return True

    def trash(self, rel: str) -> str:
        """Move a file into .localrepo/trash/<run>/<its path>; returns where it went."""
        dest = self.trash_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        n = 2
        while dest.exists():
            dest = dest.with_name(with_suffix(Path(rel).name, n))
            n += 1
        os.rename(self.abs(rel), dest)
        return str(dest.relative_to(self.root))

    def make_folder(self, folder: str) -> None:
        self.abs(folder).mkdir(parents=True, exist_ok=True)

    def remove_folder_if_empty(self, folder: str) -> bool:
        """Remove a folder that holds no file. Empty subfolders go with it (`cat/sub/`,
        left behind when its images moved to another label); any file, symlink or
        special entry anywhere below keeps the whole folder."""
        top = self.abs(folder)
        dirs: list[str] = []
        try:
            for dirpath, dirnames, filenames in os.walk(top, onerror=_raise):
                if filenames or any(os.path.islink(os.path.join(dirpath, d)) for d in dirnames):
                    return False
                dirs.append(dirpath)
            for path in reversed(dirs):  # deepest first
                os.rmdir(path)
        except OSError:
            return False
        return True

    def set_sidecar_values(self, folder: str, values: dict[str, float | None]) -> None:
        """Set `value` for file names in folder/metadata.jsonl, keeping every other row
        and key as they are (written atomically)."""
        with self._sidecar_lock:
            self._set_sidecar_values(folder, values)

    def _set_sidecar_values(self, folder: str, values: dict[str, float | None]) -> None:
        path = self.abs(folder) / "metadata.jsonl"
        rows: list[dict] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        rows.append({"__raw__": line})
        seen = set()
        for row in rows:
            name = row.get("file_name") if isinstance(row, dict) else None
            if name in values:
                seen.add(name)
                if values[name] is None:
                    row.pop("value", None)
                else:
                    row["value"] = values[name]
        for name, value in sorted(values.items()):
            if name not in seen and value is not None:
                rows.append({"file_name": name, "value": value})
        text = "".join(
            (row["__raw__"] if "__raw__" in row else json.dumps(row, ensure_ascii=False)) + "\n"
            for row in rows
        )
        tmp = path.with_name("." + path.name + TMP_SUFFIX)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _fsync_dir(self, folder: str) -> None:
        try:
            fd = os.open(self.abs(folder) if folder else self.root, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def remove_leftovers(self, paths: list[str]) -> int:
        """Remove temp files an interrupted run left behind (never linked into place)."""
        removed = 0
        for rel in paths:
            try:
                os.unlink(self.abs(rel))
                removed += 1
            except OSError:
                pass
        return removed


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _raise(exc: OSError) -> None:
    raise exc
