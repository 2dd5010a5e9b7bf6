"""rationale_samples.jsonl: what the model samples on the fly while it trains, and proof that
train.rationale_temperature decides it although the tiny checkpoint ships Qwen's `top_k: 1`."""

from __future__ import annotations

import json

import pytest

from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

# The benchmark's scene facts as oracle rationales: no vLLM start needed to get a dataset.
TRAIN = [
    "curation.generator=reference",
    "curation.reference=synthetic-facts",
    "curation.prompt_set=prompts/rge-v1",
    "train.steps=2",
    "train.log_every=1",
    "train.rationale_max_new_tokens=12",
]
FIELDS = {"step", "pair_id", "rationale", "num_tokens", "budget_hit"}


def samples(root, *extra: str) -> list[dict]:
    config = small_config(str(root), *TRAIN, *extra)
    version = run_pipeline(config, ["train"])["train"]
    folder = local_folder(ArtifactStore(str(root)).get(version))
    return [json.loads(line) for line in (folder / "rationale_samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_temperatures(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    root = tmp_path_factory.mktemp("samples")
    return samples(root, "train.rationale_temperature=0", "train.log_samples=3"), samples(
        root, "train.rationale_temperature=1.0"
    )


@pytest.mark.slow
def test_samples_are_logged_per_step_for_rank_0s_first_queries(two_temperatures):
    greedy, sampled = two_temperatures
    for lines, per_step in ((greedy, 3), (sampled, 4)):  # log_samples=3; default 8 capped by the batch of 4
        assert [line["step"] for line in lines] == [1] * per_step + [2] * per_step
        assert all(set(line) == FIELDS and line["num_tokens"] <= 12 for line in lines)
        assert all(line["budget_hit"] == (line["num_tokens"] == 12) for line in lines)  # no <emb> within 12
    assert [line["pair_id"] for line in greedy] == [line["pair_id"] for line in sampled[:3] + sampled[4:7]]


def test_two_temperatures_give_different_rationales(two_temperatures):
    greedy, sampled = two_temperatures
    first = [line["rationale"] for line in sampled[:3] + sampled[4:7]]
    assert [line["rationale"] for line in greedy] != first
