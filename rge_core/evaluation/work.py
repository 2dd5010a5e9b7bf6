"""One dataset's evaluation work, built the same way in the stage and in every eval shard process: its
queries (rewritten), its unique candidates (rewritten, deduplicated; copies of the ground truth count as
it) and, per query, the indices of its candidates among the unique ones."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rge_core.data.rewrites import RewriteFile
from rge_core.data.special_text import check_no_special_tokens
from rge_core.evaluation.scoring import distinct_from_gt
from rge_core.model.inputs import Query, Target


@dataclass(eq=False)  # compared by identity: one per dataset
class DatasetWork:
    dataset: str
    rows: list[dict]  # the eval rows, in order
    queries: list[Query]
    targets: list[Target]  # unique candidates
    candidate_index: list[list[int]]  # per query: its candidates (ground truth first) among `targets`
    ranked_positions: list[list[int]]  # per query: where each ranked candidate sits in the row's tgt_* lists
    gt_copy_rows: int  # queries with a candidate equal to their ground truth, dropped from the ranking
    references: int  # candidate references before deduplication


def _rewrite(rewrites: RewriteFile | None, dataset: str, text: str, changed: Counter) -> str:
    """The text as evaluated; counts the texts whose dataset rules changed them (not just the newline)."""
    if rewrites is None:
        return text
    rewritten, was_changed = rewrites.apply(dataset, text)
    if rewrites.rules_for(dataset) is not None:  # a dataset with rules that change nothing shows 0
        changed[dataset] += was_changed
    return rewritten


def dataset_work(
    items: pa.Table,
    dataset: str,
    image_root: Path,
    query_rewrites: RewriteFile | None,
    candidate_rewrites: RewriteFile | None,
    changed: dict[str, Counter] | None = None,
) -> DatasetWork:
    """`changed` (optional): per side ("query", "candidate"), the texts each dataset's rules changed."""
    changed = changed if changed is not None else {"query": Counter(), "candidate": Counter()}

    def image(rel: str) -> Path | None:
        return image_root / rel if rel else None

    rows = items.filter(pc.equal(items.column("dataset"), dataset)).to_pylist()
    queries = [
        Query(_rewrite(query_rewrites, dataset, r["qry_text"], changed["query"]), image(r["qry_image"])) for r in rows
    ]
    unique: dict[tuple[str, str], int] = {}
    candidate_index, ranked_positions, gt_copy_rows, references = [], [], 0, 0
    for r in rows:
        keys = [
            (_rewrite(candidate_rewrites, dataset, t, changed["candidate"]), i)
            for t, i in zip(r["tgt_text"], r["tgt_image"], strict=True)
        ]
        kept = distinct_from_gt(keys)
        gt_copy_rows += len(kept) < len(keys)
        references += len(keys)
        candidate_index.append([unique.setdefault(keys[k], len(unique)) for k in kept])
        ranked_positions.append(kept)
    targets = [Target(text, image(img)) for text, img in unique]
    check_no_special_tokens(
        [
            *((dataset, "qry_text", row, q.text) for row, q in enumerate(queries)),
            *((dataset, "tgt_text", row, t) for row, r in enumerate(rows) for t in r["tgt_text"]),
        ],
        "eval.data",
    )
    return DatasetWork(dataset, rows, queries, targets, candidate_index, ranked_positions, gt_copy_rows, references)
