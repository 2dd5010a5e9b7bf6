"""Shared scan of one MMEB split: read every file, check column presence and types, normalise nulls to
"" / [], check image paths, then apply the reader's row rules. Every problem becomes an `Issue`, so the
readers can raise on the first one and `rge data check` can list them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rge_core.data.images import ImageChecker
from rge_core.data.issues import DataError, Issue
from rge_core.data.layout import DataFolder


@dataclass(frozen=True)
class Column:
    name: str
    is_list: bool = False  # list<str> (eval candidates) rather than str
    required: bool = True  # optional columns that are absent read as ""
    image: bool = False  # holds image paths relative to the image root


@dataclass(frozen=True)
class FileRef:
    subset: str
    split: str
    path: str  # as shown to the user
    offset: int  # rows of the split stored before this file

    def item_id(self, row: int) -> str:
        return f"{self.subset}/{self.split}/{self.offset + row}"

    def issue(self, row: int | None, field: str, message: str) -> Issue:
        item_id = "" if row is None else self.item_id(row)
        return Issue(self.subset, self.path, row, field, message, item_id)


@dataclass
class FileScan:
    ref: FileRef
    num_rows: int
    columns: dict[str, pa.Array]  # normalised; empty when the file itself is unusable
    issues: list[Issue] = field(default_factory=list)

    def bad_rows(self) -> np.ndarray:
        return np.unique([issue.row for issue in self.issues if issue.row is not None]).astype(np.int64)


RowRules = Callable[[dict[str, pa.Array], FileRef], list[Issue]]


def true_rows(mask: pa.Array) -> np.ndarray:
    """Indices where a boolean array is true (null counts as false)."""
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def is_empty(values: pa.Array) -> pa.Array:
    return pc.equal(pc.utf8_length(values), 0)


def scan_split(
    folder: DataFolder, subset: str, split: str, spec: tuple[Column, ...], images: ImageChecker, rules: RowRules
) -> list[FileScan]:
    """Scan every file of one split, in read order."""
    scans: list[FileScan] = []
    offset = 0
    for path in folder.split_files(subset, split):
        ref = FileRef(subset, split, folder.display(path), offset)
        try:
            table = folder.read(path)
        except DataError as exc:
            scans.append(FileScan(ref, 0, {}, [ref.issue(None, "", f"cannot read parquet: {exc.__cause__}")]))
            continue
        scans.append(_scan_table(table, ref, spec, images, rules))
        offset += table.num_rows
    return scans


def scan_sample(
    folder: DataFolder,
    subset: str,
    split: str,
    spec: tuple[Column, ...],
    images: ImageChecker,
    rules: RowRules,
    rows: int,
) -> FileScan | None:
    """The first `rows` rows of the split's first file, checked as `scan_split` checks every row (columns,
    types, row rules, images); None when the split is absent. Reads that many rows, not the file."""
    files = folder.split_files(subset, split)
    if not files:
        return None
    ref = FileRef(subset, split, folder.display(files[0]), 0)
    try:
        table = folder.read_head(files[0], rows)
    except DataError as exc:
        return FileScan(ref, 0, {}, [ref.issue(None, "", f"cannot read parquet: {exc.__cause__}")])
    return _scan_table(table, ref, spec, images, rules)


def _scan_table(
    table: pa.Table, ref: FileRef, spec: tuple[Column, ...], images: ImageChecker, rules: RowRules
) -> FileScan:
    structural = [ref.issue(None, c.name, problem) for c in spec if (problem := _column_problem(table, c))]
    if structural:
        return FileScan(ref, table.num_rows, {}, structural)
    columns = {c.name: _normalised(table, c) for c in spec}
    issues = rules(columns, ref)
    for column in spec:
        if column.image:
            issues += _image_issues(columns[column.name], column, ref, images)
    issues.sort(key=lambda issue: -1 if issue.row is None else issue.row)  # file-level problems first
    return FileScan(ref, table.num_rows, columns, issues)


def _is_text(dtype: pa.DataType) -> bool:
    tests = (pa.types.is_null, pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return any(test(dtype) for test in tests)


def _column_problem(table: pa.Table, column: Column) -> str | None:
    if column.name not in table.column_names:
        return "missing column" if column.required else None
    dtype = table.schema.field(column.name).type
    if column.is_list:
        ok = pa.types.is_null(dtype) or (
            (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and _is_text(dtype.value_type)
        )
        return None if ok else f"type {dtype}, expected a list of strings"
    return None if _is_text(dtype) else f"type {dtype}, expected string"


def _normalised(table: pa.Table, column: Column) -> pa.Array:
    # MMEB writes "no image" as "" or None depending on the subset; downstream code only sees "" / [].
    if column.name not in table.column_names:
        return pc.fill_null(pa.nulls(table.num_rows, pa.string()), "")
    values = table.column(column.name).combine_chunks()
    if not column.is_list:
        return pc.fill_null(values.cast(pa.string()), "")
    values = values.cast(pa.list_(pa.string()))
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
    return pa.ListArray.from_arrays(offsets, pc.fill_null(pc.list_flatten(values), ""))


def _image_issues(values: pa.Array, column: Column, ref: FileRef, images: ImageChecker) -> list[Issue]:
    paths = pc.list_flatten(values) if column.is_list else values
    bad = images.bad_paths(paths)
    if not bad:
        return []
    hits = true_rows(pc.is_in(paths, value_set=pa.array(list(bad), pa.string())))
    if not column.is_list:
        return [ref.issue(int(row), column.name, bad[paths[int(row)].as_py()]) for row in hits]
    # Report the first bad candidate of each row.
    parents = pc.list_parent_indices(values).to_numpy()
    starts = values.offsets.to_numpy()
    rows, first = np.unique(parents[hits], return_index=True)
    return [
        ref.issue(int(row), column.name, f"candidate {int(pos - starts[row])}: {bad[paths[int(pos)].as_py()]}")
        for row, pos in zip(rows, hits[first], strict=True)
    ]
