"""Reader of MMEB-train-format folders (TIGER-Lab/MMEB-train): one sub-folder per subset, splits
`original` and `diverse_instruction`, columns qry, qry_image_path, pos_text, pos_image_path and optional
neg_text, neg_image_path. Produces the canonical `pairs` table.

Texts keep MMEB's `<|image_1|>` placeholder; the model layer swaps it for the backbone's image tokens.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_schemas import validate
from rge_core.data.images import ImageChecker
from rge_core.data.issues import Issue, raise_first
from rge_core.data.layout import TRAIN_SPLITS, DataFolder, pick_subsets
from rge_core.data.scan import Column, FileRef, FileScan, is_empty, scan_split, true_rows

TRAIN_COLUMNS = (
    Column("qry"),
    Column("qry_image_path", image=True),
    Column("pos_text"),
    Column("pos_image_path", image=True),
    Column("neg_text", required=False),
    Column("neg_image_path", required=False, image=True),
)


def train_row_issues(columns: dict[str, pa.Array], ref: FileRef, max_text_chars: int | None = None) -> list[Issue]:
    """Row rules of MMEB-train: query and positive each have text or an image (a hard negative is optional);
    with `max_text_chars`, no text longer than that (data.max_text_chars)."""
    empty_query = pc.and_(is_empty(columns["qry"]), is_empty(columns["qry_image_path"]))
    empty_positive = pc.and_(is_empty(columns["pos_text"]), is_empty(columns["pos_image_path"]))
    issues = [ref.issue(int(r), "qry", "empty query (no text, no image)") for r in true_rows(empty_query)] + [
        ref.issue(int(r), "pos_text", "empty positive (no text, no image)") for r in true_rows(empty_positive)
    ]
    if max_text_chars is not None:
        for name in ("qry", "pos_text", "neg_text"):
            lengths = pc.utf8_length(columns[name])
            for r in true_rows(pc.greater(lengths, max_text_chars)):
                chars = lengths[int(r)].as_py()
                issues.append(
                    ref.issue(int(r), name, f"text of {chars} characters, above data.max_text_chars ({max_text_chars})")
                )
    return issues


def scan_train(
    folder: DataFolder, subset: str, split: str, images: ImageChecker, max_text_chars: int | None = None
) -> list[FileScan]:
    rules = functools.partial(train_row_issues, max_text_chars=max_text_chars)
    return scan_split(folder, subset, split, TRAIN_COLUMNS, images, rules)


def pairs_table(scan: FileScan) -> pa.Table:
    """The `pairs` rows of one scanned file, without its bad rows."""
    keep = np.setdiff1d(np.arange(scan.num_rows), scan.bad_rows())
    column = {name: values.take(keep) for name, values in scan.columns.items()}
    return pa.table(
        {
            "pair_id": pa.array([scan.ref.item_id(int(row)) for row in keep], pa.string()),
            "subset": pa.nulls(len(keep), pa.string()).fill_null(scan.ref.subset),
            "split": pa.nulls(len(keep), pa.string()).fill_null(scan.ref.split),
            "qry_text": column["qry"],
            "qry_image": column["qry_image_path"],
            "pos_text": column["pos_text"],
            "pos_image": column["pos_image_path"],
            "neg_text": column["neg_text"],
            "neg_image": column["neg_image_path"],
        }
    )


def read_mmeb_train(
    folder: str | Path,
    split: str = "original",
    subsets: list[str] | None = None,
    image_root: str | Path | None = None,
    check_images: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
    pixel_cap: int | None = None,
    max_text_chars: int | None = None,
) -> tuple[pa.Table, list[Issue]]:
    """Read `split` of `subsets` (default: all holding it) into a `pairs` table.

    pair_id is f"{subset}/{split}/{row}", the row counted over the split's shards in sorted order, so ids
    stay stable when rows are skipped. A bad row (empty query or positive, an image missing or outside
    `image_root`) raises DataError naming subset, file, row and field; with on_error="skip" it is left out
    and returned as a reject (one Issue per rejected row, its first problem). File-level problems (missing
    column, wrong column type, unreadable file) raise in both modes: they mean the folder is not MMEB-train.
    `image_root` defaults to the folder itself. With `pixel_cap` every image's header is checked too
    (truncated, undecodable, more pixels than the cap), with `max_text_chars` every text's length.
    """
    if split not in TRAIN_SPLITS:
        raise ValueError(f"split must be one of {TRAIN_SPLITS}, got {split!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    data = DataFolder.open(folder)
    images = ImageChecker(image_root if image_root is not None else data.local_root, check_images, pixel_cap=pixel_cap)
    tables, rejects = [], []
    for subset in pick_subsets(data, (split,), subsets):
        for scan in scan_train(data, subset, split, images, max_text_chars):
            raise_first([issue for issue in scan.issues if issue.row is None])
            if on_error == "raise":
                raise_first(scan.issues)
            rejects += _first_per_row(scan.issues)
            tables.append(pairs_table(scan))
    return validate(pa.concat_tables(tables), "pairs", source=str(folder)), rejects


def _first_per_row(issues: list[Issue]) -> list[Issue]:
    seen: set[int | None] = set()
    first = []
    for issue in issues:
        if issue.row not in seen:
            seen.add(issue.row)
            first.append(issue)
    return first
