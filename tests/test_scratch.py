"""Scratch folders never outlive their run: removed on exit, and after a SIGKILL by the next run that makes one
(the killed process's pid, in the folder's name, is gone). The curation it serves: test_curate_stage.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rge_core.scratch import remove_stale, scratch_folder

ROOT = Path(__file__).resolve().parent.parent
HOLD = (
    "import sys, time\n"
    "from rge_core.scratch import scratch_folder\n"
    "with scratch_folder('curate') as folder:\n"
    "    (folder / 'job.json').write_text('{}')\n"
    "    print(folder, flush=True)\n"
    "    time.sleep(60)\n"
)


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    return tmp_path


def _held_by_a_process(signum: int) -> Path:
    process = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    folder = Path(process.stdout.readline().strip())
    assert (folder / "job.json").is_file()
    os.kill(process.pid, signum)
    process.wait()
    return folder


def test_a_folder_is_removed_on_exit_and_on_an_error(tmpdir_env):
    with scratch_folder("curate") as folder:
        assert folder.parent == tmpdir_env and folder.name.startswith(f"rge-curate-{os.getpid()}-")
    assert not folder.exists()
    with pytest.raises(RuntimeError), scratch_folder("curate") as folder:
        raise RuntimeError
    assert not folder.exists()


def test_a_sigkilled_runs_folder_goes_with_the_next_run_and_a_live_ones_stays(tmpdir_env):
    killed = _held_by_a_process(signal.SIGKILL)
    assert killed.exists()  # nothing runs in a SIGKILLed process
    live = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    in_use = Path(live.stdout.readline().strip())
    try:
        with scratch_folder("curate") as mine:
            assert not killed.exists() and in_use.exists() and mine.exists()
        assert remove_stale(tmpdir_env, "curate") == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale(tmpdir_env, "curate") == [in_use]
