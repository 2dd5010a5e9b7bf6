"""train.rationale_engine vllm: on-the-fly rationales from a colocated vLLM engine that is given the trained
weights before every step. Greedy rationales must be the ones transformers generates from the same weights."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from rge_core.config.schema import TrainConfig, VLLMEngineConfig
from rge_core.training.vllm_rationales import check_rationale_engine
from tests.helpers import run_result_script, run_train


def test_a_missing_vllm_stops_the_train_stage_in_one_line(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    vllm = dataclasses.replace(TrainConfig(), rationale_engine="vllm")
    with pytest.raises(ValueError, match=r"^train.rationale_engine: vllm is not installed; pip install"):
        check_rationale_engine(vllm)
    check_rationale_engine(dataclasses.replace(vllm, method="baseline"))  # samples nothing: needs no engine
    check_rationale_engine(dataclasses.replace(vllm, rationale_engine="hf"))


def test_an_engine_too_short_for_the_rationale_budget_is_refused():
    vllm = dataclasses.replace(TrainConfig(), rationale_engine="vllm", vllm=VLLMEngineConfig(max_model_len=256))
    with pytest.raises(ValueError, match=r"^train.vllm.max_model_len: 256 leaves no room .* \(256\)"):
        check_rationale_engine(vllm)
    check_rationale_engine(dataclasses.replace(vllm, vllm=VLLMEngineConfig(max_model_len=1024)))


@pytest.fixture(scope="module")
def script_runs(tiny_model_dir, tmp_path_factory) -> dict[str, dict]:
    images = tmp_path_factory.mktemp("images")
    return {
        name: run_result_script("train_vllm_script.py", str(tiny_model_dir), str(images), *flags)
        for name, flags in {"lora": (), "no-sync": ("--no-sync",), "dora": ("--dora",)}.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["lora", "dora"])
def test_synced_engine_samples_what_transformers_samples_at_every_step(script_runs, adapter):
    run = script_runs[adapter]
    assert run["vllm"] == run["hf"]  # six steps, four queries each
    assert run["hf"][0] != run["hf"][-1]  # training moved the rationales, so a stale engine would show
    assert run["syncs"] == 6  # the first full load, then one after each optimizer step
    assert run["base_unchanged"]  # merged out of place: the frozen base weights are bitwise the same
    assert run["max_merge_error"] < 1e-6 and run["merged_names"] > 0  # = PEFT's merge of a copy
    first, again, reseeded = run["sampled"]
    assert first == again and first != reseeded  # sampled texts follow the step's seed, and only it


@pytest.mark.slow
def test_an_engine_that_is_not_synced_drifts_from_the_trained_model(script_runs):
    run = script_runs["no-sync"]
    assert run["syncs"] == 1
    assert run["vllm"][0] == run["hf"][0]  # step 0: the first load is all it needs
    assert run["vllm"] != run["hf"]


def samples(root: Path) -> dict[tuple[int, str], str]:
    [folder] = [p for p in (root / "model").iterdir() if (p / "rationale_samples.jsonl").exists()]
    lines = (folder / "rationale_samples.jsonl").read_text().splitlines()
    return {(r["step"], r["pair_id"]): r["rationale"] for r in map(json.loads, lines)}


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_rge_train_with_the_vllm_engine_logs_the_hf_engines_rationales(tmp_path, zero_stage):
    # A large learning rate, so that six steps change the greedy rationales of the tiny random model.
    settings = [
        f"train.zero_stage={zero_stage}",
        "train.decoding.temperature=0",
        "train.lr=0.02",
        "train.warmup_steps=0",
        "train.batch_size=4",
    ]
    runs = {}
    for engine in ("hf", "vllm"):
        run_train(tmp_path / engine, *settings, f"train.rationale_engine={engine}")
        runs[engine] = samples(tmp_path / engine)
    hf, vllm = runs["hf"], runs["vllm"]
    assert vllm.keys() == hf.keys() and len(hf) == 6 * 4  # rank 0's batch of 4, each of 6 steps
    assert len({text for (step, _), text in hf.items() if step in (1, 6)}) > 1  # the rationales moved
    same = [vllm[key] == hf[key] for key in hf]
    last = [vllm[key] == hf[key] for key in hf if key[0] == 6]
    assert sum(same) >= 0.9 * len(same) and sum(last) >= 0.9 * len(last)
