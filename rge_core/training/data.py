"""Training examples and their order. The order is a pure function of (seed, step, rank, world), so a run
resumed from a checkpoint at step s sees exactly the batches an uninterrupted run sees after s."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rge_core.model.inputs import Query, Target

BATCHING = ("mixed", "per-subset")
PAIRINGS = ("paired", "shuffled-queries")


@dataclass(frozen=True)
class Example:
    pair_id: str
    subset: str
    query: Query
    rationale: str  # the oracle rationale (teacher forcing only)
    positive: Target
    negative: Target | None  # hard negative, when the pair has one


def to_examples(rows: list[dict], image_root: Path) -> list[Example]:
    def image(rel: str) -> Path | None:
        return image_root / rel if rel else None

    return [
        Example(
            pair_id=row["pair_id"],
            subset=row["subset"],
            query=Query(row["qry_text"], image(row["qry_image"])),
            rationale=row["rationale"],
            positive=Target(row["pos_text"], image(row["pos_image"])),
            negative=Target(row["neg_text"], image(row["neg_image"])) if row["neg_text"] or row["neg_image"] else None,
        )
        for row in rows
    ]


def with_pairing(examples: Sequence[Example], pairing: str, seed: int) -> list[Example]:
    """train.pairing. shuffled-queries gives every example another example's query (one cycle through a seeded
    random order, so no example keeps its own) and keeps its oracle rationale and targets: the paper's Fig. 4
    training on unpaired queries, and a control that has nothing to learn."""
    if pairing not in PAIRINGS:
        raise ValueError(f"train.pairing: {pairing!r} is not one of {PAIRINGS}")
    if pairing == "paired" or len(examples) < 2:
        return list(examples)
    order = np.random.default_rng([seed, 7]).permutation(len(examples))
    donors = np.roll(order, 1)  # the example at order[k] takes the query of order[k - 1]
    shuffled = list(examples)
    for taker, donor in zip(order, donors, strict=True):
        shuffled[taker] = dataclasses.replace(examples[taker], query=examples[donor].query)
    return shuffled


def check_batching(subsets: Sequence[str], batching: str, global_batch: int) -> None:
    """Raise ValueError unless every step can draw a global batch of `global_batch` examples. `subsets`
    names each example's subset. The train stage calls it before launching the trainer."""
    if batching not in BATCHING:
        raise ValueError(f"train.batching: {batching!r} is not one of {BATCHING}")
    if batching == "mixed" and global_batch > len(subsets):
        raise ValueError(f"global batch {global_batch} exceeds the {len(subsets)} training examples")
    if batching == "per-subset":
        small = {
            name: len(members) for name, members in _members(tuple(subsets)).items() if len(members) < global_batch
        }
        if small:
            listed = ", ".join(f"{name} ({size} examples)" for name, size in small.items())
            raise ValueError(
                f"train.batching: per-subset draws every global batch ({global_batch} examples) from one "
                f"subset; too small: {listed}"
            )


@functools.lru_cache(maxsize=1)
def _members(subsets: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each subset's example indices, subsets in name order. Cached: grouping a million examples takes a
    noticeable fraction of a second, and the trainer asks every step with the same tuple."""
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(subsets):
        groups.setdefault(name, []).append(index)
    return {name: np.array(groups[name]) for name in sorted(groups)}


def _per_subset_epoch(members: dict[str, np.ndarray], global_batch: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch of per-subset global batches, concatenated in a shuffled batch order."""
    batches: list[np.ndarray] = []
    for indices in members.values():
        order = rng.permutation(indices)
        # Pad to whole global batches with the first items of this epoch's permutation. The RGE release
        # repeats the subset's last item instead, which puts copies of one pair in a batch, each the
        # other's false negative; these are distinct from the batch's other items whenever the subset has
        # at least a global batch of examples (check_batching requires it).
        order = np.concatenate([order, order[: -len(order) % global_batch]])
        batches.extend(order.reshape(-1, global_batch))
    return np.concatenate([batches[i] for i in rng.permutation(len(batches))])


def batch_indices(
    subsets: Sequence[str], step: int, batch_size: int, rank: int, world_size: int, seed: int, batching: str = "mixed"
) -> list[int]:
    """This rank's example indices for `step` (0-based); `subsets` names each example's subset (pass a
    tuple: it keys a cache). Every epoch has a fresh order seeded by (seed, epoch), cut into global batches
    of batch_size * world_size taken in order; each rank takes its contiguous slice of the global batch.

    mixed: one permutation of all examples; the remainder after the last whole global batch is dropped.
    per-subset (the RGE release's TaskBatchDataset): every global batch from one subset; each subset's
    permutation padded to whole global batches; the batches of all subsets in a shuffled order."""
    global_batch = batch_size * world_size
    check_batching(subsets, batching, global_batch)
    if batching == "mixed":
        epoch, within = divmod(step, len(subsets) // global_batch)
        order = np.random.default_rng([seed, epoch]).permutation(len(subsets))
    else:
        members = _members(tuple(subsets))
        epoch, within = divmod(step, sum(-(-len(indices) // global_batch) for indices in members.values()))
        order = _per_subset_epoch(members, global_batch, np.random.default_rng([seed, epoch]))
    start = within * global_batch + rank * batch_size
    return order[start : start + batch_size].tolist()
