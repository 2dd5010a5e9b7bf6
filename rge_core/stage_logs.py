"""Where library output goes while a stage builds. Inside `quiet()` (the CLI's default) every stage that
builds writes what vLLM, DeepSpeed, transformers and torch print, from Python or C++, in this process or
its children, to its log file `<root>/.logs/<id>.log`; the terminal keeps only what the caller writes
to the stream `quiet()` yields. Outside it (`rge -v`, the Prefect flow, tests) nothing is redirected.

    with stage_logs.quiet() as terminal:       # the CLI
        ...                                    # write progress to `terminal`
    with stage_logs.capture(log_file(store, version_id)):   # the stage runner, around a build
        build(writer)
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rge_core.artifacts.local import cache_root
from rge_core.artifacts.store import ArtifactStore
from rge_core.fileio import is_local, local_path

TAIL_LINES = 20  # of a failed stage's log, in its error
_quiet = False


def log_file(store: ArtifactStore, version_id: str) -> Path:
    """`<root>/.logs/<id>.log`: outside the artifact (so quiet and verbose runs build the same artifact) and
    outside the kind folders (which hold only artifact folders); on a remote root, in the local cache."""
    folder = store.path(version_id)
    if is_local(folder):
        return local_path(folder).parent.parent / ".logs" / f"{version_id}.log"
    return cache_root(store) / "logs" / f"{version_id}.log"


def _fd_backed(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 1
    except (io.UnsupportedOperation, AttributeError, ValueError):  # a test runner's buffer
        return False


@contextmanager
def quiet(enabled: bool = True) -> Iterator[TextIO]:
    """Stages built inside send library output to their log files; yields a stream on the terminal that
    those redirections leave alone (with enabled=False: sys.stdout, and nothing is redirected)."""
    global _quiet
    if not enabled:
        yield sys.stdout
        return
    sys.stdout.flush()
    # A dup of fd 1 still reaches the terminal while capture() points fd 1 at a log file.
    terminal = os.fdopen(os.dup(1), "w", buffering=1) if _fd_backed(sys.stdout) else sys.stdout
    _quiet = True
    try:
        yield terminal
    finally:
        _quiet = False
        if terminal is not sys.stdout:
            terminal.close()


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        new = record.msg not in self.seen
        self.seen.add(record.msg)
        return new


def once_per_message(logger_name: str) -> None:
    """Let the logger `logger_name` emit each message once in this process: for a library that repeats
    one warning on every request (a filter on the logger itself, so it holds whoever handles it)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, _Once) for f in logger.filters):
        logger.addFilter(_Once())


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-TAIL_LINES:])


@contextmanager
def capture(path: Path) -> Iterator[None]:
    """Inside `quiet()`: fds 1 and 2 (so sys.stdout, sys.stderr, every logging handler on them, C++
    output and child processes) append to `path`; an error leaving the block names the log and carries
    its last lines. Outside `quiet()`: nothing changes."""
    if not _quiet:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        _flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException as error:
            _flush()
            if path.stat().st_size:
                error.add_note(f"stage log {path}, last lines:\n{_tail(path)}")
            raise
        finally:
            _flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
            if path.stat().st_size == 0:  # a stage whose libraries said nothing leaves no log
                path.unlink()


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
