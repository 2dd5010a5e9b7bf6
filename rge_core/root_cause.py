"""The first meaningful cause of a failed child process, read off its log, for the one line that reports the
failure (trainers, eval shards, curation engines): a full disk, memory, a Python exception's last line (the
first one: under torchrun the failing rank's, not the launcher's own ChildFailedError that ends the log),
a signal, else the last line.

    raise RuntimeError(failure_report("rge_core.training.trainer", 1, log_file))
    # rge_core.training.trainer exited with status 1: OSError: [Errno 28] No space left on device: '/ckpt/x'
    # log /root/model/model-abc/trainer.log, last lines:
    # ...
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from rge_core.fileio import DISK_FULL
from rge_core.messages import shortened

TAIL_CHARS = 3000  # of the log, after the cause
_READ_BYTES = 4 << 20  # of the log's end searched for the cause
_MEMORY = re.compile(r"out of memory|OutOfMemoryError|MemoryError|Cannot allocate memory|std::bad_alloc", re.I)
_SIGKILL = re.compile(r"Signal 9 \(SIGKILL\)|exitcode\s*:\s*-9\b")
_TRACEBACK = "Traceback (most recent call last):"
# An exception's last line: `ValueError: ...`, `torch.OutOfMemoryError: ...`, `MemoryError`, at column 0.
_EXCEPTION = re.compile(r"(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure))(?::.*)?")
_RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d+\]:\s?")  # torchrun's per-rank line prefixes
_NOT_CAUSES = {"ChildFailedError", "CalledProcessError", "SystemExit"}  # launchers reporting a child's failure


def _exceptions(lines: list[str]) -> list[str]:
    """Last lines of the Python exceptions in `lines`, in order (those after a traceback)."""
    found, seen_traceback = [], False
    for line in lines:
        if line.startswith(_TRACEBACK):
            seen_traceback = True
        elif seen_traceback and (match := _EXCEPTION.fullmatch(line)) and match.group(1) not in _NOT_CAUSES:
            found.append(line)
    return found


def first_cause(text: str, returncode: int | None = None) -> str:
    """One line: why the process whose output is `text` failed with `returncode`."""
    lines = [_RANK_PREFIX.sub("", line).rstrip() for line in text.splitlines()]
    exceptions = _exceptions(lines)
    for pattern, meaning in ((DISK_FULL, "the disk is full"), (_MEMORY, "out of memory")):
        hits = [line for line in exceptions if pattern.search(line)] or [line for line in lines if pattern.search(line)]
        if hits:
            named = [line for line in hits if "'/" in line]  # one that names the file it could not write
            return f"{shortened((named or hits)[0].strip())} ({meaning})"
    if exceptions:
        return shortened(exceptions[0])
    if returncode == -signal.SIGKILL or any(_SIGKILL.search(line) for line in lines):
        return "killed by SIGKILL (out of memory? the kernel's OOM killer sends it)"
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return f"exit status {returncode} (last line: {shortened(last)})" if last else f"exit status {returncode}"


class WorkerFailed(RuntimeError):
    """A worker process (trainer, eval shard) failed; the message starts with its first cause."""


def failure_report(what: str, returncode: int, log: Path) -> str:
    """`<what> exited with status N: <cause>`, then the log's path and its last lines."""
    text = ""
    if log.is_file():
        with log.open("rb") as handle:
            handle.seek(max(log.stat().st_size - _READ_BYTES, 0))
            text = handle.read().decode(errors="replace")
    cause = first_cause(text, returncode)
    return f"{what} exited with status {returncode}: {cause}\nlog {log}, last lines:\n{text[-TAIL_CHARS:]}"
