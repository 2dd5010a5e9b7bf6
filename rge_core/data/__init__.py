"""MMEB-format data: readers of MMEB-train / MMEB-eval folders, image path checks, and `rge data check`."""

from __future__ import annotations

from rge_core.data.check import CheckReport, check_folder
from rge_core.data.images import resolve_image
from rge_core.data.issues import DataError, Issue
from rge_core.data.layout import list_subsets
from rge_core.data.mmeb_eval import read_mmeb_eval
from rge_core.data.mmeb_train import read_mmeb_train

__all__ = [
    "CheckReport",
    "DataError",
    "Issue",
    "check_folder",
    "list_subsets",
    "read_mmeb_eval",
    "read_mmeb_train",
    "resolve_image",
]
