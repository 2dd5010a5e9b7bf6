"""Synthetic benchmark writer (`write_benchmark`) throughput, against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_synth.py [--repeats 5] [--quick]

Two comparisons, both at the writer's default size (64 train + 32 eval rows per subset, 8 candidates, 64 px):
  * scaling: the same writer at 1/4 of the rows is the baseline; a rows/s ratio near 1.00x means the run
    time grows linearly with the row count (above 1: fixed costs being amortised).
  * PNG floor: a plain PIL loop that draws and saves as many 64x64 PNGs as the writer produces, with no
    task logic, no parquet and no fsync, is the baseline; the PNGs/s ratio is the writer's speed relative
    to bare PNG encoding + writing.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path

from _timing import Case, measure, print_table
from PIL import Image, ImageDraw

from rge_core.synth.tasks import SUBSETS
from rge_core.synth.writer import write_benchmark

QUICK = {"train_per_subset": 4, "eval_per_subset": 4, "candidates": 2}
DEFAULT = {"train_per_subset": 64, "eval_per_subset": 32, "candidates": 8}
IMAGE_SIZE = 64


def writer(root: Path, rows: dict[str, int]) -> Callable[[], Path]:
    """Each call writes a fresh copy of the benchmark under `root` and returns its folder."""
    runs = itertools.count()

    def run() -> Path:
        out = root / f"synth-{next(runs)}"
        write_benchmark(
            out,
            seed=0,
            image_size=IMAGE_SIZE,
            train_per_subset=rows["train_per_subset"],
            eval_per_subset=rows["eval_per_subset"],
            candidates=rows["candidates"],
        )
        return out

    return run


def png_loop(root: Path, count: int) -> Callable[[], None]:
    """Each call draws `count` simple shapes and saves each as a PNG in a fresh folder."""
    runs = itertools.count()

    def run() -> None:
        out = root / f"png-{next(runs)}"
        out.mkdir()
        for k in range(count):
            image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (235, 235, 235))
            offset = k % (IMAGE_SIZE // 2)
            ImageDraw.Draw(image).ellipse((offset, offset, offset + 24, offset + 24), fill=(200, 40, 40))
            image.save(out / f"{k:05d}.png")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smallest sizes, one repeat (smoke test)")
    args = parser.parse_args()
    full = QUICK if args.quick else DEFAULT
    quarter = {
        **full,
        "train_per_subset": full["train_per_subset"] // 4,
        "eval_per_subset": full["eval_per_subset"] // 4,
    }
    repeats = 1 if args.quick else args.repeats

    def rows(sizes: dict[str, int]) -> int:
        return len(SUBSETS) * (sizes["train_per_subset"] + sizes["eval_per_subset"])

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        root = Path(tmp)
        full_run = writer(root, full)
        pngs = sum(1 for _ in full_run().rglob("*.png"))
        small, large, floor = measure(
            [
                Case("write_benchmark 1/4 size", writer(root, quarter), rows(quarter), "rows"),
                Case("write_benchmark", full_run, rows(full), "rows"),
                Case("plain PIL PNG loop", png_loop(root, pngs), pngs, "PNGs"),
            ],
            repeats=repeats,
        )

    print(
        f"write_benchmark: {rows(full)} rows, {pngs} PNGs of {IMAGE_SIZE}x{IMAGE_SIZE} px at full size; "
        f"median of {repeats} timed runs after 1 warmup"
    )
    print_table("scaling (rows/s; baseline: the same writer at 1/4 of the rows)", small, [large])
    as_pngs = dataclasses.replace(large, items=pngs, unit="PNGs")
    print_table("PNG floor (PNGs/s; baseline: plain PIL loop, same PNG count)", floor, [as_pngs])


if __name__ == "__main__":
    main()
