"""`rge data ...`: checks of MMEB-format data folders.

rge data check /data/MMEB-eval --images /data/MMEB-eval/images
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rge_core.data.check import CheckReport, check_folder

app = typer.Typer(no_args_is_help=True, add_completion=False)
SHOWN_ERRORS = 20


class KindChoice(StrEnum):
    auto = "auto"
    train = "train"
    eval = "eval"


@app.callback()
def _group() -> None:
    """Validate MMEB-format data folders."""


@app.command()
def check(
    folder: str = typer.Argument(..., help="MMEB-train or MMEB-eval folder (local path or fsspec URL)."),
    images: Path | None = typer.Option(None, "--images", help="Image root (default: the folder itself)."),
    kind: KindChoice = typer.Option(KindChoice.auto, "--kind", help="Layout; auto tells them apart by columns."),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="Decode every image (--no-decode: find them only)."),
) -> None:
    """Validate every row of FOLDER; exit status 1 if anything is wrong."""
    report = check_folder(folder, image_root=images, kind=kind.value, decode=decode)
    print_report(report, Console(soft_wrap=True))
    raise typer.Exit(0 if report.ok else 1)


def print_report(report: CheckReport, console: Console) -> None:
    table = Table(title=f"{report.folder} ({report.kind})")
    for column in ("subset", "split", "files", "rows"):
        table.add_column(column, justify="right" if column in ("files", "rows") else "left")
    if report.kind == "eval":
        table.add_column("candidates min/mean/max", justify="right")
    for s in report.splits:
        cells = [s.subset, s.split, str(s.files), str(s.rows)]
        if report.kind == "eval":
            cells.append(f"{s.candidates[0]}/{s.candidates[1]:.1f}/{s.candidates[2]}" if s.candidates else "-")
        table.add_row(*cells)
    console.print(table)
    console.print(f"{len({s.subset for s in report.splits})} subsets, {sum(s.rows for s in report.splits)} rows")
    checked = "" if report.images_checked else " (paths only: no local image root, pass --images)"
    console.print(
        f"images referenced: {report.images_referenced}, missing or outside {report.image_root}: "
        f"{report.images_bad}{checked}"
    )
    if report.ok:
        console.print("[green]OK[/green]")
        return
    console.print(f"[red]{report.error_count} errors[/red]")
    for error in report.errors[:SHOWN_ERRORS]:
        console.print(f"  {error}", markup=False, highlight=False)
    if report.error_count > SHOWN_ERRORS:
        console.print(f"  ... and {report.error_count - SHOWN_ERRORS} more")
