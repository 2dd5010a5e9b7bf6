"""`rge embed`: embed a collection with a trained model (rge_core/stages/embed.py, docs/inference.md).

rge embed --model model-3f2a9c01b7de --input corpus.jsonl --side candidate --out corpus.parquet
rge embed --model my-export/ --input /data/MMEB-eval --side query --reasoning off
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from rge_core import progress, stage_logs
from rge_core.cli.progress_display import StageDisplay
from rge_core.config.loader import load_config

_SIDES = ("query", "candidate")


def embed(
    model: str = typer.Option(..., "--model", help="Model artifact id or folder, or a checkpoint folder."),
    source: str = typer.Option(..., "--input", help="Items: FILE.jsonl, FILE.parquet or an MMEB-eval folder."),
    side: str = typer.Option(..., "--side", help="query (reasons first) or candidate."),
    out: Path | None = typer.Option(None, "--out", help="Parquet file to write; default: an artifact under the root."),
    reasoning: str | None = typer.Option(None, "--reasoning", help="on | off, queries only (eval.reasoning)."),
    image_root: str = typer.Option(
        "", "--image-root", help="Folder image paths are relative to (default: the input's)."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML preset (model.*, eval.*); default: defaults."
    ),
    overrides: list[str] | None = typer.Option(None, "--set", help="Dotted override key=value (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print the libraries' output here."),
) -> None:
    """Embed every item of INPUT (one side) into a parquet file: id, vector and, for queries, rationale and
    budget_hit. Resumable: a rerun after a kill encodes only the chunks that are missing."""
    from rge_core.stages.embed import EmbedRequest
    from rge_core.stages.embed import embed as run_embed

    try:
        if side not in _SIDES:
            raise ValueError(f"--side: {side!r} is not query or candidate")
        if reasoning not in (None, "on", "off"):
            raise ValueError(f"--reasoning: {reasoning!r} is not on or off")
        if reasoning is not None and side == "candidate":
            raise ValueError("--reasoning: candidates never reason (it applies to --side query)")
        resolved = load_config(config, overrides or [])
        chosen = resolved.eval.reasoning if reasoning is None else reasoning == "on"
        request = EmbedRequest(model, source, side, chosen, image_root, str(out) if out else "")
        started = time.monotonic()
        with stage_logs.quiet(not verbose) as terminal:
            console = Console(file=terminal)
            with StageDisplay(console, live=console.is_terminal and not verbose) as display:
                with progress.listening(display, details=True):
                    outcome = run_embed(resolved, request)
    except (ValueError, FileNotFoundError, LookupError) as error:
        typer.echo(f"error: {error}", err=True)
        for note in getattr(error, "__notes__", []):  # a failed build's log and its last lines
            typer.echo(note, err=True)
        raise typer.Exit(1) from None
    seconds = time.monotonic() - started
    done = outcome.embedded
    if done is None:
        typer.echo(f"{outcome.path}: up to date (same model, input and settings); nothing to do")
        return
    rows, dim = done.table.num_rows, done.table.schema.field("vector").type.list_size
    hits = f", {done.budget_hits} budget hits" if side == "query" and request.reasoning else ""
    typer.echo(
        f"embedded {rows} {side} items (dim {dim}{hits}) in {seconds:.1f} s; "
        f"{done.chunks_encoded} of {done.chunks} chunks encoded now"
    )
    typer.echo(f"{'artifact ' + outcome.version + ': ' if outcome.version else ''}{outcome.path}")
