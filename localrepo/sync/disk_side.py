"""The executor's disk side: which files an image's ops write, move, link and trash
(design section 3, "Pull" and "Safety"); sync/localfs.py does each file operation
atomically, sync/execute.py decides when.

Contract: `DiskSide` knows the task's binding, the image's files as the last scan saw
them (`files`, by image key) and their catalogued stats (`stats`, set by the executor
for the files its plan touches). Before it reads, moves or removes a file it checks it
against that stat (a file the user changed since the scan raises FileChanged and is
left alone). It lays an image out in the label folders of its target: a download in
the first folder and hard links in the others (`write_download`), a relabel by moving
copies out of labels the image leaves, else linking (`set_local`), a remote delete by
taking the labelled copies to the trash (`trash`); in a regression task the sidecar
values follow. Each records what it wrote and removed in the image's `ImageResult`
(the executor commits those rows, so the next scan does not take them for edits);
none touches the catalog or the server.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from localrepo.errors import LocalrepoError
from localrepo.labelnames import folder_for_label
from localrepo.layout import TaskBinding, label_for_folder, relative_to_root
from localrepo.scan.hashing import hash_bytes
from localrepo.sync.faults import crash_point
from localrepo.sync.localfs import FileChanged, LocalFS
from localrepo.sync.names import file_name
from localrepo.sync.snapshot import META_NAME
from localrepo.vocabulary import REGRESSION

if TYPE_CHECKING:
    from localrepo.sync.results import ImageResult
    from localrepo.sync.snapshot import RemoteImageView


class DiskSide:
    def __init__(self, fs: LocalFS, binding: TaskBinding, files: dict[str, list[str]]) -> None:
        self.fs = fs
        self.binding = binding
        self.files = files  # image key -> its files, as the last scan saw them
        self.stats: dict[str, tuple[int, int, int, int, int]] = {}  # set by Executor.run

    def folder(self, label: str) -> str | None:
        """The folder of `label` (None: it cannot be a folder name)."""
        name = folder_for_label(label)
        if name is None:
            return None
        return f"{self.binding.root}/{name}" if self.binding.root else name

    def source_bytes(self, key: str) -> tuple[str, bytes]:
        """The path and bytes of the image `key` to upload, unchanged since the scan."""
        paths = self.files.get(key) or []
        if not paths:
            raise LocalrepoError(f"no local file holds image {key[:12]}")
        path = paths[0]
        self.fs.check(path, self.stats.get(path))
        data = self.fs.abs(path).read_bytes()
        if hash_bytes(data) != key:
            raise FileChanged(f"{path} changed since the last scan; not uploaded")
        return path, data

    def write_download(
        self,
        result: ImageResult,
        target: dict[str, float | None],
        view: RemoteImageView,
        data: bytes,
    ) -> None:
        """A downloaded image into the folders of its `target` labels."""
        folders = self._target_folders(target)
        dims = result.dims
        name = file_name(view.meta_data.get(META_NAME), view.id, dims[2] if dims else None)
        _first_label, first_folder = folders[0]
        written = self.fs.write_new(first_folder, name, data)
        crash_point("after_replace")
        result.added_files.append(written)
        for _label, folder in folders[1:]:
            result.added_files.append(self.fs.link(written.path, folder, name))
        self._write_values(result, target)
        result.local_changed = True
        result.counts["downloaded"] = 1

    def set_local(self, result: ImageResult, target: dict[str, float | None]) -> None:
        """The image's files moved, linked and trashed until its labels are `target`."""
        paths = list(self.files.get(result.key, []))
        for path in paths:
            self.fs.check(path, self.stats.get(path))
        by_label: dict[str | None, list[str]] = defaultdict(list)
        for path in paths:
            by_label[self._label_of_path(path)].append(path)
        folders = dict(self._target_folders(target))
        spare = list(by_label.get(None, []))  # unlabelled copies, free to move
        # Labels that lose this image: their copies may be moved to a new label first.
        leaving = [p for label, ps in by_label.items() if label and label not in target for p in ps]
        for name, folder in folders.items():
            if by_label.get(name):
                continue
            source = leaving.pop(0) if leaving else (spare.pop(0) if spare else None)
            if source is not None:
                moved = self.fs.move(source, folder, source.rsplit("/", 1)[-1])
                result.removed_files.append(source)
                result.added_files.append(moved)
                result.moves.append((source, moved.path))
            else:
                anchor = (result.added_files[0].path if result.added_files else None) or next(
                    (p for ps in by_label.values() for p in ps if p not in result.removed_files),
                    None,
                )
                if anchor is None:
                    raise LocalrepoError(f"no local file holds image {result.key[:12]}")
                result.added_files.append(self.fs.link(anchor, folder, anchor.rsplit("/", 1)[-1]))
        if leaving:
            crash_point("mid_relabel")
        for path in leaving:  # copies left in labels the image no longer has
            self.fs.trash(path)
            result.removed_files.append(path)
            result.trashed.append(path)
        self._write_values(result, target)
        result.local_changed = True
        result.counts["relabelled_local"] = 1

    def trash(self, result: ImageResult) -> None:
        """The image's labelled files to the trash (a remote delete)."""
        for path in self.files.get(result.key, []):
            if self._label_of_path(path) is None:
                continue  # an unlabelled copy is not part of the task's remote state
            self.fs.check(path, self.stats.get(path))
            self.fs.trash(path)
            result.removed_files.append(path)
        result.local_changed = True
        result.counts["trashed_local"] = 1

    def _target_folders(self, target: dict[str, float | None]) -> list[tuple[str, str]]:
        out = []
        for name in sorted(target):
            folder = self.folder(name)
            if folder is None:
                raise LocalrepoError(f"label {name!r} cannot be a folder name; not placed")
            out.append((name, folder))
        return out

    def _write_values(self, result: ImageResult, target: dict[str, float | None]) -> None:
        if self.binding.type != REGRESSION:
            return
        placed = {w.path for w in result.added_files} | set(self.files.get(result.key, []))
        placed -= set(result.removed_files)
        for name, value in target.items():
            folder = self.folder(name)
            if folder is None:
                continue
            for path in sorted(placed):
                parent, _, fname = path.rpartition("/")
                if parent == folder:
                    self.fs.set_sidecar_values(folder, {fname: value})

    def _label_of_path(self, path: str) -> str | None:
        rel = relative_to_root(path, self.binding.root)
        head, sep, _ = rel.partition("/")
        if not sep:
            return None
        return label_for_folder(head)
