"""Evaluation results and their reports: per-dataset and aggregate tables (Markdown, CSV), a diff of two runs,
and a comparison with the published MMEB-V1 numbers. Results hold fractions; reports print percentages with
one decimal (the MMEB convention).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from rge_core.data.mmeb_registry import (
    CATEGORIES,
    MMEB_DATASETS,
    PEERS,
    PUBLISHED,
    RELEASE_REWRITES,
    SPLITS,
    canonical_name,
    dataset_info,
    missing_datasets,
)
from rge_core.evaluation.predictions import Pairing
from rge_core.evaluation.scoring import METRICS, NON_MMEB, Scores, aggregate, group_members, score_matrix
from rge_core.evaluation.significance import MCNEMAR_NOTE, mcnemar_exact

LABELS = {
    "precision@1": "P@1",
    "hit@5": "Hit@5",
    "mrr": "MRR",
    "ndcg@5": "NDCG@5",
    "overall": "Overall",
    "classification": "Classification",
    "vqa": "VQA",
    "retrieval": "Retrieval",
    "grounding": "Grounding",
}
_DASH = "–"


@dataclass(frozen=True)
class DatasetResult:
    """Scores of one dataset. `budget_hits`: queries whose rationale reached the token budget without `<emb>`;
    `gt_copy_rows`: queries whose distractors repeat the ground truth (scored as the ground truth)."""

    category: str
    split: str  # "IND", "OOD", or "" for a non-MMEB dataset
    num_queries: int
    metrics: dict[str, float]  # METRICS, as fractions
    budget_hits: int = 0
    gt_copy_rows: int = 0

    @classmethod
    def from_scores(
        cls,
        name: str,
        scores: Scores,
        budget_hits: int = 0,
        extra: Mapping[str, str] | None = None,
        gt_copy_rows: int = 0,
    ) -> DatasetResult:
        _, category, split = dataset_info(name, extra)
        return cls(category, split, len(scores), score_matrix(scores), budget_hits, gt_copy_rows)


@dataclass(frozen=True)
class EvalResults:
    """Results of one evaluation run, by dataset name; aggregates are computed from them."""

    datasets: dict[str, DatasetResult]

    def categories(self) -> dict[str, str]:
        return {name: result.category for name, result in self.datasets.items()}

    def aggregates(self) -> dict[str, dict]:
        return aggregate({name: r.metrics for name, r in self.datasets.items()}, self.categories())

    def to_dict(self) -> dict:
        """JSON-ready: {"datasets": {name: fields}, "aggregates": aggregate(...)}."""
        return {"datasets": {name: asdict(r) for name, r in self.datasets.items()}, "aggregates": self.aggregates()}

    @classmethod
    def from_dict(cls, data: Mapping) -> EvalResults:
        return cls({name: DatasetResult(**fields) for name, fields in data["datasets"].items()})


def _pct(value: float | None) -> str:
    return _DASH if value is None else f"{100 * value:.1f}"


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return _DASH
    return f"{round(100 * (b - a), 1) + 0.0:+.1f}"  # + 0.0 turns -0.0 into 0.0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _key(name: str) -> str:
    return canonical_name(name) or name


def _order(names: Sequence[str]) -> list[str]:
    """MMEB datasets in registry order, then the others by name."""
    position = {name: i for i, name in enumerate(MMEB_DATASETS)}
    return sorted(names, key=lambda n: (position.get(_key(n), len(position)), n))


def _aggregate_rows(aggregates: Mapping[str, dict]) -> list[list[str]]:
    return [
        [LABELS.get(group, group), str(g["num_datasets"]), *(_pct(g["metrics"][m]) for m in METRICS)]
        for group, g in aggregates.items()
        if g["num_datasets"]
    ]


def summary_markdown(results: EvalResults) -> str:
    """Per-dataset table, then the aggregates (unweighted means over the datasets present)."""
    rows = []
    for name in _order(list(results.datasets)):
        r = results.datasets[name]
        share = 100 * r.budget_hits / r.num_queries if r.num_queries else 0.0
        rows.append(
            [
                name,
                r.category,
                r.split or _DASH,
                str(r.num_queries),
                *(_pct(r.metrics[m]) for m in METRICS),
                f"{r.budget_hits} ({share:.1f}%)",
                str(r.gt_copy_rows),
            ]
        )
    parts = [
        "## Per-dataset scores (%)",
        _table(
            [
                "Dataset",
                "Category",
                "Split",
                "Queries",
                *(LABELS[m] for m in METRICS),
                "Budget hits",
                "Rows with GT copies",
            ],
            rows,
        ),
        "## Aggregates (unweighted means over datasets, %)",
        _table(["Group", "Datasets", *(LABELS[m] for m in METRICS)], _aggregate_rows(results.aggregates())),
    ]
    notes = [_outside_note(results), _missing_note(results.datasets)]
    return "\n\n".join(parts + [note for note in notes if note]) + "\n"


def _outside_note(results: EvalResults) -> str:
    """One line naming the sets outside MMEB-V1 of a run that has MMEB-V1 sets too; "" when there are none."""
    outside = group_members(list(results.datasets), results.categories()).get(NON_MMEB)
    if not outside:
        return ""
    return (
        f"Not MMEB-V1 sets, scored above and averaged in their own group ({NON_MMEB}): {', '.join(_order(outside))}; "
        "Overall, the categories and IND/OOD are over the MMEB-V1 sets only."
    )


def _missing_note(names: Sequence[str] | Mapping[str, object]) -> str:
    """A line naming the MMEB-V1 datasets absent from a run that has some; "" if it has none or all."""
    missing = missing_datasets(names)
    if len(missing) in (0, len(MMEB_DATASETS)):
        return ""
    return f"Missing MMEB-V1 datasets ({len(missing)} of {len(MMEB_DATASETS)}): {', '.join(missing)}."


def summary_csv(results: EvalResults) -> str:
    """One row per dataset; metrics in percent with one decimal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["dataset", "category", "split", "num_queries", *(f"{m} (%)" for m in METRICS), "budget_hits", "gt_copy_rows"]
    )
    for name in _order(list(results.datasets)):
        r = results.datasets[name]
        writer.writerow(
            [
                name,
                r.category,
                r.split,
                r.num_queries,
                *(_pct(r.metrics[m]) for m in METRICS),
                r.budget_hits,
                r.gt_copy_rows,
            ]
        )
    return out.getvalue()


_PAIRED_HEADER = ["Paired", "b", "c", "p (exact McNemar)"]
_NAMED = 10  # unpaired queries named in the note; the rest are counted


def _paired_cells(pairing: Pairing, names: Sequence[str]) -> list[str]:
    """Queries paired, b, c and the exact McNemar p, pooled over `names` (datasets of the pairing)."""
    n = sum(pairing.paired[name] for name in names)
    b = sum(pairing.discordant[name][0] for name in names)
    c = sum(pairing.discordant[name][1] for name in names)
    return [str(n), str(b), str(c), f"{mcnemar_exact(b, c):.3g}"]


def _unpaired_note(pairing: Pairing, name_a: str, name_b: str) -> str:
    parts = []
    for label, items in ((name_a, pairing.only_a), (name_b, pairing.only_b)):
        if items:
            more = f" and {len(items) - _NAMED} more" if len(items) > _NAMED else ""
            parts.append(f"{len(items)} only in {label} ({', '.join(items[:_NAMED])}{more})")
    if not parts:
        return ""
    return f"Queries of the common datasets in one run only, not paired: {'; '.join(parts)}."


def diff_markdown(
    a: EvalResults,
    b: EvalResults,
    name_a: str,
    name_b: str,
    metrics: Sequence[str] = ("precision@1",),
    pairing: Pairing | None = None,
) -> str:
    """Run `a` next to run `b`, per dataset and per aggregate, with deltas b - a in points. Aggregates are taken
    over the datasets both runs have, so they compare like with like. With `pairing` (both runs' per-query
    predictions), each dataset and Overall (its queries pooled) get the exact McNemar test of the P@1
    difference; without it, a note says that run `a` has no predictions.parquet."""
    by_a = {_key(n): r for n, r in a.datasets.items()}
    by_b = {_key(n): r for n, r in b.datasets.items()}
    header = [f"{LABELS[m]} {side}" for m in metrics for side in (name_a, name_b, "Δ")]
    paired = {_key(n): n for n in pairing.discordant} if pairing else {}
    no_test = [_DASH] * len(_PAIRED_HEADER)

    def side_by_side(ma: Mapping[str, float] | None, mb: Mapping[str, float] | None) -> list[str]:
        cells = []
        for m in metrics:
            va, vb = ma[m] if ma else None, mb[m] if mb else None
            cells += [_pct(va), _pct(vb), _delta(va, vb)]
        return cells

    rows = []
    for name in _order(list(by_a.keys() | by_b.keys())):
        ra, rb = by_a.get(name), by_b.get(name)
        category = (ra or by_b[name]).category  # the name is in one of them at least
        row = [name, category, *side_by_side(ra.metrics if ra else None, rb.metrics if rb else None)]
        if pairing:
            row += _paired_cells(pairing, [paired[name]]) if name in paired else no_test
        rows.append(row)
    common = [n for n in by_a if n in by_b]
    categories = {n: by_a[n].category for n in common}
    agg_a = aggregate({n: by_a[n].metrics for n in common}, categories) if common else {}
    agg_b = aggregate({n: by_b[n].metrics for n in common}, categories) if common else {}
    members = group_members(common, categories)
    agg_rows = []
    for group, g in agg_a.items():
        if g["num_datasets"]:
            row = [
                LABELS.get(group, group),
                str(g["num_datasets"]),
                *side_by_side(g["metrics"], agg_b[group]["metrics"]),
            ]
            if pairing:
                tested = [paired[name] for name in members.get(group, []) if name in paired]
                row += _paired_cells(pairing, tested) if tested else no_test
            agg_rows.append(row)
    extra = _PAIRED_HEADER if pairing else []
    parts = [
        f"## {name_a} vs {name_b}: per dataset (%)",
        _table(["Dataset", "Category", *header, *extra], rows),
        f"## Aggregates over the {len(common)} datasets in both runs (%)",
        _table(["Group", "Datasets", *header, *extra], agg_rows),
    ]
    for label, only in ((name_a, by_a.keys() - by_b.keys()), (name_b, by_b.keys() - by_a.keys())):
        if only:
            parts.append(f"Only in {label} (left out of the aggregates): {', '.join(_order(list(only)))}.")
    if pairing:
        parts.append(
            f"Paired: queries of both runs (same dataset and item_id); b: right in {name_a} only, c: right in "
            f"{name_b} only; each aggregate pools the paired queries of its datasets. {MCNEMAR_NOTE}"
        )
        parts.append(_unpaired_note(pairing, name_a, name_b))
    else:
        parts.append(
            f"No per-query comparison: {name_a} has no predictions.parquet (it predates per-query predictions)."
        )
    return "\n\n".join(part for part in parts if part) + "\n"


def _rewrites_note(rewrites: Mapping[str, Mapping | None]) -> tuple[bool, str]:
    """(whether the run used the release's rewrite files on both sides, a sentence saying what it used)."""
    used, release = [], True
    for side, (name, sha256) in RELEASE_REWRITES.items():
        record, label = rewrites.get(side), {"query": "queries", "candidate": "candidates"}[side]
        if record is not None and record["sha256"] == sha256:
            used.append(f"{label}: the release's {name}")
            continue
        release = False
        used.append(
            f"{label}: MMEB's own texts" if record is None else f"{label}: {record['path']} (not the release's {name})"
        )
    files = " and ".join(f"`{name}`" for name, _ in RELEASE_REWRITES.values())
    return release, (
        f"Texts of this run: {'; '.join(used)}. The published RGE-3B numbers were measured with the "
        f"RGE release's rewrite files ({files}, passed as eval.query_rewrites and "
        "eval.candidate_rewrites): a run is comparable with them only with those files, on all 36 "
        "datasets."
    )


def _published_datasets() -> dict[str, int]:
    """How many MMEB-V1 datasets each published group (overall, category, IND/OOD) averages over."""
    expected = {"overall": len(MMEB_DATASETS)}
    for category, split in MMEB_DATASETS.values():
        expected[category] = expected.get(category, 0) + 1
        expected[split] = expected.get(split, 0) + 1
    return expected


def comparable_with_published(
    aggregates: Mapping[str, dict], rewrites: Mapping[str, Mapping | None]
) -> dict[str, bool]:
    """Per published group (overall, categories, IND/OOD): whether our number is comparable with the published
    one, i.e. the group holds exactly its MMEB-V1 datasets and the texts were rewritten with the release's files
    (`rewrites`: side -> {"path", "sha256"} or None)."""

    def count(group: str) -> int:
        return aggregates[group]["num_datasets"] if group in aggregates else 0

    release_texts = _rewrites_note(rewrites)[0]
    only_mmeb = count("overall") == sum(count(split) for split in SPLITS)
    return {
        group: release_texts and only_mmeb and count(group) == expected
        for group, expected in _published_datasets().items()
    }


def published_comparison_markdown(aggregates: Mapping[str, dict], rewrites: Mapping[str, Mapping | None]) -> str:
    """Our Precision@1 aggregates next to the published RGE-3B and baseline numbers. A group is comparable only
    when it holds exactly its MMEB-V1 datasets and the texts were rewritten with the release's files
    (`rewrites`: side -> {"path", "sha256"} or None); otherwise it is marked, with how many datasets it has."""
    expected, comparable = _published_datasets(), comparable_with_published(aggregates, rewrites)
    texts_note = _rewrites_note(rewrites)[1]
    rows, partial = [], False
    for group in ("overall", *CATEGORIES, *SPLITS):
        n = aggregates[group]["num_datasets"] if group in aggregates else 0
        ours = _pct(aggregates[group]["metrics"]["precision@1"]) if n else _DASH
        if not comparable[group]:
            ours, partial = f"{ours}*", True
        rows.append(
            [
                LABELS.get(group, group),
                f"{n}/{expected[group]}",
                ours,
                *(f"{reference[group]:.1f}" if group in reference else _DASH for reference in PUBLISHED.values()),
            ]
        )
    parts = [
        "## Comparison with published MMEB-V1 results (Precision@1, %)",
        _table(["Group", "Datasets", "Ours", *PUBLISHED], rows),
    ]
    if partial:
        parts.append(
            "\\* Not comparable: the run did not use the release's rewrite files, or the group does not "
            "hold all of its MMEB-V1 datasets (sets outside MMEB-V1 are never averaged into these groups)."
        )
    parts.append(texts_note)
    parts.append("Peers (overall): " + ", ".join(f"{name} {score:.1f}" for name, score in PEERS.items()) + ".")
    return "\n\n".join(parts) + "\n"
