"""Scores of one MMEB dataset from its query x candidate similarities, and their unweighted means over datasets.

MMEB puts the ground truth at candidate 0 of every query's candidate list. Ties are resolved AGAINST the ground
truth: its rank is the number of other candidates scoring at least as high. So a query counts for Precision@1
only when candidate 0 scores strictly higher than every other candidate. (MMEB's reference `argmax` picks index
0 on ties, which would give a degenerate model — constant or collapsed embeddings — a perfect score.)
The one exception: a distractor identical to the ground truth (same text, same image) is the ground truth and
is left out before ranking (`distinct_from_gt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rge_core.data.mmeb_registry import CATEGORIES, SPLITS, dataset_info

METRICS = ("precision@1", "hit@5", "mrr", "ndcg@5")
Scores = np.ndarray | Sequence[np.ndarray]


def _nan_error(query: int) -> ValueError:
    return ValueError(f"query {query}: candidate scores contain NaN")


def distinct_from_gt(candidates: Sequence) -> list[int]:
    """Positions of a row's candidates to rank: 0 and every other candidate that is not the same item as it.
    Some MMEB rows list the ground truth again among their distractors; that copy encodes identically, so
    it would tie with candidate 0 and turn every hit into a miss. It is the ground truth, not a competitor
    (the release's `argmax` counts it a hit too). `candidates` are comparable item keys, e.g. (text, image)."""
    return [0] + [pos for pos in range(1, len(candidates)) if candidates[pos] != candidates[0]]


def gt_ranks(scores: Scores) -> np.ndarray:
    """Pessimistic 0-based rank of the ground truth (candidate 0) per query: how many other candidates score >=
    it. `scores` is a [queries, candidates] matrix, or a list of 1-D rows when queries have different numbers of
    candidates."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        if 0 in scores.shape:
            raise ValueError(f"expected at least one query and one candidate, got a matrix of shape {scores.shape}")
        if np.isnan(scores).any():
            raise _nan_error(int(np.isnan(scores).any(axis=1).argmax()))
        return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    rows = [np.asarray(row, dtype=float) for row in scores]
    if not rows:
        raise ValueError("no queries to score")
    for query, row in enumerate(rows):
        if row.ndim != 1 or row.size == 0:
            raise ValueError(f"query {query}: expected a non-empty 1-D row of candidate scores, got shape {row.shape}")
        if np.isnan(row).any():
            raise _nan_error(query)
    return np.array([int((row[1:] >= row[0]).sum()) for row in rows])


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    """Precision@1, Hit@5, MRR and NDCG@5 (one relevant item) as fractions, averaged over queries."""
    ranks = np.asarray(ranks)
    ndcg = np.where(ranks < 5, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {
        "precision@1": float(np.mean(ranks == 0)),
        "hit@5": float(np.mean(ranks < 5)),
        "mrr": float(np.mean(1.0 / (1.0 + ranks))),
        "ndcg@5": float(np.mean(ndcg)),
    }


def score_matrix(scores: Scores) -> dict[str, float]:
    """Metrics of one dataset; ground truth at candidate 0, ties never in its favour (see the module docstring)."""
    return metrics_from_ranks(gt_ranks(scores))


# The group of the sets outside MMEB-V1 in a run that also holds MMEB-V1 sets (e.g. the Hub's CIFAR-100).
NON_MMEB = "non-MMEB-V1"


def group_members(names: Sequence[str], extra: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The datasets of each aggregate group, in report order: "overall", each category (MMEB's four, then any
    other category from `extra`), "IND", "OOD", then NON_MMEB when it has members. When `names` hold any
    MMEB-V1 set, overall, the categories and IND/OOD are taken over the MMEB-V1 sets only, as the published
    numbers are, and every other set goes to NON_MMEB. A run of other sets only (the synthetic benchmark, a
    folder of one's own) is a benchmark of its own: overall over all of them, categories from `extra`
    (name -> category; "other" where it names none). Raises on a dataset given twice (in two spellings)."""
    members: dict[str, list[str]] = {group: [] for group in ("overall", *CATEGORIES, *SPLITS)}
    seen: dict[str, str] = {}
    infos = {name: dataset_info(name, extra) for name in names}
    for name, (canonical, _, _) in infos.items():
        if canonical in seen:
            raise ValueError(f"dataset {canonical!r} given twice: {seen[canonical]!r} and {name!r}")
        seen[canonical] = name
    has_mmeb = any(split for _, _, split in infos.values())
    outside: list[str] = []
    for name, (_, category, split) in infos.items():
        if has_mmeb and not split:
            outside.append(name)
            continue
        for group in ("overall", category, split):
            if group:
                members.setdefault(group, []).append(name)
    order = ["overall", *CATEGORIES, *sorted(set(members) - {"overall", *CATEGORIES, *SPLITS}), *SPLITS]
    ordered = {group: members[group] for group in order}
    if outside:
        ordered[NON_MMEB] = outside
    return ordered


def aggregate(
    per_dataset: Mapping[str, Mapping[str, float]], extra: Mapping[str, str] | None = None
) -> dict[str, dict]:
    """Unweighted means over the datasets of each group of `group_members`. Each group is
    {"num_datasets": n, "metrics": {name: mean}}; metrics is {} for a group without datasets."""
    return {
        group: {
            "num_datasets": len(names),
            "metrics": {m: float(np.mean([per_dataset[n][m] for n in names])) for m in METRICS} if names else {},
        }
        for group, names in group_members(list(per_dataset), extra).items()
    }
