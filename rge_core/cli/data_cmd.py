"""`rge data ...`: fetch MMEB from the Hugging Face Hub, check MMEB-format data folders.

rge data fetch mmeb-eval /data/mmeb-eval --subsets VOC2007,MSCOCO_t2i
rge data fetch mmeb-train /data/mmeb-train --from /downloads/MMEB-train    # a huggingface-cli download
rge data check /data/MMEB-eval --images /data/MMEB-eval/images
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rge_core.allowed_roots import OutsideAllowedRoots, check_cli_path
from rge_core.data.check import CheckReport, check_folder
from rge_core.data.fetch import fetch
from rge_core.data.hub import LocalSnapshot
from rge_core.data.issues import DataError
from rge_core.data.unpack import UnpackLimits

app = typer.Typer(no_args_is_help=True, add_completion=False)
SHOWN_ERRORS = 20


class HubChoice(StrEnum):  # the keys of HUB_DATASETS
    mmeb_train = "mmeb-train"
    mmeb_eval = "mmeb-eval"


class KindChoice(StrEnum):
    auto = "auto"
    train = "train"
    eval = "eval"


@app.callback()
def _group() -> None:
    """Fetch MMEB from the Hugging Face Hub; validate MMEB-format data folders."""


@app.command("fetch")
def fetch_command(
    dataset: HubChoice = typer.Argument(
        ..., help="mmeb-train (TIGER-Lab/MMEB-train) or mmeb-eval (TIGER-Lab/MMEB-eval)."
    ),
    dest: Path = typer.Argument(..., help="Folder to fetch into (created; a rerun completes it or does nothing)."),
    subsets: str = typer.Option("", "--subsets", help="Comma-separated subsets / datasets; default all."),
    revision: str = typer.Option("main", "--revision", help="Hub branch, tag or commit."),
    decode: bool = typer.Option(
        True, "--decode/--no-decode", help="The check decodes every image (--no-decode: finds them)."
    ),
    snapshot: Path | None = typer.Option(
        None,
        "--from",
        help="A folder laid out as the Hub repo (huggingface-cli download --local-dir): no network; its "
        "archives are read in place, never copied or deleted. It may be DEST itself.",
    ),
    max_ratio: float = typer.Option(
        UnpackLimits.max_ratio, "--max-ratio", min=1.0, help="Largest compression ratio of an archive member."
    ),
    max_member_gb: float = typer.Option(
        UnpackLimits.max_member_bytes / 1e9, "--max-member-gb", min=0.0, help="Largest member of an archive, in GB."
    ),
    max_archive_gb: float = typer.Option(
        UnpackLimits.max_total_bytes / 1e9, "--max-archive-gb", min=0.0, help="Most one archive unpacks to, in GB."
    ),
) -> None:
    """Download DATASET from the Hub (or take it from a local snapshot) into DEST, unpack its images, then check
    it as `rge data check` does."""
    limits = UnpackLimits(max_ratio, int(max_member_gb * 1e9), int(max_archive_gb * 1e9))
    try:
        check_cli_path("DEST", dest)
        if snapshot is not None:
            check_cli_path("--from", snapshot)
        chosen = [s for s in subsets.split(",") if s] or None
        hub = LocalSnapshot(snapshot) if snapshot else None
        result = fetch(dataset.value, dest, chosen, revision, hub=hub, decode=decode, echo=typer.echo, limits=limits)
    except (DataError, OutsideAllowedRoots) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if result.report is None:
        typer.echo(f"{result.folder}: complete ({len(result.subsets)} subsets at {result.commit[:12]}); nothing to do")
        return
    print_report(result.report, Console(soft_wrap=True))
    raise typer.Exit(0 if result.report.ok else 1)


@app.command()
def check(
    folder: str = typer.Argument(..., help="MMEB-train or MMEB-eval folder (local path or fsspec URL)."),
    images: Path | None = typer.Option(None, "--images", help="Image root (default: the folder itself)."),
    kind: KindChoice = typer.Option(KindChoice.auto, "--kind", help="Layout; auto tells them apart by columns."),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="Decode every image (--no-decode: find them only)."),
) -> None:
    """Validate every row of FOLDER; exit status 1 if anything is wrong."""
    try:
        check_cli_path("FOLDER", folder)
        if images is not None:
            check_cli_path("--images", images)
    except OutsideAllowedRoots as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
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
