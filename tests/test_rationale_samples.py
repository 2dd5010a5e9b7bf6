"""rationale_samples.jsonl: what the model samples on the fly while it trains, and proof that
train.decoding.temperature decides it although the tiny checkpoint ships Qwen's `top_k: 1`. The same two
runs check the tracking files of a model artifact: TensorBoard events (train.report_to) and the curve."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.pipeline import run_pipeline
from rge_core.training.files import CURVE, METRICS, PROGRESS, RATIONALE_SAMPLES
from rge_core.training.tracking import SCALARS, TENSORBOARD
from tests.helpers import small_config, tensorboard_scalars

# The benchmark's scene facts as oracle rationales: no vLLM start needed to get a dataset.
TRAIN = [
    "curation.generator=reference",
    "curation.reference=synthetic-facts",
    "curation.prompt_set=prompts/rge-v1",
    "train.steps=2",
    "train.log_every=1",
    "train.decoding.max_new_tokens=12",
]
FIELDS = {"step", "pair_id", "rationale", "num_tokens", "budget_hit"}


def trained(root, *extra: str) -> Path:
    """The model artifact's folder."""
    version = run_pipeline(small_config(str(root), *TRAIN, *extra), ["train"])["train"]
    return local_folder(ArtifactStore(str(root)).get(version))


def lines(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Greedy with the default report_to, and sampled with no tracker."""
    root = tmp_path_factory.mktemp("samples")
    return trained(root, "train.decoding.temperature=0", "train.log_samples=3"), trained(
        root, "train.decoding.temperature=1.0", "train.report_to=[]"
    )


@pytest.fixture(scope="module")
def two_temperatures(two_runs) -> tuple[list[dict], list[dict]]:
    return lines(two_runs[0], RATIONALE_SAMPLES), lines(two_runs[1], RATIONALE_SAMPLES)


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


@pytest.mark.slow
def test_the_model_artifact_holds_event_files_of_its_metrics_and_the_curve(two_runs):
    tracked, untracked = two_runs
    scalars = tensorboard_scalars(tracked / TENSORBOARD)
    for key in SCALARS:  # float32 in the event files
        assert scalars[f"train/{key}"] == [(r["step"], float(np.float32(r[key]))) for r in lines(tracked, METRICS)]
    assert [step for step, _ in scalars["train/loss"]] == [1, 2]
    assert not (untracked / TENSORBOARD).exists()  # train.report_to=[]: no tracker ran
    for folder in two_runs:
        png = (folder / CURVE).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">II", png[16:24]) == (640, 360)


@pytest.mark.slow
def test_a_run_shorter_than_log_every_logs_its_last_step_and_finishes(tmp_path):
    # The 3B preset logs every 10 steps; a first try on a few steps used to train, then lose the run.
    folder = trained(tmp_path, "train.log_every=10", "train.report_to=[]", "train.steps=3")
    assert [record["step"] for record in lines(folder, METRICS)] == [1, 3]  # the first and the last
    assert {line["step"] for line in lines(folder, RATIONALE_SAMPLES)} == {1, 3}
    assert (folder / CURVE).is_file() and json.loads((folder / PROGRESS).read_text())["step"] == 3
