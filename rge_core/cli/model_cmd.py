"""`rge tiny-model OUT --arch qwen2-vl --seed 0`: write a tiny random Qwen-VL checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import typer

from rge_core.allowed_roots import OutsideAllowedRoots, check_cli_path


def tiny_model(
    out: Path = typer.Argument(..., help="Folder to write the checkpoint into."),
    arch: str = typer.Option("qwen2-vl", "--arch", help="qwen2-vl or qwen2.5-vl."),
    seed: int = typer.Option(0, "--seed", help="Weight seed; the same seed writes identical files."),
) -> None:
    """Write a tiny random checkpoint built from the real transformers Qwen-VL classes."""
    from rge_core.model.tiny import ARCHS, write_tiny_model  # heavy: keeps `rge --help` fast

    if arch not in ARCHS:
        raise typer.BadParameter(f"choose one of {sorted(ARCHS)}", param_hint="--arch")
    try:
        check_cli_path("OUT", out)
    except OutsideAllowedRoots as error:
        raise typer.BadParameter(str(error), param_hint="OUT") from None
    typer.echo(write_tiny_model(out, arch=arch, seed=seed))
