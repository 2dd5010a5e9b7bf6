"""Per-query predictions of an evaluation (predictions.parquet) and the pairing of two evaluations' queries.

A row per query: the ground truth's 1-based rank (ties counted against it, exactly as Precision@1: rank 1
means candidate 0 scored strictly highest), its score, and the top candidate (on a tie with the ground truth,
the first tying distractor) with its score. `top_index` is the candidate's position in the row's own
candidate list (copies of the ground truth are left out of the ranking, `scoring.distinct_from_gt`, but
the positions of the others keep counting them). Then the rationale the query was embedded after, whether
it hit the token budget, and whether it reaches the reference facts' conclusion ("right", "wrong", or ""
without a reference: rge_core/evaluation/rationale_checks.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rge_core.evaluation.scoring import gt_ranks


def prediction_rows(
    dataset: str,
    item_ids: Sequence[str],
    scores: Sequence[np.ndarray],
    positions: Sequence[Sequence[int]],
    rationales: Sequence[str] | None = None,
    budget_hits: Sequence[bool] | None = None,
    checks: Sequence[str] | None = None,
) -> list[dict]:
    """One row per query of `dataset`; `scores[i]` are query i's ranked candidates' scores, ground truth first,
    and `positions[i]` where those candidates sit in the row's candidate list. `rationales`, `budget_hits` and
    `checks` (one per query) default to none: "", False, ""."""
    ranks = gt_ranks(scores)
    n = len(item_ids)
    rationales, budget_hits, checks = rationales or [""] * n, budget_hits or [False] * n, checks or [""] * n
    rows = []
    for item_id, rank, row, where, text, hit, check in zip(
        item_ids, ranks, scores, positions, rationales, budget_hits, checks, strict=True
    ):
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
                "rationale": text,
                "budget_hit": bool(hit),
                "rationale_check": check,
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


def read_predictions(url: str) -> pa.Table:
    """An eval's predictions.parquet, validated; one written before predictions held rationales gets them
    as none ("", False, ""), so that older evals still pair with newer ones (--compare-to)."""
    import fsspec
    import pyarrow.parquet as pq

    from data_schemas import validate

    with fsspec.open(url, "rb") as handle:
        table = pq.read_table(handle)
    for name, value in (("rationale", ""), ("budget_hit", False), ("rationale_check", "")):
        if name not in table.column_names:
            table = table.append_column(name, pa.array([value] * table.num_rows))
    return validate(table, "predictions", source=url)


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
