"""Per-query predictions of an evaluation (predictions.parquet) and the pairing of two evaluations' queries.

A row per query: the ground truth's 1-based rank (ties counted against it, exactly as Precision@1: rank 1
means candidate 0 scored strictly highest), its score, and the top candidate (on a tie with the ground truth,
the first tying distractor) with its score. `top_index` is the candidate's position in the row's own
candidate list (copies of the ground truth are left out of the ranking, `scoring.distinct_from_gt`, but
the positions of the others keep counting them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rge_core.evaluation.scoring import gt_ranks


def prediction_rows(
    dataset: str, item_ids: Sequence[str], scores: Sequence[np.ndarray], positions: Sequence[Sequence[int]]
) -> list[dict]:
    """One row per query of `dataset`; `scores[i]` are query i's ranked candidates' scores, ground truth first,
    and `positions[i]` where those candidates sit in the row's candidate list."""
    ranks = gt_ranks(scores)
    rows = []
    for item_id, rank, row, where in zip(item_ids, ranks, scores, positions, strict=True):
        row = np.asarray(row, dtype=float)
        # A distractor scoring >= the ground truth outranks it, so the top is then the best distractor.
        top = 0 if rank == 0 else 1 + int(np.argmax(row[1:]))
        rows.append(
            {
                "item_id": item_id,
                "dataset": dataset,
                "gt_rank": int(rank) + 1,
                "gt_score": float(row[0]),
                "top_index": where[top],
                "top_score": float(row[top]),
            }
        )
    return rows


@dataclass(frozen=True)
class Pairing:
    """Two evaluations' queries paired on (dataset, item_id), over the datasets both have.
    `discordant`: dataset -> (b: right in run a only, c: right in run b only); `paired`: dataset -> queries
    paired; `only_a` / `only_b`: item ids of those datasets present in one run only (not paired)."""

    discordant: dict[str, tuple[int, int]]
    paired: dict[str, int]
    only_a: list[str]
    only_b: list[str]


def correct_queries(predictions: pa.Table) -> dict[tuple[str, str], bool]:
    """(dataset, item_id) -> whether the ground truth ranked first (ties count against it)."""
    columns = predictions.select(["dataset", "item_id", "gt_rank"]).to_pydict()
    return {
        (dataset, item): rank == 1
        for dataset, item, rank in zip(columns["dataset"], columns["item_id"], columns["gt_rank"], strict=True)
    }


def pair_predictions(a: pa.Table, b: pa.Table) -> Pairing:
    """Pair two predictions tables (schema "predictions") query by query."""
    right_a, right_b = correct_queries(a), correct_queries(b)
    common = {dataset for dataset, _ in right_a} & {dataset for dataset, _ in right_b}
    discordant: dict[str, list[int]] = {dataset: [0, 0] for dataset in sorted(common)}
    paired: Counter[str] = Counter()
    for key in right_a.keys() & right_b.keys():
        paired[key[0]] += 1
        if right_a[key] != right_b[key]:
            discordant[key[0]][0 if right_a[key] else 1] += 1

    def only(mine: dict, theirs: dict) -> list[str]:
        return sorted(item for dataset, item in mine.keys() - theirs.keys() if dataset in common)

    return Pairing(
        {dataset: (bc[0], bc[1]) for dataset, bc in discordant.items()},
        {dataset: paired[dataset] for dataset in discordant},
        only(right_a, right_b),
        only(right_b, right_a),
    )
