"""Waiting on worker subprocesses (trainer launchers, curation engines) while the caller reports progress."""

from __future__ import annotations

import subprocess
import time
from typing import Callable

POLL_SECONDS = 2.0


def wait_polling(processes: list[subprocess.Popen], while_running: Callable[[], None]) -> None:
    """Block until every process has exited, calling `while_running` every POLL_SECONDS meanwhile."""
    while any(process.poll() is None for process in processes):
        while_running()
        time.sleep(POLL_SECONDS)
