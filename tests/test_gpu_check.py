"""benchmarks/gpu_check.sh, the GPU first-run check, runs on the CPU with the tiny model (`--tiny --device cpu`):
the same script and stages a GPU machine runs, so it cannot rot while no GPU is lent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_gpu_check_runs_its_stages_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    command = ["bash", "benchmarks/gpu_check.sh", "--tiny", "--device", "cpu", "--work", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for stage in ("checkpoint", "snapshot", "fetch mmeb-train", "fetch mmeb-eval", "ingest + curate + assemble"):
        assert any(line.startswith(f"{stage}: ") for line in lines), stage
    assert any(line.startswith("train (DeepSpeed ZeRO-2): ") for line in lines)  # DeepSpeed imports here
    assert "| CIFAR-100 |" in result.stdout and "| Overall | 3 |" in result.stdout
    assert lines[-1].startswith("gpu_check: OK on cpu; ")


def test_without_a_gpu_the_cuda_check_says_so_in_one_line(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--work", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith("gpu_check: no CUDA device here")
