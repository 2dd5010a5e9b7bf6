"""The pipeline commands' terminal: one line per stage (built or reused, artifact, time, log) and, while a
stage reports progress (rge_core/progress.py), a bar with its details (rows/s, loss, ETA, ...). On a
terminal the bars redraw in place; elsewhere (CI logs, pipes, tests) a plain line at most every
`plain_every` seconds per stage.

    with StageDisplay(console) as display, progress.listening(display, details=True):
        display.stage_done("curate", version, reused=False, seconds=41.0, log=log_path)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_S = 15.0
_COUNTS = ("rows", "queries")  # cumulative counts, shown with their rate since the stage's first report


@dataclass
class _Stage:
    started: float = field(default_factory=time.monotonic)
    printed: float | None = None  # when its last plain line went out (None: none yet, so the first goes at once)
    task: TaskID | None = None


def describe(details: dict, elapsed: float) -> str:
    """`rows 96 (3.1 rows/s), rejects 2, loss 0.412, samples/s 5.3` from a report's details."""
    parts = []
    for key, value in details.items():
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        name = key.replace("_per_s", "/s")
        if key in _COUNTS and value and elapsed > 0:
            text += f" ({value / elapsed:.1f} {key}/s)"
        parts.append(f"{name} {text}")
    return ", ".join(parts)


def _eta(done: int, total: int, elapsed: float) -> str:
    return f", ETA {elapsed / done * (total - done):.0f} s" if 0 < done < total else ""


class StageDisplay:
    """A progress listener (details=True) that draws bars on a live terminal and plain lines elsewhere."""

    def __init__(self, console: Console, live: bool | None = None, plain_every: float = PLAIN_EVERY_S) -> None:
        self.console = console
        self.plain_every = plain_every
        self.stages: dict[str, _Stage] = {}
        self.bars: Progress | None = None
        if console.is_terminal if live is None else live:
            self.bars = Progress(
                TextColumn("{task.description:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                redirect_stdout=False,  # library output belongs in the stage logs, not above the bars
                redirect_stderr=False,
            )

    def __enter__(self) -> StageDisplay:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, stage: str, done: int, total: int, **details: float | str) -> None:
        state = self.stages.setdefault(stage, _Stage())
        now = time.monotonic()
        info = describe(details, now - state.started)
        if self.bars is not None:
            if state.task is None:
                state.task = self.bars.add_task(stage, total=total, info="")
            self.bars.update(state.task, completed=done, total=total, info=info)
        elif state.printed is None or now - state.printed >= self.plain_every:
            state.printed = now
            line = f"  {stage}: {done}/{total}{_eta(done, total, now - state.started)}" + (f", {info}" if info else "")
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def stage_done(self, stage: str, version: str | None, reused: bool, seconds: float, log: Path | None) -> None:
        state = self.stages.pop(stage, None)
        if self.bars is not None and state is not None and state.task is not None:
            self.bars.remove_task(state.task)
        line = f"{stage:<9} {'reused' if reused else 'built':<6} {version or '(checkpoint folder)'}  {seconds:.1f} s"
        if log is not None and log.exists():
            line += f"  log {log}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
