"""`rge export MODEL DEST [--push REPO]`: a model artifact as a Hub-ready folder with its model card
(rge_core/export/export.py, docs/inference.md).

    rge export model-dcf74d5406f1 exports/rge-tiny --config configs/tiny.yaml
    rge export model-dcf74d5406f1 exports/rge-tiny --push my-user/rge-tiny      # needs HF_TOKEN
"""

from __future__ import annotations

from pathlib import Path

import typer

from rge_core import stage_logs
from rge_core.config.loader import load_config


def export(
    model: str = typer.Argument(..., help="Model artifact id (under the root) or artifact folder."),
    dest: Path = typer.Argument(..., help="Folder to write (must not exist, or be empty)."),
    push: str = typer.Option("", "--push", help="Also upload DEST to this Hugging Face Hub model repo."),
    base_model: str = typer.Option("", "--base-model", help="The base model's Hub repo, for the card's metadata."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML preset (eval decoding, image bounds)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Dotted override key=value (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print the libraries' output here."),
) -> None:
    """Write MODEL to DEST as a folder plain transformers loads and generates with: merged weights in the
    training dtype, processor and tokenizer with <emb>, the eval's decoding as generation config, README.md."""
    from rge_core.export.export import export_model
    from rge_core.export.hub import HubError

    # What transformers prints goes to a log beside DEST, kept only when the export fails (--verbose: here).
    log = dest.parent / f".{dest.name}.export.log"
    try:
        resolved = load_config(config, overrides or [])
        with stage_logs.quiet(not verbose), stage_logs.capture(log):
            result = export_model(resolved, model, dest, push=push, base_model=base_model)
        log.unlink(missing_ok=True)
    except HubError as error:
        typer.echo(f"error: {error} (the export itself is complete in {dest})", err=True)
        raise typer.Exit(1) from None
    except (ValueError, FileExistsError, FileNotFoundError, LookupError) as error:
        typer.echo(f"error: {error}", err=True)
        for note in getattr(error, "__notes__", []):  # the log and its last lines
            typer.echo(note, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"exported {model} to {result.folder} ({result.dtype}); model card {result.folder / 'README.md'}")
    if result.url:
        typer.echo(f"pushed: {result.url}")
