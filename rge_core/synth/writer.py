"""Writes the synthetic benchmark in MMEB's folder layouts.

    OUT/train/<Subset>/original.parquet   MMEB-train columns, one hard negative per row
    OUT/eval/<Subset>/test.parquet        MMEB-eval columns, ground truth at candidate 0
    OUT/{train,eval}/images/<Subset>/     PNGs; parquet paths are relative to OUT/train resp. OUT/eval
    OUT/facts.parquet                     the reference reasoning behind every row, keyed by item_id
    OUT/benchmark.json                    parameters, subsets and row counts; written last

Every row is a pure function of (seed, split, subset, row), so a seed reproduces every file byte for byte.
"""

from __future__ import annotations

import io
import json
import random
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from PIL import Image

from rge_core.fileio import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from rge_core.synth import ranking, reasoning, tasks
from rge_core.synth.scenes import Scene, render
from rge_core.synth.tasks import IMAGE_TARGET, MAX_CANDIDATES, Item, Side, Subset

TRAIN_SCHEMA = pa.schema(
    [
        (name, pa.string())
        for name in ("qry", "qry_image_path", "pos_text", "pos_image_path", "neg_text", "neg_image_path")
    ]
)
EVAL_SCHEMA = pa.schema(
    [
        ("qry_text", pa.string()),
        ("qry_img_path", pa.string()),
        ("tgt_text", pa.list_(pa.string())),
        ("tgt_img_path", pa.list_(pa.string())),
    ]
)
FACTS_SCHEMA = pa.schema([(name, pa.string()) for name in ("item_id", "subset", "split", "facts")])
MIN_IMAGE_SIZE = 32  # below this the small shapes are a few pixels wide and stop being recognisable
SUITES: dict[str, tuple[Subset, ...]] = {
    "mmeb": tasks.SUBSETS,
    "reasoning": reasoning.SUBSETS,
    "ranking": ranking.SUBSETS,
}
QUERY_VIEWS = ("full", "text-only", "image-only")


def _viewed(item: Item, view: str, image_size: int) -> Item:
    """`item` with its query blinded: text-only keeps the text and blanks the image (same size, so the
    prompt keeps its image tokens); image-only keeps the image under one neutral text."""
    query = item.query
    if view == "text-only" and query.image is not None:
        query = Side(query.text, render(Scene(()), image_size))
    elif view == "image-only":
        query = Side(IMAGE_TARGET if query.image is not None else "Represent the given text.\n", query.image)
    return replace(item, query=query)


def _items(subset: Subset, split: str, rows: int, seed: int, image_size: int, n_targets: int, view: str) -> list[Item]:
    # random.Random hashes a str seed with SHA-512: rows are independent and immune to PYTHONHASHSEED.
    return [
        _viewed(
            subset.make(random.Random(f"{seed}/{split}/{subset.name}/{row}"), image_size, n_targets), view, image_size
        )
        for row in range(rows)
    ]


def _image(images: dict[str, Image.Image], side: Side, subset: str, row: int, slot: str) -> str:
    """Registers `side`'s image for writing and returns its relative path ("" when it has none)."""
    if side.image is None:
        return ""
    path = f"images/{subset}/{row:05d}{slot}.png"
    images[path] = side.image
    return path


def _train_table(subset: str, items: list[Item], images: dict[str, Image.Image]) -> pa.Table:
    rows = []
    for row, item in enumerate(items):
        pos, neg = item.targets
        rows.append(
            {
                "qry": item.query.text,
                "qry_image_path": _image(images, item.query, subset, row, ""),
                "pos_text": pos.text,
                "pos_image_path": _image(images, pos, subset, row, "_pos"),
                "neg_text": neg.text,
                "neg_image_path": _image(images, neg, subset, row, "_neg"),
            }
        )
    return pa.Table.from_pylist(rows, schema=TRAIN_SCHEMA)


def _eval_table(subset: str, items: list[Item], images: dict[str, Image.Image]) -> pa.Table:
    rows = [
        {
            "qry_text": item.query.text,
            "qry_img_path": _image(images, item.query, subset, row, ""),
            "tgt_text": [t.text for t in item.targets],
            "tgt_img_path": [_image(images, t, subset, row, f"_{k}") for k, t in enumerate(item.targets)],
        }
        for row, item in enumerate(items)
    ]
    return pa.Table.from_pylist(rows, schema=EVAL_SCHEMA)


def _write_png(url: str, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # PIL writes no timestamp chunk, so equal pixels give equal bytes
    atomic_write_bytes(url, buffer.getvalue())


def write_benchmark(
    out: str | Path,
    *,
    seed: int = 0,
    train_per_subset: int = 64,
    eval_per_subset: int = 32,
    candidates: int = 8,
    image_size: int = 64,
    suite: str = "mmeb",
    query_view: str = "full",
) -> dict[str, Any]:
    """Generates the benchmark under `out` (a local folder or an fsspec URL) and returns its summary, the
    content of benchmark.json."""
    if not 2 <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must be between 2 and {MAX_CANDIDATES}, got {candidates}")
    if min(train_per_subset, eval_per_subset) < 0:
        raise ValueError("row counts must not be negative")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    if suite not in SUITES or query_view not in QUERY_VIEWS:
        raise ValueError(f"unknown suite {suite!r} or query_view {query_view!r}: {sorted(SUITES)}, {QUERY_VIEWS}")
    subsets = SUITES[suite]
    root = str(out).rstrip("/")
    splits = (
        ("train", "original", train_per_subset, 2, _train_table),
        ("eval", "test", eval_per_subset, candidates, _eval_table),
    )
    facts: list[dict[str, str]] = []
    pending: list[Future[None]] = []
    # Encoding and fsync'ing PNGs dominate the run time; threads overlap them with scene generation.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for split, config, rows, n_targets, to_table in splits:
            for subset in subsets:
                items = _items(subset, split, rows, seed, image_size, n_targets, query_view)
                images: dict[str, Image.Image] = {}
                table = to_table(subset.name, items, images)
                pending += [pool.submit(_write_png, f"{root}/{split}/{path}", image) for path, image in images.items()]
                atomic_write_parquet(f"{root}/{split}/{subset.name}/{config}.parquet", table)
                facts += [
                    {
                        "item_id": f"{subset.name}/{config}/{row}",
                        "subset": subset.name,
                        "split": split,
                        "facts": item.facts,
                    }
                    for row, item in enumerate(items)
                ]
        for future in pending:
            future.result()
    atomic_write_parquet(f"{root}/facts.parquet", pa.Table.from_pylist(facts, schema=FACTS_SCHEMA))
    summary = {
        "name": "rge-synth",
        "seed": seed,
        "parameters": {
            "train_per_subset": train_per_subset,
            "eval_per_subset": eval_per_subset,
            "candidates": candidates,
            "image_size": image_size,
            "suite": suite,
            "query_view": query_view,
        },
        "layout": {
            "train": "train/<subset>/original.parquet",
            "eval": "eval/<subset>/test.parquet",
            "image_root": {"train": "train", "eval": "eval"},
            "facts": "facts.parquet",
        },
        "subsets": [
            {"name": s.name, "category": s.category, "train_rows": train_per_subset, "eval_rows": eval_per_subset}
            for s in subsets
        ],
    }
    atomic_write_text(f"{root}/benchmark.json", json.dumps(summary, indent=2) + "\n")
    return summary
