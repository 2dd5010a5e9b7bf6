"""`rge train` with real DeepSpeed engines: 2 CPU processes over gloo (torchrun), ZeRO-2 and ZeRO-3, LoRA;
a run killed after a checkpoint, and one stopped by SIGTERM (which saves the step it reached), that
resume to the same result as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rge_core.training.checkpoints import COMPLETE, latest_step
from tests.helpers import run_train, train_command, trained_folder


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def base_folder(root: Path) -> Path:
    [folder] = [p for p in (root / "model").iterdir() if not (p / "job.json").exists()]
    return folder


@pytest.fixture(scope="module")
def zero2_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zero2")
    run_train(root, "train.zero_stage=2")
    return root


def check_trained(root: Path) -> None:
    folder = trained_folder(root)
    assert (folder / "manifest.json").exists()
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))
    assert all(torch.isfinite(torch.tensor([r["loss"], r["lm_loss"], r["emb_loss"]])).all() for r in records)
    trained, base = weights(folder / "model"), weights(base_folder(root))
    assert trained.keys() == base.keys()
    changed = {name for name in base if not torch.equal(trained[name], base[name])}
    # Saved names follow the checkpoint format (model.layers.*); the vision tower is model.visual.*.
    lora_targets = {
        n
        for n in base
        if "visual" not in n
        and any(f".{m}." in n for m in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
        and n.endswith("weight")
    }
    assert changed == lora_targets  # merged adapters moved every target projection and nothing else


@pytest.mark.slow
def test_zero2_two_processes_train_lora(zero2_run):
    check_trained(zero2_run)
    assert latest_step(trained_folder(zero2_run)) == 4  # checkpoints at 2 and 4; the end is the model itself


@pytest.mark.slow
def test_zero3_two_processes_train_lora_with_gradient_caching(tmp_path):
    run_train(tmp_path, "train.zero_stage=3", "train.grad_cache_chunk=1")
    check_trained(tmp_path)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(zero2_run, tmp_path):
    process = subprocess.Popen(
        train_command(tmp_path, "train.zero_stage=2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    try:
        while time.time() < deadline and process.poll() is None:
            if any((tmp_path / "model").glob(f"*/checkpoints/step-000002/{COMPLETE}")):
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    folder = trained_folder(tmp_path)
    assert not (folder / "manifest.json").exists() and latest_step(folder) in (2, 4), "the kill must land mid-run"
    # SIGKILL of rge: the parent-death signal stops torchrun, then the trainers
    assert _left_after(str(folder / "job.json"), 15) == []
    run_train(tmp_path, "train.zero_stage=2")
    reference = trained_folder(zero2_run)
    assert folder.name == reference.name
    resumed = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    uninterrupted = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed] == list(range(1, 7))
    for mine, theirs in zip(resumed, uninterrupted, strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5, abs=1e-6), mine["step"]
    final, expected = weights(folder / "model"), weights(reference / "model")
    for name in expected:
        torch.testing.assert_close(final[name], expected[name], rtol=1e-5, atol=1e-6)


def _left_after(text: str, seconds: float) -> list[int]:
    """The processes mentioning `text` still alive once they are all gone or `seconds` have passed."""
    deadline = time.time() + seconds
    while (left := _processes_mentioning(text)) and time.time() < deadline:
        time.sleep(0.5)
    return left


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile
                continue
    return found


@pytest.mark.slow
def test_sigterm_of_rge_train_saves_the_step_it_reached_and_the_rerun_resumes_there(zero2_run, tmp_path):
    """What scancel, preemption and Ctrl-C lead to: rge stops its launcher with SIGTERM, every trainer
    finishes its step and saves it (no periodic checkpoint is due: checkpoint_every is past the end), the
    processes leave, and a rerun of the same version resumes from that step to the uninterrupted result."""
    no_periodic = ("train.zero_stage=2", "train.checkpoint_every=100")  # not part of the version
    process = subprocess.Popen(
        train_command(tmp_path, *no_periodic), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        metrics = list((tmp_path / "model").glob("*/metrics.jsonl"))
        if metrics and len(metrics[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    folder = trained_folder(tmp_path)
    job = str(folder / "job.json")
    assert _processes_mentioning(job), "the trainers must be running when the signal comes"
    process.send_signal(signal.SIGTERM)  # rge alone, not its process group
    process.wait(timeout=60)
    assert _left_after(job, 30) == []  # torchrun and both trainers are gone
    stopped_at = latest_step(folder)
    assert 2 <= stopped_at < 6, "the trainers must save the step they were in"
    assert [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == list(
        range(1, stopped_at + 1)
    )
    written = {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}
    time.sleep(3)
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()} == written
    assert not (folder / "manifest.json").exists()

    run_train(tmp_path, *no_periodic)
    assert f"resumed from step {stopped_at}" in (folder / "trainer.log").read_text()
    reference = trained_folder(zero2_run)
    assert folder.name == reference.name
    final, expected = weights(folder / "model"), weights(reference / "model")
    for name in expected:
        torch.testing.assert_close(final[name], expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_rge_train_on_one_root_train_once(zero2_run, tmp_path):
    first = subprocess.Popen(
        train_command(tmp_path, "train.zero_stage=2"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(3)
    second = subprocess.Popen(
        train_command(tmp_path, "train.zero_stage=2"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "is being built by another process" in outputs[1]
    folder = trained_folder(tmp_path)
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # every step once, in order
    assert folder.name == trained_folder(zero2_run).name
