"""Per-row failures of an evaluation are rejects, not a failed stage.

Before a chunk is encoded, each item is screened: a text longer than eval.max_text_chars or an image that is
truncated, undecodable or above the pixel cap (rge_core/data/image_header.py) is not encoded. If encoding the
rest fails as a batch, each item is encoded alone, and the ones that fail on their own (a prompt longer than
the engine's context, an image the processor refuses) carry the reason. Such items get zero embeddings and
their reason, cached with the chunk.

A query is then rejected when it, or any candidate of its row, failed: it counts as a miss, ranked last (its
candidates all tie with its ground truth, which the tie-pessimistic scoring ranks below them), so rejects
can only lower a score, never raise it, and the denominator stays MMEB's. The stage writes rejects.jsonl and
fails when more than eval.max_reject_rate of the queries are rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rge_core.data.image_header import header_problem, pixel_cap
from rge_core.evaluation.encoded import Encoded
from rge_core.messages import shortened

if TYPE_CHECKING:
    from rge_core.evaluation.work import DatasetWork


@dataclass(frozen=True)
class ItemScreen:
    pixel_cap: int = pixel_cap(0)
    max_text_chars: int = 20000

    def problem(self, item) -> str:
        if len(item.text) > self.max_text_chars:
            return f"text of {len(item.text)} characters, above eval.max_text_chars ({self.max_text_chars})"
        if isinstance(item.image, (str, Path)):
            return header_problem(item.image, str(item.image), self.pixel_cap) or ""
        return ""


_KINDS = (
    ("characters, above", "text too long"),
    ("pixels, above the cap", "image too large"),
    ("larger than Pillow decodes", "image too large"),
    ("truncated image", "truncated image"),
    ("undecodable image", "undecodable image"),
    ("not an image", "undecodable image"),
)


def reason_kind(reason: str) -> str:
    """What kind of failure a reject reason is, for counts ("truncated image", "error: ValueError", ...)."""
    if reason.startswith("error: "):
        return reason.split(":", 2)[0] + ":" + reason.split(":", 2)[1]
    return next((kind for marker, kind in _KINDS if marker in reason), "other")


def _failure(error: Exception) -> str:
    return f"error: {type(error).__name__}: {shortened(' '.join(str(error).split()))}"


def encode_screened(encode: Callable[[list], Encoded], items: Sequence, screen: ItemScreen) -> Encoded:
    """encode(items) as one Encoded, every item that could not be encoded a zero row with its reason."""
    errors = [screen.problem(item) for item in items]
    good = [i for i, error in enumerate(errors) if not error]
    done: dict[int, tuple] = {}  # item -> (embedding, rationale, tokens, budget hit)
    if good:
        try:
            done = dict(zip(good, _rows(encode([items[i] for i in good])), strict=True))
        except Exception:  # which item failed, and why, is found one item at a time
            for i in good:
                try:
                    done[i] = _rows(encode([items[i]]))[0]
                except Exception as error:  # this item's reject reason
                    errors[i] = _failure(error)
    width = len(next(iter(done.values()))[0]) if done else 0
    zero = (np.zeros(width, np.float32), "", 0, False)
    rows = [done.get(i, zero) for i in range(len(items))]
    embeddings = np.stack([r[0] for r in rows]) if rows else np.zeros((0, width), np.float32)
    return Encoded(
        embeddings.astype(np.float32),
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        errors=errors,
    )


def _rows(encoded: Encoded) -> list[tuple]:
    return list(zip(encoded.embeddings, encoded.rationales, encoded.num_tokens, encoded.budget_hit, strict=True))


def row_rejects(work: DatasetWork, query_errors: list[str], candidate_errors: list[str]) -> dict[int, dict]:
    """Per rejected row of `work`: where it failed and why (its query, else its first failed candidate)."""
    rejects = {}
    for row, (record, indices, positions) in enumerate(
        zip(work.rows, work.candidate_index, work.ranked_positions, strict=True)
    ):
        where = {"dataset": work.dataset, "item_id": record["item_id"]}
        if query_errors[row]:
            rejects[row] = {**where, "field": "qry", "candidate": None, "reason": query_errors[row]}
            continue
        failed = next((k for k, index in enumerate(indices) if candidate_errors[index]), None)
        if failed is not None:
            reason = candidate_errors[indices[failed]]
            rejects[row] = {**where, "field": "tgt", "candidate": positions[failed], "reason": reason}
    return rejects


def scored_rows(work: DatasetWork, queries: Encoded, candidates: Encoded) -> tuple[list[np.ndarray], list[dict]]:
    """Each query's candidate scores (ground truth first) and the rejects; a rejected query's candidates all
    score 0, tying with its ground truth: ranked last, a miss."""
    rejects = row_rejects(work, queries.errors, candidates.errors)
    scores = [
        np.zeros(len(indices), np.float32)
        if row in rejects
        else candidates.embeddings[indices] @ queries.embeddings[row]
        for row, indices in enumerate(work.candidate_index)
    ]
    return scores, list(rejects.values())
