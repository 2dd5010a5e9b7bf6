"""`rge config show --config configs/tiny.yaml --set data.synth.seed=3`: print the resolved config as YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from rge_core.allowed_roots import OutsideAllowedRoots, load_cli_config
from rge_core.config.loader import ConfigError, to_yaml

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Show resolved configs."""  # a callback keeps `show` a subcommand even though it is the only one


@app.command()
def show(
    config: list[Path] | None = typer.Option(
        None, "--config", "-c", help="YAML preset; repeat it for overlays (later over earlier); omitted: the defaults."
    ),
    overrides: list[str] | None = typer.Option(None, "--set", help="Dotted override key=value (repeatable)."),
) -> None:
    """Print the config after the YAML files and overrides are applied."""
    try:
        resolved = load_cli_config(config, overrides or [])
    except (ConfigError, OutsideAllowedRoots) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(to_yaml(resolved), nl=False)
