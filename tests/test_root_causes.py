"""A failed child process (trainer, eval shard, curation engine) is reported by its first meaningful cause, a
full disk, memory, or a Python exception's last line, in one line before its log's path; a write on a full
disk names the path it could not write. The failures are real: real processes, /dev/full, a real tmpfs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rge_core.launch import Launch, run_launched
from rge_core.root_cause import first_cause

ROOT = Path(__file__).resolve().parent.parent


def _failed_log(how: str) -> tuple[str, int]:
    """(stdout and stderr, return code) of tests/failing_worker.py failing `how`."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.failing_worker", how], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr, done.returncode


@pytest.mark.parametrize(
    ("how", "cause"),
    [
        ("disk", "OSError: [Errno 28] No space left on device (the disk is full)"),
        ("error", "ValueError: row 7 of shard 3 has no image"),
        ("memory", "MemoryError (out of memory)"),
        ("kill", "killed by SIGKILL (out of memory? the kernel's OOM killer sends it)"),
    ],
)
def test_the_first_cause_of_a_real_failure_is_one_line(how, cause):
    log, returncode = _failed_log(how)
    assert returncode != 0 and len(log.splitlines()) >= 40
    assert first_cause(log, returncode) == cause


def test_a_launched_workers_failure_names_its_cause_before_the_log(tmp_path, monkeypatch):
    """Under torchrun, rank 1 hits a full disk: the error's first line names that, not torchrun's own
    ChildFailedError that ends the log, and the log's path follows."""
    monkeypatch.setenv("FAILING_RANK", "1")
    log = tmp_path / "trainer.log"
    with pytest.raises(RuntimeError) as raised:
        run_launched(Launch("torchrun", 2, "train"), "tests.failing_worker", Path("disk"), log)
    first, second, *_ = str(raised.value).splitlines()
    assert first == (
        "tests.failing_worker exited with status 1: OSError: [Errno 28] No space left on device (the disk is full)"
    )
    assert second == f"log {log}, last lines:"
    assert "ChildFailedError" in log.read_text()  # torchrun's own report comes last in the log


def _in_a_full_filesystem(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `code` with a 64 kB tmpfs mounted at tmp_path/small (a mount namespace of its own)."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare -rm needs user namespaces)")
    small = tmp_path / "small"
    small.mkdir()
    script = f'mount -t tmpfs -o size=64k tmpfs {small} && exec {sys.executable} -c "$0"'
    return subprocess.run(
        [unshare, "-rm", "sh", "-c", script, code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_write_on_a_full_disk_names_the_path_it_could_not_write(tmp_path):
    target = tmp_path / "small" / "shards" / "rationales-00001.parquet"
    code = f"from rge_core.fileio import atomic_write_bytes\natomic_write_bytes({str(target)!r}, b'x' * 200_000)\n"
    done = _in_a_full_filesystem(code, tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"OSError: [Errno 28] No space left on device: '{target}'"
    assert first_cause(done.stderr, 1) == f"{last} (the disk is full)"


def test_a_run_killed_by_a_signal_says_which(tmp_path):
    assert first_cause("", -signal.SIGTERM) == "killed by SIGTERM"
    assert first_cause("some output\nlast words\n", 3) == "exit status 3 (last line: last words)"


@pytest.mark.slow
def test_rge_train_on_a_full_disk_says_so_first_naming_the_path(tmp_path):
    """The issue's case: `rge train` whose artifacts root fills up (a 5 MB tmpfs: the base model, the benchmark
    and the curated data fit, the trainer's model does not). The first line names the full disk and the path
    it could not write; no traceback of rge's own follows, only the trainer log's last lines."""
    from tests.helpers import SMALL_SYNTH, TWO_PROCESS_TRAIN, rge_command

    root = tmp_path / "small"
    settings = [f"run.artifacts_root={root}", *SMALL_SYNTH, *TWO_PROCESS_TRAIN, "train.steps=2"]
    command = " ".join(f"'{arg}'" for arg in rge_command("train", *settings))
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare -rm needs user namespaces)")
    root.mkdir()
    script = f"mount -t tmpfs -o size=5m tmpfs {root} && exec {command}"
    done = subprocess.run([unshare, "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]
    first, second = done.stderr.splitlines()[:2]
    assert first.startswith("error: rge_core.training.trainer exited with status 1: OSError: [Errno 28] ")
    assert f"No space left on device: '{root}/model/" in first and first.endswith("(the disk is full)")
    assert second.startswith("log ") and second.endswith("trainer.log, last lines:")
    assert "rge_core/cli/stages_cmd.py" not in done.stderr  # no traceback of the command itself
