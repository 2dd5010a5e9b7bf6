"""summary.png: this evaluation's Precision@1 per MMEB group next to the published numbers, as a bar chart."""

from __future__ import annotations

import io
from collections.abc import Mapping

from matplotlib.figure import Figure

from rge_core.data.mmeb_registry import CATEGORIES, PUBLISHED, SPLITS
from rge_core.evaluation.reports import LABELS

GROUPS = ("overall", *CATEGORIES, *SPLITS)
OURS = "This eval"


def chart_series(aggregates: Mapping[str, dict]) -> dict[str, dict[str, float]]:
    """Bar heights (P@1, %) per series and group: ours for the groups with datasets, each published
    reference for the groups it reports."""
    ours = {
        group: 100 * aggregates[group]["metrics"]["precision@1"]
        for group in GROUPS
        if group in aggregates and aggregates[group]["num_datasets"]
    }
    published = {name: {g: values[g] for g in GROUPS if g in values} for name, values in PUBLISHED.items()}
    return {OURS: ours, **published}


def summary_figure(aggregates: Mapping[str, dict]) -> Figure:
    """Grouped bars, one group per MMEB aggregate that any series has; a missing value leaves a gap."""
    series = chart_series(aggregates)
    groups = [g for g in GROUPS if any(g in values for values in series.values())]
    # No pyplot: a bare Figure keeps no global state and renders with Agg.
    figure = Figure(figsize=(1.4 * len(groups) + 2, 4), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    for s, (name, values) in enumerate(series.items()):
        shown = [g for g in groups if g in values]
        x = [groups.index(g) + (s - (len(series) - 1) / 2) * width for g in shown]
        bars = axes.bar(x, [values[g] for g in shown], width, label=name)
        axes.bar_label(bars, fmt="%.1f", fontsize=7)
    axes.set_xticks(range(len(groups)), [LABELS.get(g, g) for g in groups])
    axes.set_ylabel("Precision@1 (%)")
    axes.set_ylim(0, 105)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    axes.set_title("MMEB Precision@1: this eval and the published numbers")
    return figure


def summary_png(aggregates: Mapping[str, dict]) -> bytes:
    buffer = io.BytesIO()
    summary_figure(aggregates).savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()
