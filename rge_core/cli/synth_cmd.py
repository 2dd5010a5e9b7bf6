"""`rge synth OUT`: write the synthetic benchmark (MMEB train/eval layouts, facts, benchmark.json), or with
`--hub-layout` MMEB-train and MMEB-eval laid out exactly as the Hub serves them (rge_core/synth/hub_snapshot.py).

rge synth data/synth --seed 0 --train-per-subset 64 --eval-per-subset 32 --candidates 8 --image-size 64
rge synth data/hub --hub-layout --train-per-subset 16 --eval-per-subset 12
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rge_core.allowed_roots import check_cli_path
from rge_core.synth.hub_snapshot import write_hub_snapshot
from rge_core.synth.writer import write_benchmark


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created if missing).")],
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    train_per_subset: Annotated[int, typer.Option(help="Rows per subset in train/<Subset>/original.parquet.")] = 64,
    eval_per_subset: Annotated[int, typer.Option(help="Queries per subset in eval/<Subset>/test.parquet.")] = 32,
    candidates: Annotated[int, typer.Option(help="Candidates per eval query, ground truth first.")] = 8,
    image_size: Annotated[int, typer.Option(help="Side of every PNG, in pixels.")] = 64,
    suite: Annotated[
        str,
        typer.Option(help="mmeb (six MMEB-like subsets) | reasoning (computed answers) | ranking (colours by count)."),
    ] = "mmeb",
    query_view: Annotated[str, typer.Option(help="full | text-only | image-only (blind baselines).")] = "full",
    hub_layout: Annotated[
        bool,
        typer.Option(
            "--hub-layout",
            help="Write OUT/MMEB-train and OUT/MMEB-eval as the Hub serves them (MMEB names, zipped images, "
            "CIFAR-100) and OUT/RGE/src/ rewrite files in the release's format; the mmeb suite, full view.",
        ),
    ] = False,
) -> None:
    """Generate the synthetic benchmark of coloured-shape scenes."""
    start = time.perf_counter()
    try:
        check_cli_path("OUT", out)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    if hub_layout:
        if (suite, query_view) != ("mmeb", "full"):
            raise typer.BadParameter(
                "the Hub layout stands the mmeb suite's full view in for MMEB", param_hint="--hub-layout"
            )
        write_hub_snapshot(
            out,
            seed=seed,
            train_rows=train_per_subset,
            eval_rows=eval_per_subset,
            candidates=candidates,
            image_size=image_size,
        )
        typer.echo(f"wrote {out}/MMEB-train, {out}/MMEB-eval and {out}/RGE/src in {time.perf_counter() - start:.1f}s")
        return
    try:
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
