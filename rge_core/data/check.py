"""`rge data check`: validate every row of an MMEB-train or MMEB-eval folder and summarise it.

Unlike the readers, which stop at the first problem, this collects all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.compute as pc

from rge_core.data.images import ImageChecker
from rge_core.data.issues import DataError, Issue
from rge_core.data.layout import EVAL_SPLIT, TRAIN_SPLITS, DataFolder, pick_subsets
from rge_core.data.mmeb_eval import EVAL_COLUMNS, scan_eval
from rge_core.data.mmeb_train import TRAIN_COLUMNS, scan_train
from rge_core.data.scan import FileScan

Kind = Literal["auto", "train", "eval"]
# Problems kept in the report; the total is always counted.
MAX_KEPT_ERRORS = 1000


@dataclass
class SplitSummary:
    subset: str
    split: str
    files: int
    rows: int
    candidates: tuple[int, float, int] | None = None  # min, mean, max per query (eval only)


@dataclass
class CheckReport:
    folder: str
    kind: str  # "train", "eval" or "unknown" when the folder could not be read
    image_root: str
    images_checked: bool  # False: only the paths were checked (no local image root)
    splits: list[SplitSummary] = field(default_factory=list)
    images_referenced: int = 0
    images_bad: int = 0  # missing, or outside the image root
    errors: list[str] = field(default_factory=list)  # the first MAX_KEPT_ERRORS
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_errors(self, issues: list[Issue] | list[str]) -> None:
        self.errors += [str(issue) for issue in issues[: MAX_KEPT_ERRORS - len(self.errors)]]
        self.error_count += len(issues)


def detect_kind(data: DataFolder) -> Literal["train", "eval"]:
    """Tell the layout apart by the columns of the first parquet file found."""
    for subset in data.subsets((*TRAIN_SPLITS, EVAL_SPLIT)):
        for split in (EVAL_SPLIT, *TRAIN_SPLITS):
            path = data.first_file(subset, split)
            if path is None:
                continue
            names = set(data.columns(path))
            if names >= {c.name for c in EVAL_COLUMNS if c.required}:
                return "eval"
            if names >= {c.name for c in TRAIN_COLUMNS if c.required}:
                return "train"
            raise DataError(f"{data.display(path)}: columns {sorted(names)} are neither MMEB-train nor MMEB-eval")
    raise DataError(f"{data.url}: no subset folder with parquet files of split {(*TRAIN_SPLITS, EVAL_SPLIT)}")


def check_folder(
    folder: str | Path, image_root: str | Path | None = None, kind: Kind = "auto", decode: bool = True
) -> CheckReport:
    """Validate every row of `folder` (images under `image_root`, default the folder itself; `decode`: open
    every image with PIL, not just find it)."""
    report = CheckReport(str(folder), "unknown", str(image_root or folder), images_checked=False)
    try:
        data = DataFolder.open(folder)
        root = image_root if image_root is not None else data.local_root
        images = ImageChecker(root, check_files=root is not None, decode=decode)
        report.images_checked = root is not None
        report.kind = detect_kind(data) if kind == "auto" else kind
        splits = (EVAL_SPLIT,) if report.kind == "eval" else TRAIN_SPLITS
        subsets = pick_subsets(data, splits, None)
    except DataError as exc:
        report.add_errors([str(exc)])
        return report
    for subset in subsets:
        for split in splits:
            try:
                if report.kind == "eval":
                    scans = scan_eval(data, subset, images)
                else:
                    scans = scan_train(data, subset, split, images)
            except DataError as exc:  # a split stored in two layouts: keep checking the others
                report.add_errors([str(exc)])
                continue
            if scans:
                report.splits.append(_summary(subset, split, scans, report.kind == "eval"))
                report.add_errors([issue for scan in scans for issue in scan.issues])
    report.images_referenced, report.images_bad = images.referenced, images.bad
    return report


def _summary(subset: str, split: str, scans: list[FileScan], with_candidates: bool) -> SplitSummary:
    summary = SplitSummary(subset, split, len(scans), sum(scan.num_rows for scan in scans))
    if not with_candidates:
        return summary
    lengths = [pc.list_value_length(scan.columns["tgt_text"]).to_numpy() for scan in scans if scan.columns]
    counts = np.concatenate(lengths) if lengths else np.empty(0)
    if len(counts):
        summary.candidates = (int(counts.min()), float(counts.mean()), int(counts.max()))
    return summary
