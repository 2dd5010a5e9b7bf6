"""Tests for MMEB scoring (Precision@1 with ties against the ground truth, Hit@5, MRR, NDCG@5), aggregation
and the MMEB-V1 registry.

    .venv/bin/python -m pytest tests/test_scoring.py -q
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rge_core.data.mmeb_registry import MMEB_DATASETS, dataset_info, missing_datasets
from rge_core.evaluation.scoring import NON_MMEB, aggregate, gt_ranks, score_matrix


def _loop_metrics(rows: list[list[float]]) -> dict[str, float]:
    """Reference: sort each row by descending score, ground truth placed AFTER the candidates it ties with."""
    p1 = hit5 = mrr = ndcg = 0.0
    for row in rows:
        order = sorted(range(len(row)), key=lambda i: (-row[i], i == 0))
        rank = order.index(0)
        p1 += rank == 0
        hit5 += rank < 5
        mrr += 1 / (rank + 1)
        ndcg += 1 / math.log2(rank + 2) if rank < 5 else 0.0
    n = len(rows)
    return {"precision@1": p1 / n, "hit@5": hit5 / n, "mrr": mrr / n, "ndcg@5": ndcg / n}


def _close(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-12), key


def test_all_equal_scores_score_zero_not_one():
    scores = np.full((4, 10), 0.3)
    assert np.argmax(scores[0]) == 0  # what a plain argmax would (wrongly) credit
    assert gt_ranks(scores).tolist() == [9, 9, 9, 9]
    _close(score_matrix(scores), {"precision@1": 0.0, "hit@5": 0.0, "mrr": 0.1, "ndcg@5": 0.0})


def test_tie_with_one_other_candidate_is_not_correct():
    scores = np.array([[0.5, 0.1, 0.5, 0.2]])
    assert gt_ranks(scores).tolist() == [1]
    _close(score_matrix(scores), {"precision@1": 0.0, "hit@5": 1.0, "mrr": 0.5, "ndcg@5": 1 / math.log2(3)})


def test_hand_made_matrix():
    scores = np.array(
        [
            [9, 1, 2, 3, 4, 5, 6],  # rank 0
            [5, 9, 8, 7, 1, 2, 3],  # rank 3
            [5, 9, 8, 7, 6, 5, 1],  # rank 5 (one tie counted against the ground truth)
            [0, 1, 2, 3, 4, 5, 6],  # rank 6
        ],
        dtype=float,
    )
    assert gt_ranks(scores).tolist() == [0, 3, 5, 6]
    expected = {
        "precision@1": 0.25,
        "hit@5": 0.5,
        "mrr": (1 + 1 / 4 + 1 / 6 + 1 / 7) / 4,
        "ndcg@5": (1 + 1 / math.log2(5)) / 4,
    }
    _close(score_matrix(scores), expected)


def test_ragged_candidate_lists():
    rows = [np.array([0.9, 0.1]), np.array([0.2, 0.3, 0.2, 0.1, 0.0]), np.array([0.0] + [1.0] * 8)]
    assert gt_ranks(rows).tolist() == [0, 2, 8]
    expected = {
        "precision@1": 1 / 3,
        "hit@5": 2 / 3,
        "mrr": (1 + 1 / 3 + 1 / 9) / 3,
        "ndcg@5": (1 + 1 / math.log2(4)) / 3,
    }
    _close(score_matrix(rows), expected)


@pytest.mark.parametrize("seed", range(5))
def test_random_matrices_match_loop_reference(seed):
    rng = np.random.default_rng(seed)
    ties = rng.integers(0, 4, size=(200, 12)).astype(float)  # many ties
    _close(score_matrix(ties), _loop_metrics(ties.tolist()))
    dense = rng.normal(size=(100, 30)).astype(np.float32)
    _close(score_matrix(dense), _loop_metrics(dense.tolist()))
    ragged = [rng.integers(0, 3, size=int(rng.integers(1, 15))).astype(float) for _ in range(100)]
    _close(score_matrix(ragged), _loop_metrics([row.tolist() for row in ragged]))


def test_matrix_and_list_of_rows_agree():
    scores = np.random.default_rng(7).integers(0, 5, size=(50, 8)).astype(float)
    assert gt_ranks(scores).tolist() == gt_ranks(list(scores)).tolist()


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 5)),
        np.zeros((3, 0)),
        [],
        [np.array([1.0]), np.array([])],
        np.array([[1.0, np.nan], [1.0, 0.0]]),
        [np.array([0.1]), np.array([np.nan, 1.0])],
    ],
)
def test_invalid_scores_are_rejected(bad):
    with pytest.raises(ValueError):
        score_matrix(bad)


def _m(p: float) -> dict[str, float]:
    return {"precision@1": p, "hit@5": 1 - p, "mrr": p / 2, "ndcg@5": p / 4}


def test_aggregate_by_hand():
    """Sets outside MMEB-V1 never enter Overall, the categories or IND/OOD of a run with MMEB-V1 sets."""
    per_dataset = {
        "ImageNet_1K": _m(0.5),
        "OK-VQA": _m(0.2),
        "RefCOCO": _m(0.9),
        "VizWiz": _m(0.4),
        "CIFAR-100": _m(0.1),
        "SynthOdd": _m(0.3),
    }
    agg = aggregate(per_dataset, {"CIFAR-100": "classification", "SynthOdd": "other"})
    assert list(agg) == ["overall", "classification", "vqa", "retrieval", "grounding", "IND", "OOD", NON_MMEB]
    counts = {group: g["num_datasets"] for group, g in agg.items()}
    assert counts == {
        "overall": 4,
        "classification": 1,
        "vqa": 2,
        "retrieval": 0,
        "grounding": 1,
        "IND": 2,
        "OOD": 2,
        NON_MMEB: 2,
    }
    p1 = {group: g["metrics"].get("precision@1") for group, g in agg.items()}
    assert p1 == pytest.approx(
        {
            "overall": 2.0 / 4,
            "classification": 0.5,
            "vqa": 0.3,
            "retrieval": None,
            "grounding": 0.9,
            "IND": 0.35,
            "OOD": 0.65,
            NON_MMEB: 0.2,
        }
    )
    assert agg["overall"]["metrics"]["hit@5"] == pytest.approx(1 - 2.0 / 4)
    assert agg["OOD"]["metrics"]["ndcg@5"] == pytest.approx(1.3 / 8)
    assert agg["retrieval"]["metrics"] == {}


def test_a_run_without_mmeb_sets_is_a_benchmark_of_its_own():
    per_dataset = {"SynthColor": _m(0.5), "SynthVQA": _m(0.2), "SynthOdd": _m(0.3)}
    agg = aggregate(per_dataset, {"SynthColor": "classification", "SynthVQA": "vqa"})
    assert list(agg) == ["overall", "classification", "vqa", "retrieval", "grounding", "other", "IND", "OOD"]
    assert agg["overall"]["num_datasets"] == 3 and agg["overall"]["metrics"]["precision@1"] == pytest.approx(1 / 3)
    assert agg["other"]["metrics"]["precision@1"] == pytest.approx(0.3)
    assert agg["IND"]["num_datasets"] == agg["OOD"]["num_datasets"] == 0


def test_aggregate_rejects_a_dataset_given_twice_and_keeps_other_sets_out_of_the_mmeb_groups():
    with pytest.raises(ValueError, match="ImageNet-1K"):
        aggregate({"ImageNet_1K": _m(0.5), "ImageNet-1K": _m(0.4)})
    agg = aggregate({"SynthColor": _m(0.5), "VOC2007": _m(0.1)})
    assert agg[NON_MMEB]["num_datasets"] == 1 and agg["overall"]["num_datasets"] == 1
    assert agg["overall"]["metrics"]["precision@1"] == pytest.approx(0.1)
    assert agg["IND"]["num_datasets"] == 1  # only registry sets have a split


def test_registry_counts():
    assert len(MMEB_DATASETS) == 36
    categories = [category for category, _ in MMEB_DATASETS.values()]
    assert {c: categories.count(c) for c in set(categories)} == {
        "classification": 10,
        "vqa": 10,
        "retrieval": 12,
        "grounding": 4,
    }
    splits = [split for _, split in MMEB_DATASETS.values()]
    assert (splits.count("IND"), splits.count("OOD")) == (20, 16)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ImageNet_1K", ("ImageNet-1K", "classification", "IND")),
        ("ImageNet-A", ("ImageNet-A", "classification", "OOD")),
        ("A_OKVQA", ("A-OKVQA", "vqa", "IND")),
        ("Wiki_SS_NQ", ("Wiki-SS-NQ", "retrieval", "OOD")),
        ("VisualNews-t2i", ("VisualNews_t2i", "retrieval", "IND")),
        ("MSCOCO", ("MSCOCO", "grounding", "IND")),
        ("MSCOCO_i2t", ("MSCOCO_i2t", "retrieval", "IND")),
        ("RefCOCO_Matching", ("RefCOCO-Matching", "grounding", "OOD")),
        ("Visual7W", ("Visual7W", "vqa", "IND")),
        ("Visual7W-Pointing", ("Visual7W-Pointing", "grounding", "OOD")),
    ],
)
def test_dataset_info_spellings(name, expected):
    assert dataset_info(name) == expected


def test_dataset_info_extra_and_unknown():
    assert dataset_info("SynthVQA", {"SynthVQA": "vqa"}) == ("SynthVQA", "vqa", "")
    assert dataset_info("SynthVQA") == ("SynthVQA", "other", "")


def test_missing_datasets():
    present = [name.replace("-", "_") for name in MMEB_DATASETS if name not in ("OVEN", "ImageNet-R")]
    assert missing_datasets(present + ["SynthColor"]) == ["ImageNet-R", "OVEN"]
    assert missing_datasets(MMEB_DATASETS) == []
    assert len(missing_datasets([])) == 36
