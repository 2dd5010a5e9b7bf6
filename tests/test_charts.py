"""summary.png: the bars drawn (read back from the figure's artists) are our aggregates and the published
numbers, and the PNG is one PIL can open."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rge_core.data.mmeb_registry import MMEB_DATASETS, PUBLISHED
from rge_core.evaluation.charts import OURS, summary_figure, summary_png
from rge_core.evaluation.reports import DatasetResult, EvalResults


def _run() -> EvalResults:
    names = ["ImageNet-1K", "VizWiz", "OVEN", "RefCOCO", "MSCOCO"]
    return EvalResults(
        {
            name: DatasetResult(*MMEB_DATASETS[name], 10, {"precision@1": p, "hit@5": 1.0, "mrr": 1.0, "ndcg@5": 1.0})
            for name, p in zip(names, [0.5, 0.3, 0.25, 0.8, 0.9], strict=True)
        }
    )


def drawn_bars(figure) -> dict[str, dict[str, float]]:
    """series label -> x tick label under each bar -> bar height, as rendered."""
    axes = figure.axes[0]
    ticks = {round(t): label.get_text() for t, label in zip(axes.get_xticks(), axes.get_xticklabels(), strict=True)}
    return {
        container.get_label(): {ticks[round(bar.get_x() + bar.get_width() / 2)]: bar.get_height() for bar in container}
        for container in axes.containers
    }


def test_bars_are_the_aggregates_and_the_published_numbers():
    run = _run()
    bars = drawn_bars(summary_figure(run.aggregates()))
    assert set(bars) == {OURS, *PUBLISHED}
    # Independent of the aggregate code: unweighted means by hand (IND: ImageNet-1K, MSCOCO; OOD: the rest).
    assert bars[OURS] == pytest.approx(
        {
            "Overall": 100 * (0.5 + 0.3 + 0.25 + 0.8 + 0.9) / 5,
            "Classification": 50.0,
            "VQA": 30.0,
            "Retrieval": 25.0,
            "Grounding": 100 * (0.8 + 0.9) / 2,
            "IND": 100 * (0.5 + 0.9) / 2,
            "OOD": 100 * (0.3 + 0.25 + 0.8) / 3,
        }
    )
    assert bars["RGE-3B (published)"] == {
        "Overall": 70.1,
        "Classification": 64.4,
        "VQA": 67.8,
        "Retrieval": 70.2,
        "Grounding": 90.1,
        "IND": 75.3,
        "OOD": 63.7,
    }
    assert bars["Baseline, no reasoning (published)"] == {"Overall": 65.2}  # only what was published


def test_groups_without_our_datasets_show_only_the_published_bars():
    metrics = {"precision@1": 0.75, "hit@5": 1.0, "mrr": 1.0, "ndcg@5": 1.0}
    bars = drawn_bars(summary_figure(EvalResults({"VizWiz": DatasetResult("vqa", "OOD", 4, metrics)}).aggregates()))
    assert bars[OURS] == {"Overall": 75.0, "VQA": 75.0, "OOD": 75.0}
    assert len(bars["RGE-3B (published)"]) == 7


def test_png_opens():
    image = Image.open(io.BytesIO(summary_png(_run().aggregates())))
    image.load()
    assert image.format == "PNG" and image.width > 400 and image.height > 200
