"""Tests for evaluation results and reports: summary tables (Markdown, CSV), run diffs, published comparison.

.venv/bin/python -m pytest tests/test_reports.py -q
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from rge_core.data.mmeb_registry import MMEB_DATASETS, RELEASE_REWRITES
from rge_core.evaluation.predictions import Pairing
from rge_core.evaluation.reports import (
    DatasetResult,
    EvalResults,
    diff_markdown,
    published_comparison_markdown,
    summary_csv,
    summary_markdown,
)


def _result(name: str, p: float, hits: int = 0) -> DatasetResult:
    category, split = MMEB_DATASETS[name]
    return DatasetResult(category, split, 1000, {"precision@1": p, "hit@5": 0.9, "mrr": 0.625, "ndcg@5": 0.7}, hits)


def _run() -> EvalResults:
    return EvalResults(
        {
            "ImageNet-1K": _result("ImageNet-1K", 0.5, hits=12),
            "VizWiz": _result("VizWiz", 0.3),
            "RefCOCO": _result("RefCOCO", 0.802),
            "SynthColor": DatasetResult(
                "classification", "", 8, {"precision@1": 0.25, "hit@5": 1.0, "mrr": 0.5, "ndcg@5": 0.6}
            ),
        }
    )


def test_from_scores():
    scores = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.5], [2.0, 1.0, 1.0]])
    result = DatasetResult.from_scores("ImageNet_1K", scores, budget_hits=1)
    assert (result.category, result.split, result.num_queries, result.budget_hits) == ("classification", "IND", 4, 1)
    assert result.metrics["precision@1"] == 0.5
    synth = DatasetResult.from_scores("SynthT2I", list(scores), extra={"SynthT2I": "retrieval"})
    assert (synth.category, synth.split, synth.num_queries) == ("retrieval", "", 4)


def test_summary_markdown_rows_and_aggregates():
    text = summary_markdown(_run())
    assert "| ImageNet-1K | classification | IND | 1000 | 50.0 | 90.0 | 62.5 | 70.0 | 12 (1.2%) |" in text
    assert "| RefCOCO | grounding | OOD | 1000 | 80.2 | 90.0 | 62.5 | 70.0 | 0 (0.0%) |" in text
    assert "| SynthColor | classification | – | 8 | 25.0 | 100.0 | 50.0 | 60.0 | 0 (0.0%) |" in text
    lines = text.splitlines()
    order = [line.split(" | ")[0] for line in lines if line.startswith("| ") and " | " in line]
    assert order[:5] == ["| Dataset", "| ImageNet-1K", "| VizWiz", "| RefCOCO", "| SynthColor"]
    # Overall over the MMEB-V1 sets only: (50 + 30 + 80.2) / 3 = 53.4; SynthColor is in its own group
    assert "| Overall | 3 | 53.4 | 90.0 |" in text
    assert "| Classification | 1 | 50.0 |" in text
    assert "| non-MMEB-V1 | 1 | 25.0 | 100.0 |" in text
    assert "Not MMEB-V1 sets, scored above and averaged in their own group (non-MMEB-V1): SynthColor;" in text
    assert "| IND | 1 | 50.0 |" in text and "| OOD | 2 | 55.1 |" in text  # (30 + 80.2) / 2
    assert "| Retrieval |" not in text  # no datasets, no row
    assert "Missing MMEB-V1 datasets (33 of 36)" in text and "ImageNet-1K," not in text.split("Missing")[1]


def test_summary_markdown_without_mmeb_datasets_has_no_missing_note():
    run = EvalResults(
        {"SynthVQA": DatasetResult("vqa", "", 4, {"precision@1": 1.0, "hit@5": 1.0, "mrr": 1.0, "ndcg@5": 1.0})}
    )
    assert "Missing" not in summary_markdown(run) and "Not MMEB-V1" not in summary_markdown(run)


def test_summary_csv():
    rows = list(csv.DictReader(io.StringIO(summary_csv(_run()))))
    assert [row["dataset"] for row in rows] == ["ImageNet-1K", "VizWiz", "RefCOCO", "SynthColor"]
    assert rows[0] == {
        "dataset": "ImageNet-1K",
        "category": "classification",
        "split": "IND",
        "num_queries": "1000",
        "precision@1 (%)": "50.0",
        "hit@5 (%)": "90.0",
        "mrr (%)": "62.5",
        "ndcg@5 (%)": "70.0",
        "budget_hits": "12",
        "gt_copy_rows": "0",
    }
    assert rows[2]["precision@1 (%)"] == "80.2" and rows[3]["split"] == ""


def test_json_round_trip():
    run = _run()
    data = json.loads(json.dumps(run.to_dict()))
    assert EvalResults.from_dict(data) == run
    assert data["aggregates"]["overall"]["num_datasets"] == 3 and data["aggregates"]["non-MMEB-V1"]["num_datasets"] == 1


def test_diff_shows_deltas_and_missing_datasets():
    a = _run()
    b = EvalResults(
        {
            "ImageNet_1K": _result("ImageNet-1K", 0.6),
            "VizWiz": _result("VizWiz", 0.25),
            "RefCOCO": _result("RefCOCO", 0.8016),
            "OVEN": _result("OVEN", 0.4),
        }
    )
    text = diff_markdown(a, b, "base", "rge", metrics=("precision@1", "mrr"))
    assert "| P@1 base | P@1 rge | P@1 Δ | MRR base | MRR rge | MRR Δ |" in text
    assert "| ImageNet-1K | classification | 50.0 | 60.0 | +10.0 | 62.5 | 62.5 | +0.0 |" in text
    assert "| VizWiz | vqa | 30.0 | 25.0 | -5.0 |" in text
    assert "| RefCOCO | grounding | 80.2 | 80.2 | +0.0 |" in text  # -0.04 points rounds to +0.0, not -0.0
    assert "| OVEN | retrieval | – | 40.0 | – |" in text
    assert "| SynthColor | classification | 25.0 | – | – |" in text
    # Aggregates over the 3 common datasets only: base (50 + 30 + 80.2) / 3 = 53.4, rge (60 + 25 + 80.16) / 3 = 55.05
    assert "Aggregates over the 3 datasets in both runs" in text
    assert "| Overall | 3 | 53.4 | 55.1 | +1.7 |" in text
    assert "| OOD | 2 | 55.1 | 52.6 | -2.5 |" in text  # (25 + 80.16) / 2 = 52.58
    assert "Only in base (left out of the aggregates): SynthColor." in text
    assert "Only in rge (left out of the aggregates): OVEN." in text
    assert "No per-query comparison: base has no predictions.parquet" in text and "McNemar" not in text


def _diff_runs() -> tuple[EvalResults, EvalResults]:
    return _run(), EvalResults(
        {"ImageNet-1K": _result("ImageNet-1K", 0.6), "VizWiz": _result("VizWiz", 0.25), "OVEN": _result("OVEN", 0.4)}
    )


def test_diff_with_predictions_adds_the_exact_mcnemar_test_per_dataset_and_pooled():
    pairing = Pairing(
        discordant={"ImageNet-1K": (2, 5), "VizWiz": (6, 0)},
        paired={"ImageNet-1K": 1000, "VizWiz": 998},
        only_a=[f"VizWiz/test/{i}" for i in range(12)],
        only_b=["VizWiz/test/999"],
    )
    text = diff_markdown(*_diff_runs(), "base", "rge", pairing=pairing)
    assert "| P@1 base | P@1 rge | P@1 Δ | Paired | b | c | p (exact McNemar) |" in text
    # (C(7,0) + C(7,1) + C(7,2)) / 2^7, doubled = 58/128
    assert "| ImageNet-1K | classification | 50.0 | 60.0 | +10.0 | 1000 | 2 | 5 | 0.453 |" in text
    assert "| VizWiz | vqa | 30.0 | 25.0 | -5.0 | 998 | 6 | 0 | 0.0312 |" in text
    assert "| OVEN | retrieval | – | 40.0 | – | – | – | – | – |" in text
    pooled = 2 * sum(math.comb(13, i) for i in range(6)) / 2**13  # b = 8, c = 5 over both datasets
    assert f"| Overall | 2 | 40.0 | 42.5 | +2.5 | 1998 | 8 | 5 | {pooled:.3g} |" in text
    # Each aggregate pools the paired queries of its own datasets.
    assert "| Classification | 1 | 50.0 | 60.0 | +10.0 | 1000 | 2 | 5 | 0.453 |" in text
    assert "| VQA | 1 | 30.0 | 25.0 | -5.0 | 998 | 6 | 0 | 0.0312 |" in text
    assert "| OOD | 1 | 30.0 | 25.0 | -5.0 | 998 | 6 | 0 | 0.0312 |" in text  # VizWiz is one of MMEB's OOD sets
    assert "exact McNemar test, two-sided" in text and "No per-query comparison" not in text
    named = ", ".join(f"VizWiz/test/{i}" for i in range(10))
    assert f"12 only in base ({named} and 2 more); 1 only in rge (VizWiz/test/999)." in text


def test_diff_with_every_query_paired_has_no_unpaired_note():
    pairing = Pairing(discordant={"VizWiz": (3, 3)}, paired={"VizWiz": 1000}, only_a=[], only_b=[])
    text = diff_markdown(*_diff_runs(), "base", "rge", pairing=pairing)
    assert "| VizWiz | vqa | 30.0 | 25.0 | -5.0 | 1000 | 3 | 3 | 1 |" in text and "not paired" not in text


RELEASE = {side: {"path": f"/data/{name}", "sha256": sha256} for side, (name, sha256) in RELEASE_REWRITES.items()}
NO_REWRITES = {"query": None, "candidate": None}


def test_published_comparison_full_run_with_the_release_rewrites_is_comparable():
    run = EvalResults({name: _result(name, 0.7) for name in MMEB_DATASETS})
    text = published_comparison_markdown(run.aggregates(), RELEASE)
    assert "| Overall | 36/36 | 70.0 | 70.1 | 65.2 |" in text
    assert "| Grounding | 4/4 | 70.0 | 90.1 | – |" in text
    assert "| OOD | 16/16 | 70.0 | 63.7 | – |" in text
    assert "*" not in text and "VLM2Vec-7B 65.8" in text
    assert "queries: the release's instruction_replacements-eval.yaml" in text


def test_the_hubs_cifar_100_beside_the_36_sets_leaves_the_run_comparable():
    cifar = DatasetResult("other", "", 1000, {"precision@1": 0.1, "hit@5": 0.2, "mrr": 0.15, "ndcg@5": 0.15})
    run = EvalResults({**{name: _result(name, 0.7) for name in MMEB_DATASETS}, "CIFAR-100": cifar})
    text = published_comparison_markdown(run.aggregates(), RELEASE)
    assert "| Overall | 36/36 | 70.0 | 70.1 | 65.2 |" in text and "*" not in text
    summary = summary_markdown(run)
    assert "| Overall | 36 | 70.0 |" in summary and "| non-MMEB-V1 | 1 | 10.0 |" in summary
    assert "| CIFAR-100 | other | – | 1000 | 10.0 |" in summary
    assert sum("Not MMEB-V1 sets" in line and "CIFAR-100" in line for line in summary.splitlines()) == 1


@pytest.mark.parametrize("rewrites", [NO_REWRITES, {**RELEASE, "candidate": {"path": "mine.yaml", "sha256": "0" * 64}}])
def test_published_comparison_without_the_release_rewrites_is_not_comparable(rewrites):
    run = EvalResults({name: _result(name, 0.7) for name in MMEB_DATASETS})
    text = published_comparison_markdown(run.aggregates(), rewrites)
    assert "| Overall | 36/36 | 70.0* | 70.1 | 65.2 |" in text and "Not comparable" in text
    assert ("MMEB's own texts" in text) == (rewrites is NO_REWRITES)


def test_published_comparison_marks_partial_runs():
    run = EvalResults({name: _result(name, 0.7) for name in list(MMEB_DATASETS)[:-1]})  # no Visual7W-Pointing
    text = published_comparison_markdown(run.aggregates(), RELEASE)
    assert "| Overall | 35/36 | 70.0* | 70.1 | 65.2 |" in text
    assert "| Grounding | 3/4 | 70.0* |" in text
    assert "| Classification | 10/10 | 70.0 | 64.4 | – |" in text
    assert "Not comparable" in text
    synth = published_comparison_markdown(_run().aggregates(), RELEASE)
    assert "| Retrieval | 0/12 | –* |" in synth and "| VQA | 1/10 | 30.0* |" in synth
