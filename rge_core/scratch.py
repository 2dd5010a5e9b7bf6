"""Temporary folders of a run (curation's job file, remote builds) that never outlive it: removed on any exit
Python sees (return, exception, Ctrl-C, SIGTERM through child_processes.wait_for), and, since a SIGKILL
cannot be caught, the ones a killed run left are removed by the next run that makes one. Their names carry
the pid of the process that made them (`rge-curate-<pid>-<random>`), which tells a stale folder from one in
use by a run still going.

    with scratch_folder("curate") as folder:
        (folder / "job.json").write_text(job)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch_folder(kind: str) -> Iterator[Path]:
    root = Path(tempfile.gettempdir())
    remove_stale(root, kind)
    folder = Path(tempfile.mkdtemp(prefix=f"rge-{kind}-{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path, kind: str) -> list[Path]:
    """Remove the `kind` folders under `root` whose process is gone; returns them."""
    removed = []
    for folder in root.glob(f"rge-{kind}-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
