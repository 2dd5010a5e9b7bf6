"""Worker subprocesses (trainer launchers, eval shards, curation engines) that never outlive their run.

    process = start([sys.executable, "-m", module, job], stdout=log, stderr=subprocess.STDOUT)
    wait_for([process], report_progress)      # interrupted (exception, SIGINT, SIGTERM): stops them first

Each worker runs in its own process group and gets SIGTERM from the kernel when the thread that started it
dies (Linux PR_SET_PDEATHSIG), so even a SIGKILL of `rge` stops it. Workers whose own parent is a
launcher (torchrun's trainers) call `die_with_parent()` first thing, for the same reason one level down.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

POLL_SECONDS = 2.0
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel for SIGTERM when this process's parent dies (Linux; nothing elsewhere). `parent`, the
    pid that started this process where the caller knows it (`start` does): if it is no longer the parent,
    it died before the request, and this process stops now. Without it that narrow race goes unnoticed:
    taking "my parent is pid 1" for "orphaned" instead would stop every child of a container's first
    process (`docker run rge:cpu rge eval` runs rge as pid 1)."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def start(command: list[str], **popen_options) -> subprocess.Popen:
    """`subprocess.Popen` in a new process group, terminated when this thread's process dies."""
    parent = os.getpid()
    return subprocess.Popen(
        command, start_new_session=True, preexec_fn=functools.partial(die_with_parent, parent), **popen_options
    )


def stop(processes: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every running process's group, then SIGKILL what is left after `grace` seconds."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def _sigterm_interrupts():
    """While waiting, SIGTERM raises SystemExit (so cleanup runs) instead of ending the process on the spot.
    Only the main thread can install handlers; elsewhere (a Prefect task thread) the default stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for(processes: list[subprocess.Popen], while_running: Callable[[], None]) -> None:
    """Block until every process has exited, calling `while_running` every POLL_SECONDS meanwhile. If the
    wait is interrupted, the processes are stopped before the interruption goes on."""
    with _sigterm_interrupts():
        try:
            while any(process.poll() is None for process in processes):
                while_running()
                time.sleep(POLL_SECONDS)
        finally:
            stop(processes)
