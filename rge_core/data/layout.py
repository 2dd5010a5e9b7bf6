"""Where MMEB parquet files live in a folder (local path or fsspec URL).

One sub-folder per subset; a split is stored as `<split>.parquet`, as shards `<split>-00000-of-00002.parquet`,
or as parquet files inside `<split>/` (the layouts of the Hugging Face downloads). Shards are read in sorted
order, so row indices, and the ids built from them, are stable.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from rge_core.data.issues import DataError

TRAIN_SPLITS = ("original", "diverse_instruction")
EVAL_SPLIT = "test"


@dataclass(frozen=True)
class DataFolder:
    url: str
    fs: fsspec.AbstractFileSystem
    root: str

    @classmethod
    def open(cls, url: str | Path) -> DataFolder:
        fs, root = fsspec.core.url_to_fs(str(url))
        if not fs.isdir(root):
            raise DataError(f"{url}: not a folder")
        return cls(str(url), fs, root.rstrip("/"))

    @property
    def local_root(self) -> Path | None:
        """The folder as a local path (the default image root), None for remote folders."""
        return Path(self.root) if isinstance(self.fs, LocalFileSystem) else None

    def display(self, path: str) -> str:
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)

    def subsets(self, splits: tuple[str, ...]) -> list[str]:
        """Sorted names of the sub-folders holding at least one of `splits`."""
        names = []
        for entry in self.fs.ls(self.root, detail=True):
            name = posixpath.basename(entry["name"].rstrip("/"))
            if entry["type"] != "directory" or name.startswith((".", "_")):
                continue
            if any(self.first_file(name, split) for split in splits):
                names.append(name)
        return sorted(names)

    def split_files(self, subset: str, split: str) -> list[str]:
        """Parquet files of `split` in `subset`, in read order; [] when the split is absent."""
        layouts = self._layouts(subset, split)
        if len(layouts) > 1:
            found = ", ".join(self.display(files[0]) for files in layouts)
            raise DataError(f"{subset}: split {split!r} is stored in more than one layout ({found}); keep one")
        return layouts[0] if layouts else []

    def first_file(self, subset: str, split: str) -> str | None:
        """Some parquet file of the split, None when absent; never fails on a doubly stored split."""
        layouts = self._layouts(subset, split)
        return layouts[0][0] if layouts else None

    def _layouts(self, subset: str, split: str) -> list[list[str]]:
        """The non-empty file lists of the three layouts (single file, shards, folder) of a split."""
        folder = f"{self.root}/{subset}"
        # Names only: a folder may also hold many images, and per-entry details cost a stat each.
        names = sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(folder, detail=False))
        single = [f"{folder}/{n}" for n in names if n == f"{split}.parquet"]
        shards = [f"{folder}/{n}" for n in names if n.startswith(f"{split}-") and n.endswith(".parquet")]
        nested: list[str] = []
        if split in names and self.fs.isdir(f"{folder}/{split}"):
            nested = sorted(p for p in self.fs.ls(f"{folder}/{split}", detail=False) if p.endswith(".parquet"))
        return [files for files in (single, shards, nested) if files]

    def read(self, path: str) -> pa.Table:
        return self._parquet(path, pq.read_table)

    def read_head(self, path: str, rows: int) -> pa.Table:
        """The first `rows` rows of a parquet file (its first record batches only)."""

        def head(handle: Any) -> pa.Table:
            parquet = pq.ParquetFile(handle)
            first = next(parquet.iter_batches(batch_size=rows), None)
            return pa.Table.from_batches([first] if first is not None else [], schema=parquet.schema_arrow)

        return self._parquet(path, head)

    def columns(self, path: str) -> list[str]:
        return self._parquet(path, pq.read_schema).names

    def _parquet(self, path: str, reader: Callable[[Any], Any]) -> Any:
        try:
            with self.fs.open(path, "rb") as handle:
                return reader(handle)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.display(path)}: cannot read parquet: {exc}") from exc


def list_subsets(folder: str | Path, splits: tuple[str, ...] = (*TRAIN_SPLITS, EVAL_SPLIT)) -> list[str]:
    """Sorted subset names of an MMEB-format folder (sub-folders holding any of `splits`)."""
    return DataFolder.open(folder).subsets(splits)


def pick_subsets(folder: DataFolder, splits: tuple[str, ...], wanted: list[str] | None) -> list[str]:
    """The requested subsets (all present ones when `wanted` is None), failing on unknown names."""
    present = folder.subsets(splits)
    if not present:
        raise DataError(f"{folder.url}: no subset folder with split {' or '.join(splits)}")
    if wanted is None:
        return present
    unknown = [name for name in wanted if name not in present]
    if unknown:
        raise DataError(f"{folder.url}: no split {' or '.join(splits)} for {unknown}; present: {present}")
    return list(wanted)
