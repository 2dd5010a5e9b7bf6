"""Collections to embed (`rge embed --input`): a JSON-lines or parquet file of items, or an MMEB-eval folder.
Every row is checked before any model work; a bad one stops the run in one line naming file, row and field.

File rows have `text` and/or `image` (a path relative to the image root, by default the file's folder, or
absolute), and optionally `id` (a string or integer, unique; default: the row number) and `dataset` (what the
eval rewrite rules are looked up by). An MMEB-eval folder gives, per dataset, its queries (ids as the eval's
item ids, `<dataset>/test/<row>`) or its candidates deduplicated by content after rewriting, exactly as the
eval encodes them (`<dataset>/candidate/<k>`: the k-th distinct (text, image) in row order, ground truth first).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rge_core.data.issues import DataError
from rge_core.data.layout import EVAL_SPLIT, DataFolder
from rge_core.data.mmeb_eval import read_mmeb_eval
from rge_core.data.rewrites import RewriteFile
from rge_core.data.special_text import RESERVED
from rge_core.embedding.items import as_queries, as_targets
from rge_core.evaluation.work import dataset_work
from rge_core.model.inputs import Query, Target
from rge_core.sources import folder_fingerprint

SIDES = ("query", "candidate")
FIELDS = ("id", "text", "image", "dataset")


@dataclass
class Collection:
    ids: list[str]
    items: list[Query] | list[Target]  # rewritten: the Embedder takes them as they are
    identity: dict  # what identifies the input in a version: path, content digest, images
    where: Callable[[int], str]  # "items.jsonl: row 3": where item k came from, for errors


def read_collection(
    source: str | Path,
    side: str,
    image_root: str | Path | None = None,
    query_rewrites: RewriteFile | None = None,
    candidate_rewrites: RewriteFile | None = None,
) -> Collection:
    """The items of `source` for `side` ("query" or "candidate"); raises DataError on the first bad row."""
    if side not in SIDES:
        raise ValueError(f"--side: {side!r} is not query or candidate")
    path = Path(source)
    if path.is_dir():
        return _mmeb_collection(
            path, side, Path(image_root) if image_root else path, query_rewrites, candidate_rewrites
        )
    if path.suffix not in (".jsonl", ".parquet"):
        raise DataError(f"--input: {source} is not a .jsonl or .parquet file nor an MMEB-eval folder")
    if not path.is_file():
        raise DataError(f"--input: {source}: file not found")
    rows = _jsonl_rows(path) if path.suffix == ".jsonl" else pq.read_table(path).to_pylist()
    root = Path(image_root) if image_root else path.parent
    if not rows:
        raise DataError(f"--input: {source}: no rows")
    ids, items, images = _check_rows(path, rows, root)
    rewrites = query_rewrites if side == "query" else candidate_rewrites
    converted = as_queries(items, rewrites) if side == "query" else as_targets(items, rewrites)
    identity = {"input": str(path.resolve()), "sha256": _sha256(path), "images": _stat_digest(images)}
    return Collection(ids, converted, identity, lambda k: f"{source}: row {k}")


def _jsonl_rows(path: Path) -> list[Any]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: row {len(rows)} (line {number}): not valid JSON ({error.msg})") from None
    return rows


def _check_rows(path: Path, rows: list[Any], root: Path) -> tuple[list[str], list[dict], list[Path]]:
    """(ids, items with resolved image paths, the image files) of checked rows."""
    named = sum(isinstance(row, dict) and row.get("id") is not None for row in rows)
    ids: list[str] = []
    items: list[dict] = []
    images: list[Path] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"{path}: row {index}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object with fields {', '.join(FIELDS)}, got {type(row).__name__}")
        unknown = [key for key in row if key not in FIELDS]
        if unknown:
            raise DataError(f"{where}: field {unknown[0]!r}: unknown (fields: {', '.join(FIELDS)})")
        for field in ("text", "image", "dataset"):
            if row.get(field) is not None and not isinstance(row[field], str):
                raise DataError(f"{where}: field {field!r}: expected a string, got {type(row[field]).__name__}")
        ident = _row_id(row.get("id"), index, named > 0, where)
        if ident in seen:
            raise DataError(f"{where}: field 'id': {ident!r} repeats row {seen[ident]}")
        seen[ident] = index
        text, image = row.get("text") or "", row.get("image") or ""
        if not text and not image:
            raise DataError(f"{where}: field 'text': the row has neither text nor an image")
        found = [token for token in RESERVED if token in text]
        if found:
            raise DataError(f"{where}: field 'text': contains the model's special tokens {' '.join(found)}")
        resolved = _image_file(root, image, where) if image else None
        if resolved is not None:
            images.append(resolved)
        ids.append(ident)
        items.append({"text": text, "image": resolved, "dataset": row.get("dataset") or ""})
    return ids, items, images


def _row_id(value: Any, index: int, required: bool, where: str) -> str:
    if value is None:
        if required:
            raise DataError(f"{where}: field 'id': missing (other rows have one)")
        return str(index)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise DataError(f"{where}: field 'id': expected a non-empty string or an integer, got {value!r}")
    return str(value)


def _image_file(root: Path, image: str, where: str) -> Path:
    target = Path(image) if os.path.isabs(image) else root / image
    if not target.is_file():
        raise DataError(f"{where}: field 'image': missing image {image!r} (looked for {target})")
    return target.resolve()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_digest(images: list[Path]) -> str:
    """Path, size and mtime of every image (stat only): a replaced image makes a new version."""
    digest = hashlib.sha256()
    for image in sorted(set(images)):
        stat = image.stat()
        digest.update(f"{image}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _mmeb_collection(
    folder: Path,
    side: str,
    image_root: Path,
    query_rewrites: RewriteFile | None,
    candidate_rewrites: RewriteFile | None,
) -> Collection:
    """Every dataset's queries, or its unique candidates, as the eval stage builds them (evaluation/work.py)."""
    datasets = DataFolder.open(folder).subsets((EVAL_SPLIT,))
    if not datasets:
        raise DataError(f"--input: {folder} is a folder but has no dataset folder with a {EVAL_SPLIT} split")
    for setting, rewrites in (("eval.query_rewrites", query_rewrites), ("eval.candidate_rewrites", candidate_rewrites)):
        if rewrites is not None:
            rewrites.check_datasets(datasets, setting)
    table = read_mmeb_eval(folder, datasets, image_root)
    ids: list[str] = []
    items: list = []
    for name in datasets:
        work = dataset_work(table, name, image_root, query_rewrites, candidate_rewrites)
        if side == "query":
            ids += [row["item_id"] for row in work.rows]
            items += work.queries
        else:
            ids += [f"{name}/candidate/{k}" for k in range(len(work.targets))]
            items += work.targets
    identity = {"input": str(folder.resolve()), "image_root": str(image_root.resolve())}
    identity["fingerprint"] = folder_fingerprint(folder.resolve(), image_root.resolve())
    return Collection(ids, items, identity, lambda k: ids[k])
