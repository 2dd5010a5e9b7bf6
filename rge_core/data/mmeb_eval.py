"""Reader of MMEB-eval-format folders (TIGER-Lab/MMEB-eval): one sub-folder per dataset, split `test`,
columns qry_text, qry_img_path, tgt_text (list), tgt_img_path (list). Candidate 0 is the ground truth.

Texts keep MMEB's `<|image_1|>` placeholder; the model layer swaps it for the backbone's image tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_schemas import validate
from rge_core.data.images import ImageChecker
from rge_core.data.issues import Issue, raise_first
from rge_core.data.layout import EVAL_SPLIT, DataFolder, pick_subsets
from rge_core.data.scan import Column, FileRef, FileScan, is_empty, scan_split, true_rows

EVAL_COLUMNS = (
    Column("qry_text"),
    Column("qry_img_path", image=True),
    Column("tgt_text", is_list=True),
    Column("tgt_img_path", is_list=True, image=True),
)


def eval_row_issues(columns: dict[str, pa.Array], ref: FileRef) -> list[Issue]:
    """Row rules of MMEB-eval: a query, and non-empty, parallel candidate lists whose entries each
    have text or an image."""
    texts, images = columns["tgt_text"], columns["tgt_img_path"]
    n_text, n_image = pc.list_value_length(texts), pc.list_value_length(images)
    empty_query = pc.and_(is_empty(columns["qry_text"]), is_empty(columns["qry_img_path"]))
    issues = [ref.issue(int(r), "qry_text", "query has neither text nor image") for r in true_rows(empty_query)]
    issues += [ref.issue(int(r), "tgt_text", "empty candidate list") for r in true_rows(pc.equal(n_text, 0))]
    for r in true_rows(pc.not_equal(n_text, n_image)):
        counts = f"{n_image[int(r)].as_py()} image paths but tgt_text has {n_text[int(r)].as_py()} candidates"
        issues.append(ref.issue(int(r), "tgt_img_path", counts))
    # Blank candidates can only be located where both lists line up.
    aligned = true_rows(pc.equal(n_text, n_image))
    flat_text, flat_image = pc.list_flatten(texts.take(aligned)), pc.list_flatten(images.take(aligned))
    blank = true_rows(pc.and_(is_empty(flat_text), is_empty(flat_image)))
    if len(blank):
        parents = aligned[pc.list_parent_indices(texts.take(aligned)).to_numpy()[blank]]
        issues += [ref.issue(int(r), "tgt_text", "a candidate has neither text nor image") for r in np.unique(parents)]
    return issues


def scan_eval(folder: DataFolder, dataset: str, images: ImageChecker) -> list[FileScan]:
    return scan_split(folder, dataset, EVAL_SPLIT, EVAL_COLUMNS, images, eval_row_issues)


def eval_table(scans: list[FileScan], dataset: str) -> pa.Table:
    """The eval_items rows of clean scans, in read order."""
    parts = [
        pa.table(
            {
                "item_id": pa.array([scan.ref.item_id(row) for row in range(scan.num_rows)], pa.string()),
                "dataset": pa.nulls(scan.num_rows, pa.string()).fill_null(dataset),
                "qry_text": scan.columns["qry_text"],
                "qry_image": scan.columns["qry_img_path"],
                "tgt_text": scan.columns["tgt_text"],
                "tgt_image": scan.columns["tgt_img_path"],
            }
        )
        for scan in scans
    ]
    return pa.concat_tables(parts)


def read_mmeb_eval(
    folder: str | Path,
    datasets: list[str] | None = None,
    image_root: str | Path | None = None,
    check_images: bool = True,
) -> pa.Table:
    """Read the `test` split of `datasets` (default: all) into an `eval_items` table.

    Any bad row (missing column, candidate lists of different lengths or empty, a query without text and
    image, an image missing or outside `image_root`) raises DataError naming dataset, file, row and field:
    evaluation on a partial dataset would give wrong scores. `image_root` defaults to the folder itself.
    """
    data = DataFolder.open(folder)
    images = ImageChecker(image_root if image_root is not None else data.local_root, check_images)
    tables, issues = [], []
    for dataset in pick_subsets(data, (EVAL_SPLIT,), datasets):
        scans = scan_eval(data, dataset, images)
        issues += [issue for scan in scans for issue in scan.issues]
        if not issues:
            tables.append(eval_table(scans, dataset))
    raise_first(issues)
    return validate(pa.concat_tables(tables), "eval_items", source=str(folder))
