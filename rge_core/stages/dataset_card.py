"""The dataset card (markdown) and length statistics of an assembled training dataset."""

from __future__ import annotations

import statistics


def length_stats(lengths: list[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def dataset_card(version_id: str, stats: dict, samples: list[dict]) -> str:
    curation = stats["curation"]
    subsets = sorted(set(stats["train"]["per_subset"]) | set(stats["validation"]["per_subset"]))
    lines = [
        f"# Dataset {version_id}",
        "",
        "RGE training examples: query, oracle rationale, positive target and optional hard negative.",
        "",
        f"- Rationales: prompt set `{curation['prompt_set']}` ({curation['prompt_set_hash'][:12]}),"
        f" generator `{curation['generator']}`",
        f"- Curation: {curation['rows']} pairs, {curation['rejects']} rejected ({curation['reject_rate']:.1%}),"
        " left out here",
        f"- Splits: train {stats['train']['rows']}, validation {stats['validation']['rows']}",
        "- Rationale length (chars): " + ", ".join(f"{k} {v}" for k, v in stats["rationale_chars"].items()),
        "",
        "| subset | train | validation |",
        "| --- | ---: | ---: |",
        *(
            f"| {s} | {stats['train']['per_subset'].get(s, 0)} | {stats['validation']['per_subset'].get(s, 0)} |"
            for s in subsets
        ),
        "",
        "## Samples",
        "",
    ]
    for sample in samples:
        lines += [f"- `{sample['pair_id']}`: {sample['qry_text'].strip()[:120]!r} -> {sample['rationale'][:200]!r}"]
    return "\n".join(lines) + "\n"
