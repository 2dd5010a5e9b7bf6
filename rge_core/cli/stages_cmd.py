"""Pipeline commands: `rge run --config configs/tiny.yaml [--stages curate]` and one command per stage
(`rge ingest|curate|assemble --config configs/tiny.yaml --set data.synth.seed=1`). A stage command also
runs what the stage depends on; those are reused when their artifacts exist."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rge_core import progress, stage_logs
from rge_core.allowed_roots import load_cli_config
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.progress_display import StageDisplay
from rge_core.config.schema import Config
from rge_core.root_cause import WorkerFailed
from rge_core.stages.declaration import StageDecl

DEFAULT_CONFIG = Path("configs/tiny.yaml")
_CONFIG = typer.Option(
    None, "--config", "-c", help="YAML preset; repeat it for overlays, later files over earlier ones. Default tiny."
)
_OVERRIDES = typer.Option(None, "--set", help="Dotted override key=value (repeatable).")
_VERBOSE = typer.Option(
    False, "--verbose", "-v", help="Print the libraries' output here instead of each stage's log file."
)
_CHECK = typer.Option(
    False,
    "--check",
    help="Check every setting, path and image root of what would run and print the plan (each stage's artifact, "
    "reused or to build), in seconds: nothing is loaded, fetched or built.",
)


def _report(config, results: dict[str, str | None]) -> None:
    store = ArtifactStore.from_config(config)
    table = Table(title=f"artifacts under {store.root}")
    for column in ("stage", "artifact", "stats"):
        table.add_column(column)
    for stage, version in results.items():
        stats = store.get(version).manifest.stats if version else {}
        brief = ", ".join(f"{k}={v}" for k, v in stats.items() if not isinstance(v, (dict, list)))
        table.add_row(stage, version or "(user checkpoint: no artifact)", brief)
    Console().print(table)


def _run_stages(config: Config, stages: list[str] | None, display: StageDisplay) -> dict[str, str | None]:
    from rge_core.pipeline import StageResult, run_pipeline  # heavy imports stay out of `rge --help`

    store = ArtifactStore.from_config(config)

    def stage_line(name: str, result: StageResult, seconds: float) -> None:
        log = stage_logs.log_file(store, result.version) if result.version and not result.reused else None
        display.stage_done(name, result.version, result.reused, seconds, log)

    return run_pipeline(config, stages, on_stage=stage_line)


def _run(config_paths: list[Path] | None, overrides: list[str] | None, stages: list[str] | None, verbose: bool) -> None:
    try:
        config = load_cli_config(config_paths or [DEFAULT_CONFIG], overrides or [])
        # Quiet: the libraries' output goes to each stage's log file; the terminal shows stages and bars.
        with stage_logs.quiet(not verbose) as terminal:
            console = Console(file=terminal)
            with StageDisplay(console, live=console.is_terminal and not verbose) as display:
                with progress.listening(display, details=True):
                    results = _run_stages(config, stages, display)
    except (ValueError, FileNotFoundError, LookupError, WorkerFailed) as error:
        typer.echo(f"error: {error}", err=True)
        for note in getattr(error, "__notes__", []):  # a failed stage's log and its last lines
            typer.echo(note, err=True)
        raise typer.Exit(1) from None
    _report(config, results)
    if evaluated := results.get("evaluate"):  # the score table ends every run that evaluated
        artifact = ArtifactStore.from_config(config).get(evaluated)
        typer.echo(artifact.read_bytes("summary.md").decode())
        typer.echo(f"eval artifact: {artifact.url}")


def _check(config_paths: list[Path] | None, overrides: list[str] | None, stages: list[str] | None) -> None:
    """`--check`: the plan of what would run, or the first bad setting in one line (exit status 1)."""
    import time

    started = time.monotonic()
    from rge_core.preflight import check_run  # heavy imports stay out of `rge --help`

    try:
        config = load_cli_config(config_paths or [DEFAULT_CONFIG], overrides or [])
        result = check_run(config, stages)
    except (ValueError, FileNotFoundError, LookupError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    console = Console(soft_wrap=True)
    for line in result.data:
        console.print(line, markup=False, highlight=False)
    table = Table(title=f"plan (artifacts under {ArtifactStore.from_config(config).root})")
    for column in ("stage", "artifact", "state"):
        table.add_column(column)
    for artifact in result.artifacts:
        table.add_row(artifact.stage, artifact.version or "-", artifact.state)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    seconds = time.monotonic() - started
    console.print(f"check ok in {seconds:.1f} s: {len(result.to_build)} to build, nothing built", highlight=False)


def run(
    config: list[Path] | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    stages: str = typer.Option("", "--stages", help="Comma-separated subset of the stages; default all."),
    verbose: bool = _VERBOSE,
    check: bool = _CHECK,
) -> None:
    """Run the pipeline's stages in order, reusing every artifact version that already exists."""
    chosen = [s for s in stages.split(",") if s] or None
    if check:
        _check(config, overrides, chosen)
        return
    _run(config, overrides, chosen, verbose)


def _stage_command(decl: StageDecl) -> Callable[..., None]:
    """`rge <command>` of a declared stage: the common options, then the declaration's own (each sets one
    setting, applied after the --set overrides)."""

    def command(config: list[Path] | None, overrides: list[str] | None, verbose: bool, check: bool, **named) -> None:
        try:
            extra = [option.override(named[option.param]) for option in decl.options if named[option.param]]
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        if check:
            _check(config, [*(overrides or []), *extra], [decl.name])
            return
        _run(config, [*(overrides or []), *extra], [decl.name], verbose)

    common = {"config": (list[Path] | None, _CONFIG), "overrides": (list[str] | None, _OVERRIDES)}
    own = {option.param: (str | None, typer.Option(None, option.flag, help=option.help)) for option in decl.options}
    flags = {"verbose": (bool, _VERBOSE), "check": (bool, _CHECK)}
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, (annotation, default) in {**common, **own, **flags}.items()
    ]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # what typer reads
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = decl.help or f"Run the {decl.name} stage (and what it needs; existing artifacts are reused)."
    if decl.section:
        command.__doc__ += f"\n\nIts settings: rge config explain {decl.section}"
    return command


def commands() -> dict[str, Callable[..., None]]:
    """`rge run` and one command per declared stage that has one (rge_core/stages/registry.py)."""
    from rge_core.stages.registry import stages

    return {"run": run, **{decl.command_name: _stage_command(decl) for decl in stages() if decl.command_name}}
