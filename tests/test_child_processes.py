"""Worker processes stop with their parent, and only then: a child whose parent is alive as pid 1 (rge as a
container's first process) keeps running.

.venv/bin/python -m pytest tests/test_child_processes.py -q
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_child_stops_when_its_recorded_parent_is_not_its_parent():
    alive = _python(
        "import os; from rge_core.child_processes import die_with_parent as d; d(os.getppid()); print('alive')"
    )
    assert alive.returncode == 0 and alive.stdout == "alive\n", alive.stderr
    gone = _python(
        "import os; from rge_core.child_processes import die_with_parent as d; d(os.getppid() + 1); print('x')"
    )
    assert gone.returncode == -signal.SIGTERM and gone.stdout == ""


def test_a_worker_started_by_pid_1_runs():
    """`start` from a process that is pid 1 of its own pid namespace, as `docker run rge:cpu rge ...` is: the
    worker's parent is pid 1 and alive. (Taking pid 1 for "orphaned" stopped every trainer in the image.)"""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "--pid", "--fork", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no pid namespaces here (unshare --pid needs root or user namespaces)")
    code = (
        "import os, sys; from rge_core.child_processes import start; assert os.getpid() == 1; "
        "p = start([sys.executable, '-c', 'print(42)']); p.wait(); print(p.returncode)"
    )
    run = _python(code, unshare, "--pid", "--fork", "--kill-child")
    assert run.returncode == 0 and run.stdout.split() == ["42", "0"], (run.stdout, run.stderr)


def test_a_worker_stops_when_the_process_that_started_it_is_killed(tmp_path: Path):
    worker = "import time; print('ready', flush=True); time.sleep(60)"
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from rge_core.child_processes import start\n"
        f"p = start([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE, text=True)\n"
        "p.stdout.readline()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup code runs, only the kernel's parent-death signal
    parent.wait()
    for _ in range(100):
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split()[2] == "Z":
            return
        time.sleep(0.05)
    pytest.fail(f"worker {child} outlived the process that started it")
