"""Training examples and their order. The order is a pure function of (seed, step), so a run resumed
from a checkpoint at step s sees exactly the batches an uninterrupted run sees after s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rge_core.model.inputs import Query, Target


@dataclass(frozen=True)
class Example:
    pair_id: str
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
            query=Query(row["qry_text"], image(row["qry_image"])),
            rationale=row["rationale"],
            positive=Target(row["pos_text"], image(row["pos_image"])),
            negative=Target(row["neg_text"], image(row["neg_image"])) if row["neg_text"] or row["neg_image"] else None,
        )
        for row in rows
    ]


def batch_indices(num_examples: int, step: int, batch_size: int, rank: int, world_size: int, seed: int) -> list[int]:
    """This rank's example indices for `step` (0-based): a fresh seeded permutation every epoch, global
    batches of batch_size * world_size taken in order, each rank its contiguous slice."""
    global_batch = batch_size * world_size
    if global_batch > num_examples:
        raise ValueError(f"global batch {global_batch} exceeds the {num_examples} training examples")
    per_epoch = num_examples // global_batch  # the remainder of each permutation is dropped
    epoch, within = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    start = within * global_batch + rank * batch_size
    return order[start : start + batch_size].tolist()
