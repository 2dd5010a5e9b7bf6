"""`rge synth OUT`: write the synthetic benchmark (MMEB train/eval layouts, facts, benchmark.json).

rge synth data/synth --seed 0 --train-per-subset 64 --eval-per-subset 32 --candidates 8 --image-size 64
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rge_core.allowed_roots import check_cli_path
from rge_core.synth.writer import write_benchmark


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created if missing).")],
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    train_per_subset: Annotated[int, typer.Option(help="Rows per subset in train/<Subset>/original.parquet.")] = 64,
    eval_per_subset: Annotated[int, typer.Option(help="Queries per subset in eval/<Subset>/test.parquet.")] = 32,
    candidates: Annotated[int, typer.Option(help="Candidates per eval query, ground truth first.")] = 8,
    image_size: Annotated[int, typer.Option(help="Side of every PNG, in pixels.")] = 64,
    suite: Annotated[str, typer.Option(help="mmeb (six MMEB-like subsets) | reasoning (computed answers).")] = "mmeb",
    query_view: Annotated[str, typer.Option(help="full | text-only | image-only (blind baselines).")] = "full",
) -> None:
    """Generate the synthetic benchmark of coloured-shape scenes."""
    start = time.perf_counter()
    try:
        check_cli_path("OUT", out)
        summary = write_benchmark(
            out,
            seed=seed,
            train_per_subset=train_per_subset,
            eval_per_subset=eval_per_subset,
            candidates=candidates,
            image_size=image_size,
            suite=suite,
            query_view=query_view,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(json.dumps(summary, indent=2))
    typer.echo(f"wrote {out} in {time.perf_counter() - start:.1f}s")
