"""Pipeline commands: `rge run --config configs/tiny.yaml [--stages curate]` and one command per stage
(`rge ingest|curate|assemble --config configs/tiny.yaml --set data.synth.seed=1`). A stage command also
runs what the stage depends on; those are reused when their artifacts exist."""

from __future__ import annotations

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


def _stage_command(name: str) -> Callable[..., None]:
    def command(
        config: list[Path] | None = _CONFIG,
        overrides: list[str] | None = _OVERRIDES,
        verbose: bool = _VERBOSE,
        check: bool = _CHECK,
    ) -> None:
        if check:
            _check(config, overrides, [name])
            return
        _run(config, overrides, [name], verbose)

    command.__doc__ = f"Run the {name} stage (and what it needs; existing artifacts are reused)."
    return command


def curate(
    config: list[Path] | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    prompt_set: Path | None = typer.Option(None, "--prompt-set", help="Prompt set folder (curation.prompt_set)."),
    verbose: bool = _VERBOSE,
    check: bool = _CHECK,
) -> None:
    """Curate oracle rationales (and what curation needs; existing artifacts are reused)."""
    extra = [f"curation.prompt_set={prompt_set}"] if prompt_set else []
    if check:
        _check(config, [*(overrides or []), *extra], ["curate"])
        return
    _run(config, [*(overrides or []), *extra], ["curate"], verbose)


def evaluate(
    config: list[Path] | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    model: str | None = typer.Option(None, "--model", help="Model artifact id or checkpoint folder (eval.model)."),
    data: str | None = typer.Option(None, "--data", help="MMEB-eval folder, or 'synthetic' (eval.data)."),
    datasets: str | None = typer.Option(None, "--datasets", help="Comma-separated datasets (eval.datasets)."),
    reasoning: str | None = typer.Option(None, "--reasoning", help="on | off (eval.reasoning)."),
    query_rewrites: str | None = typer.Option(
        None, "--query-rewrites", help="Rewrite file for query texts, RGE release format (eval.query_rewrites)."
    ),
    candidate_rewrites: str | None = typer.Option(
        None, "--candidate-rewrites", help="Rewrite file for candidate texts (eval.candidate_rewrites)."
    ),
    compare_to: str | None = typer.Option(None, "--compare-to", help="Another eval artifact id: write diff.md."),
    verbose: bool = _VERBOSE,
    check: bool = _CHECK,
) -> None:
    """Evaluate on MMEB (or the synthetic eval split); prints the summary table."""
    if reasoning not in (None, "on", "off"):
        raise typer.BadParameter("on or off", param_hint="--reasoning")
    named = {
        "eval.model": model,
        "eval.data": data,
        "eval.query_rewrites": query_rewrites,
        "eval.candidate_rewrites": candidate_rewrites,
        "eval.compare_to": compare_to,
        "eval.datasets": f"[{datasets}]" if datasets else None,
        "eval.reasoning": {"on": "true", "off": "false"}.get(reasoning or ""),
    }
    extra = [f"{key}={value}" for key, value in named.items() if value]
    if check:
        _check(config, [*(overrides or []), *extra], ["evaluate"])
        return
    _run(config, [*(overrides or []), *extra], ["evaluate"], verbose)


COMMANDS: dict[str, Callable[..., None]] = {
    "run": run,
    "ingest": _stage_command("ingest"),
    "curate": curate,
    "assemble": _stage_command("assemble"),
    "train": _stage_command("train"),
    "eval": evaluate,
}
