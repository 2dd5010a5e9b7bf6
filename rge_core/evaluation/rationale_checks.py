"""Whether each query's rationale reaches the reference conclusion, and how that goes with retrieval.

The reference is a facts.parquet keyed by item id (columns item_id, facts): the synthetic benchmark's, or one
in the eval folder itself. A rationale is "right" when its conclusion is the facts' (rge_core/synth/facts.py),
"wrong" otherwise, and "" when the item has no facts or the query no rationale. summary.md then
cross-tabulates it with whether the ground truth ranked first: P@1 where the rationale is right and where it
is wrong, the paper's central question asked of one model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rge_core.synth.facts import reaches

FACTS = "facts.parquet"


def reference_facts(path: Path | None) -> dict[str, str]:
    """Item id -> facts of the file at `path` ({} when there is none)."""
    if path is None or not path.is_file():
        return {}
    table = pq.read_table(path, columns=["item_id", "facts"])
    return dict(zip(table.column("item_id").to_pylist(), table.column("facts").to_pylist(), strict=True))


def checks(facts: dict[str, str], item_ids: Sequence[str], rationales: Sequence[str]) -> list[str]:
    """Per query "right" or "wrong", or "" where the item has no facts or the query no rationale."""
    return [
        "" if item not in facts or not text else ("right" if reaches(text, facts[item]) else "wrong")
        for item, text in zip(item_ids, rationales, strict=True)
    ]


def _cells(right: int, total: int) -> list[str]:
    return [str(total), f"{100 * right / total:.1f}" if total else "–"]


def crosstab_markdown(predictions: pa.Table) -> str:
    """A section for summary.md: per dataset, queries and P@1 (%) where the rationale reaches the reference
    conclusion and where it does not; "" when no query has a reference."""
    columns = predictions.select(["dataset", "gt_rank", "rationale_check"]).to_pydict()
    queries: Counter[tuple[str, str]] = Counter()
    correct: Counter[tuple[str, str]] = Counter()
    for dataset, rank, check in zip(columns["dataset"], columns["gt_rank"], columns["rationale_check"], strict=True):
        if check:
            for name in (dataset, "all"):
                queries[name, check] += 1
                correct[name, check] += rank == 1
    if not queries:
        return ""
    names = sorted({name for name, _ in queries} - {"all"}) + ["all"]
    lines = [
        "## Rationales vs retrieval",
        "",
        "| Dataset | Right rationales | P@1 where right (%) | Wrong rationales | P@1 where wrong (%) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        cells = [*_cells(correct[name, "right"], queries[name, "right"])]
        cells += _cells(correct[name, "wrong"], queries[name, "wrong"])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Right: the rationale the query was embedded after reaches the conclusion of the item's reference facts "
        "(its last clause); queries without reference facts are left out.",
    ]
    return "\n" + "\n".join(lines) + "\n"
