"""`rge config show --config configs/tiny.yaml --set data.synth.seed=3`: print the resolved config as YAML.
`rge config explain [KEY]`: what a setting (or every setting of a section, or all) does, its default, bounds,
version effect and the presets' values; `--markdown` writes docs/settings.md."""

from __future__ import annotations

from pathlib import Path

import typer

from rge_core.allowed_roots import OutsideAllowedRoots, load_cli_config
from rge_core.config.errors import ConfigError
from rge_core.config.loader import to_yaml

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Show resolved configs and explain settings."""


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


@app.command()
def explain(
    key: str | None = typer.Argument(None, help="A setting (train.decoding.temperature) or a section (train)."),
    markdown: bool = typer.Option(False, "--markdown", help="All settings as docs/settings.md holds them."),
) -> None:
    """What a setting does: help, type, default, range or choices, version effect, the presets' values."""
    from rge_core.config.explain import as_text, explain, settings_markdown

    if markdown:
        typer.echo(settings_markdown(), nl=False)
        return
    try:
        docs = explain(key)
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n\n".join(as_text(doc) for doc in docs))
