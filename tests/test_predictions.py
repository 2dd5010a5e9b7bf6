"""Per-query predictions (ranks as Precision@1 counts them, ties against the ground truth) and the pairing of
two evaluations' queries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from data_schemas import validate
from rge_core.evaluation.predictions import pair_predictions, prediction_rows
from rge_core.evaluation.scoring import score_matrix


def test_ranks_scores_and_top_candidate_with_ties_against_the_ground_truth():
    scores = [
        np.array([0.9, 0.1, 0.2]),  # ground truth strictly top
        np.array([0.5, 0.5, 0.1]),  # a distractor ties with it: rank 2, the distractor is the top
        np.array([0.1, 0.7, 0.7, 0.3]),  # three distractors above, the best two tied: the first of them is the top
        np.array([0.3]),  # a lone ground truth
        np.array([0.2, 0.2, 0.2]),  # all equal: the ground truth loses to both
    ]
    rows = prediction_rows("Set", [f"Set/test/{i}" for i in range(5)], scores, [range(len(s)) for s in scores])
    got = [(r["gt_rank"], r["gt_score"], r["top_index"], r["top_score"]) for r in rows]
    assert got == [(1, 0.9, 0, 0.9), (2, 0.5, 1, 0.5), (4, 0.1, 1, 0.7), (1, 0.3, 0, 0.3), (3, 0.2, 1, 0.2)]
    assert {r["dataset"] for r in rows} == {"Set"} and rows[4]["item_id"] == "Set/test/4"
    precision = np.mean([r["gt_rank"] == 1 for r in rows])
    assert precision == score_matrix(scores)["precision@1"] == 0.4
    validate(pa.Table.from_pylist(rows), "predictions", "predictions.parquet")  # the stage's schema


def test_random_scores_agree_with_an_independent_ranking():
    rng = np.random.default_rng(0)
    scores = [np.round(rng.normal(size=rng.integers(1, 9)), 1) for _ in range(300)]  # rounding makes ties
    rows = prediction_rows("Set", [str(i) for i in range(300)], scores, [range(len(s)) for s in scores])
    for row, s in zip(rows, scores, strict=True):
        beaten_by = sum(1 for other in s[1:] if other >= s[0])
        assert row["gt_rank"] == 1 + beaten_by
        assert row["top_score"] == s.max() and s[row["top_index"]] == s.max()
        assert (row["top_index"] == 0) == (beaten_by == 0)


def test_top_index_is_the_position_in_the_row_when_a_ground_truth_copy_is_left_out():
    # The row lists 4 candidates; position 1 repeats the ground truth, so the ranked ones are 0, 2 and 3.
    rows = prediction_rows("Set", ["Set/test/0"], [np.array([0.2, 0.1, 0.6])], [[0, 2, 3]])
    assert (rows[0]["gt_rank"], rows[0]["top_index"], rows[0]["top_score"]) == (2, 3, 0.6)


def _predictions(right: dict[str, bool]) -> pa.Table:
    """A predictions table: item id "<dataset>/<n>" -> whether its ground truth ranked first."""
    return pa.Table.from_pylist(
        [
            {"item_id": item, "dataset": item.split("/")[0], "gt_rank": 1 if ok else 4}
            | {"gt_score": 0.0, "top_index": 0 if ok else 2, "top_score": 0.0}
            for item, ok in right.items()
        ]
    )


def test_pairing_counts_discordant_queries_and_names_the_unpaired():
    a = {"A/0": True, "A/1": True, "A/2": False, "A/3": False, "A/4": True, "B/0": True, "C/0": True}
    b = {"A/0": True, "A/1": False, "A/2": True, "A/3": True, "A/5": False, "B/0": False, "D/0": True}
    pairing = pair_predictions(_predictions(a), _predictions(b))
    assert pairing.discordant == {"A": (1, 2), "B": (1, 0)}  # datasets in both runs only
    assert pairing.paired == {"A": 4, "B": 1}
    assert pairing.only_a == ["A/4"] and pairing.only_b == ["A/5"]  # C and D are whole datasets in one run


@pytest.mark.parametrize("seed", range(3))
def test_pairing_matches_a_count_over_both_runs(seed):
    rng = np.random.default_rng(seed)
    items = [f"{d}/{i}" for d in "XYZ" for i in range(40)]
    a = {item: bool(rng.random() < 0.5) for item in items}
    b = {item: bool(rng.random() < 0.6) for item in items}
    pairing = pair_predictions(_predictions(a), _predictions(b))
    for dataset in "XYZ":
        mine = [item for item in items if item.startswith(f"{dataset}/")]
        expected = (sum(a[i] and not b[i] for i in mine), sum(b[i] and not a[i] for i in mine))
        assert pairing.discordant[dataset] == expected
