"""rge: curate reasoning data, train and evaluate Reasoning Guided Embeddings.

Each command group lives in its own module; this file only mounts them. `rge --help` lists them.
"""

from __future__ import annotations

import typer

from rge_core.cli import artifacts_cmd, config_cmd, data_cmd, embed_cmd, export_cmd, model_cmd, stages_cmd, synth_cmd


def build_app() -> typer.Typer:
    """The command line, with one command per declared stage (rge_core/stages/registry.py)."""
    app = typer.Typer(
        no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False, help=__doc__.splitlines()[0]
    )
    app.add_typer(data_cmd.app, name="data", help="Validate MMEB-format data folders.")
    app.add_typer(artifacts_cmd.app, name="artifacts", help="List and inspect versioned artifacts.")
    app.add_typer(config_cmd.app, name="config", help="Show resolved configs.")
    app.command("tiny-model")(model_cmd.tiny_model)
    app.command("synth")(synth_cmd.synth)
    app.command("embed")(embed_cmd.embed)
    app.command("export")(export_cmd.export)
    for name, command in stages_cmd.commands().items():
        app.command(name)(command)
    return app


app = build_app()

if __name__ == "__main__":
    app()
