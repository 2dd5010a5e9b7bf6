"""`rge artifacts list [--kind K] [--wide] [--root R]`, `rge artifacts show ID [--root R]` and
`rge artifacts verify [ID] [--root R]`."""

from __future__ import annotations

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from rge_core.artifacts import ArtifactError, ArtifactStore, LineageNode, Manifest

app = typer.Typer(no_args_is_help=True, add_completion=False)
ROOT_HELP = "Artifact root (folder or fsspec URL); default: $RGE_ARTIFACTS, else ./rge-artifacts."
_MAX_STATS = 4  # the table shows the first few scalar stats; `show` has them all


def _key_stats(manifest: Manifest) -> str:
    scalars = [(k, v) for k, v in manifest.stats.items() if isinstance(v, (str, int, float, bool))]
    return "\n".join(f"{k}={v}" for k, v in scalars[:_MAX_STATS])


def _short_created(created: str) -> str:
    """`2026-11-27T13:05:12.345+00:00` -> `2026-11-27 13:05` (UTC, as stored)."""
    return created[:16].replace("T", " ")


def _short_id(version_id: str) -> str:
    """An input's id with the hash cut to 6 digits: enough to tell artifacts of one kind apart at a glance."""
    kind, _, digest = version_id.rpartition("-")
    return f"{kind}-{digest[:6]}" if kind else version_id


def _compact_table(manifests: list[Manifest]) -> Table:
    """One line per artifact, within 100 columns: id, creation minute, shortened input ids."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("id", "created (UTC)", "inputs"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for manifest in manifests:
        inputs = ", ".join(_short_id(vid) for vid in manifest.inputs.values())
        table.add_row(manifest.id, _short_created(manifest.created), inputs)
    return table


def _wide_table(manifests: list[Manifest]) -> Table:
    """Everything: kind, full timestamps, named inputs and the first scalar stats (a row may take lines)."""
    table = Table()
    for column in ("id", "kind", "created", "inputs", "stats"):
        table.add_column(column, no_wrap=column in ("id", "kind"), overflow="fold")
    for manifest in manifests:
        inputs = "\n".join(f"{name}={vid}" for name, vid in manifest.inputs.items())
        table.add_row(manifest.id, manifest.kind, manifest.created, inputs, _key_stats(manifest))
    return table


def _tree(node: LineageNode, label: str, branch: Tree | None = None) -> Tree:
    text = f"{label}{node.id}" + ("" if node.manifest else " [red](missing)[/red]")
    child = Tree(text) if branch is None else branch.add(text)
    for name, parent in node.inputs.items():
        _tree(parent, f"{name}: ", child)
    return child


@app.command("list")
def list_artifacts(
    kind: str | None = typer.Option(None, "--kind", help="Only artifacts of this kind."),
    wide: bool = typer.Option(False, "--wide", help="Every column: kind, full times, named inputs, stats."),
    root: str | None = typer.Option(None, "--root", help=ROOT_HELP),
) -> None:
    """Table of the complete artifacts, oldest first: one line each (`--wide`: everything)."""
    store = ArtifactStore(root)
    try:
        manifests, problems = store.list(kind), store.problems(kind)
    except ArtifactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"artifacts under {store.root}")
    Console(soft_wrap=False).print(_wide_table(manifests) if wide else _compact_table(manifests))
    for problem in problems:
        typer.echo(f"not listed: {problem}")


@app.command()
def show(
    version_id: str = typer.Argument(..., metavar="ID", help="Version id, e.g. pairs-0123456789ab."),
    root: str | None = typer.Option(None, "--root", help=ROOT_HELP),
) -> None:
    """The manifest (JSON) and the lineage tree of one artifact."""
    store = ArtifactStore(root)
    try:
        artifact = store.get(version_id)
        lineage = store.lineage(version_id)
    except ArtifactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(artifact.manifest.to_json())
    Console().print(_tree(lineage, "lineage: "))


@app.command()
def verify(
    version_id: str | None = typer.Argument(None, metavar="[ID]", help="One artifact; default: all of them."),
    root: str | None = typer.Option(None, "--root", help=ROOT_HELP),
) -> None:
    """Check every file of one artifact (or of all) against the sha256 in its manifest."""
    store = ArtifactStore(root)
    failures = list(store.problems()) if version_id is None else []
    ids = [version_id] if version_id else [manifest.id for manifest in store.list()]
    for vid in ids:
        try:
            store.get(vid).verify()
            typer.echo(f"ok       {vid}")
        except ArtifactError as error:
            failures.append(str(error))
    for failure in failures:
        typer.echo(f"FAILED   {failure}")
    if failures:
        raise typer.Exit(1)
