"""Batch order (train.batching) as a pure function of (seed, step, rank, world): `mixed` as before,
`per-subset` one subset per global batch; train.pairing; the train stage's checks before any trainer starts; a short
2-process per-subset run."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from data_schemas.io import read_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.model.inputs import Query, Target
from rge_core.pipeline import run_pipeline
from rge_core.training import launch
from rge_core.training.data import Example, batch_indices, with_pairing
from tests.helpers import FACTS, small_config

# 21 examples of three subsets, interleaved in dataset order; global batch 2 x 2 = 4.
SIZES = {"A": 10, "B": 7, "C": 4}
SUBSETS = tuple(
    str(name) for name in np.random.default_rng(5).permutation([n for n, k in SIZES.items() for _ in range(k)])
)
BATCH, WORLD = 2, 2
GLOBAL = BATCH * WORLD
PER_EPOCH = sum(math.ceil(size / GLOBAL) for size in SIZES.values())  # 3 + 2 + 1


def ranks(step: int, seed: int = 0, subsets=SUBSETS) -> list[list[int]]:
    return [batch_indices(subsets, step, BATCH, rank, WORLD, seed, "per-subset") for rank in range(WORLD)]


def epoch_order(epoch: int, seed: int = 0) -> list[list[int]]:
    """Each step's global batch, the ranks' slices in rank order."""
    return [sum(ranks(step, seed), []) for step in range(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH)]


def test_per_subset_global_batches_come_from_one_subset_and_the_ranks_split_them():
    for step in range(2 * PER_EPOCH):
        slices = ranks(step)
        assert [len(s) for s in slices] == [BATCH] * WORLD
        assert not set(slices[0]) & set(slices[1])
        whole = slices[0] + slices[1]
        assert len(set(whole)) == GLOBAL  # padding too: every subset has a global batch of examples
        assert len({SUBSETS[i] for i in whole}) == 1, step


@pytest.mark.parametrize("epoch", [0, 1])
def test_an_epoch_sees_every_example_and_pads_each_subset_from_itself(epoch):
    batches = epoch_order(epoch)
    assert set(sum(batches, [])) == set(range(len(SUBSETS)))
    for name, size in SIZES.items():
        mine = [b for b in batches if SUBSETS[b[0]] == name]
        assert len(mine) == math.ceil(size / GLOBAL)
        counts = Counter(sum(mine, []))
        assert {SUBSETS[i] for i in counts} == {name} and len(counts) == size
        # The padding: a few of the subset's own examples a second time, each in another batch.
        assert sorted(counts.values()) == [1] * (size - (-size % GLOBAL)) + [2] * (-size % GLOBAL)


def test_the_order_changes_with_seed_and_epoch_and_is_the_same_on_every_call():
    first = epoch_order(0)
    assert epoch_order(1) != first and epoch_order(0, seed=1) != first
    assert epoch_order(0) == first
    # Asked out of order and from a list: the same batches.
    assert [sum(ranks(step, subsets=list(SUBSETS)), []) for step in reversed(range(PER_EPOCH))] == first[::-1]
    assert sum(ranks(PER_EPOCH + 2), []) == epoch_order(1)[2]


def test_mixed_keeps_the_former_order():
    """One seeded permutation of all examples per epoch, whole global batches, each rank its slice."""
    per_epoch = len(SUBSETS) // GLOBAL
    for step in (0, 3, per_epoch, per_epoch + 1):
        epoch, within = divmod(step, per_epoch)
        order = np.random.default_rng([7, epoch]).permutation(len(SUBSETS)).tolist()
        for rank in range(WORLD):
            start = within * GLOBAL + rank * BATCH
            assert batch_indices(SUBSETS, step, BATCH, rank, WORLD, 7) == order[start : start + BATCH]


def test_batch_indices_rejects_small_subsets_and_unknown_batching():
    with pytest.raises(ValueError, match=r"global batch \(6 examples\).*too small: C \(4 examples\)$"):
        batch_indices(SUBSETS, 0, 3, 0, 2, 0, "per-subset")
    with pytest.raises(ValueError, match="train.batching: 'by-length'"):
        batch_indices(SUBSETS, 0, BATCH, 0, WORLD, 0, "by-length")


# Enough pairs per subset (about 7 after the validation split) for a per-subset global batch of 2 x 2.
DATA = [*FACTS, "data.synth.train_per_subset=8"]
RUN = [
    "train.steps=3",
    "train.batch_size=2",
    "train.launch.nproc=2",
    "train.decoding.max_new_tokens=8",
    "train.checkpoint_every=100",
    "train.batching=per-subset",
]


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> tuple[str, str]:
    root = str(tmp_path_factory.mktemp("per-subset"))
    return root, run_pipeline(small_config(root, *DATA), ["assemble"])["assemble"]


def train_rows(root: str, dataset: str) -> list[dict]:
    return read_table(ArtifactStore(root).get(dataset).file_url("train.parquet"), "training_examples").to_pylist()


def test_the_stage_rejects_impossible_batching_before_any_trainer_starts(assembled, monkeypatch):
    def no_launch(*args, **kwargs):
        raise AssertionError("the trainer must not start")

    monkeypatch.setattr(launch, "run_trainer", no_launch)
    root, dataset = assembled
    sizes = Counter(row["subset"] for row in train_rows(root, dataset))
    assert min(sizes.values()) < 8
    with pytest.raises(ValueError) as error:
        run_pipeline(
            small_config(root, *DATA, "train.batching=per-subset", "train.batch_size=4", "train.launch.nproc=2"),
            ["train"],
        )
    assert "global batch (8 examples)" in str(error.value)
    for name, size in sizes.items():
        assert (f"{name} ({size} examples)" in str(error.value)) == (size < 8), name
    with pytest.raises(ValueError, match="train.batching: 'by-length'"):
        run_pipeline(small_config(root, *DATA, "train.batching=by-length"), ["train"])
    assert not list(Path(root).glob("model/*/job.json"))  # no training run was even set up


@pytest.mark.slow
def test_a_two_process_per_subset_run_trains_one_subset_per_step(assembled):
    root, dataset = assembled
    model = run_pipeline(small_config(root, *DATA, *RUN), ["train"])["train"]
    folder = Path(ArtifactStore(root).path(model))
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor([r["loss"], r["emb_loss"]])).all() for r in records)
    # rationale_samples.jsonl names rank 0's pairs of every step: the per-subset order, one subset each.
    rows = train_rows(root, dataset)
    subsets = tuple(row["subset"] for row in rows)
    samples = [json.loads(line) for line in (folder / "rationale_samples.jsonl").read_text().splitlines()]
    for step in (1, 2, 3):
        expected = [rows[i]["pair_id"] for i in batch_indices(subsets, step - 1, 2, 0, 2, 0, "per-subset")]
        assert [s["pair_id"] for s in samples if s["step"] == step] == expected
        assert len({pair_id.split("/")[0] for pair_id in expected}) == 1


def _examples(count: int) -> list[Example]:
    return [
        Example(f"p{k}", "s", Query(f"query {k}"), f"rationale {k}", Target(f"target {k}"), Target(f"negative {k}"))
        for k in range(count)
    ]


def test_shuffled_queries_give_every_pair_another_pairs_query_and_keep_the_rest():
    examples = _examples(9)
    shuffled = with_pairing(examples, "shuffled-queries", seed=3)
    assert [e.query.text for e in shuffled] != [e.query.text for e in examples]
    assert all(s.query.text != f"query {k}" for k, s in enumerate(shuffled))  # nobody keeps its own
    assert sorted(s.query.text for s in shuffled) == sorted(e.query.text for e in examples)  # each used once
    for own, swapped in zip(examples, shuffled, strict=True):
        assert (own.pair_id, own.rationale, own.positive, own.negative) == (
            swapped.pair_id,
            swapped.rationale,
            swapped.positive,
            swapped.negative,
        )
    assert with_pairing(examples, "shuffled-queries", seed=3) == shuffled  # the seed decides
    assert with_pairing(examples, "shuffled-queries", seed=4) != shuffled
    assert with_pairing(examples, "paired", seed=3) == examples
    with pytest.raises(ValueError, match="train.pairing: 'random' is not one of"):
        with_pairing(examples, "random", seed=3)
