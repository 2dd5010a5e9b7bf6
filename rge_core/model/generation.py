"""Batched, KV-cached rationale generation that stops at `<emb>`.

A query whose rationale runs out of budget before `<emb>` is flagged (`hit_budget`) and its text is
what was generated; the caller then embeds `text + <emb>` — the `<emb>` is appended explicitly and
counted, never silently replaced by whatever token happened to come last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rge_core.model.decoding import Decoding, generate_kwargs

if TYPE_CHECKING:
    from rge_core.model.inputs import Query
    from rge_core.model.rge_model import RGEModel


@dataclass(frozen=True)
class Sampling:
    decoding: Decoding = Decoding()  # greedy by default
    seed: int | None = None  # seeds torch's global generator before sampling, for reproducible runs


@dataclass
class RationaleBatch:
    texts: list[str] = field(default_factory=list)
    num_tokens: list[int] = field(default_factory=list)  # generated tokens before `<emb>`
    hit_budget: list[bool] = field(default_factory=list)  # no `<emb>` within max_new_tokens

    @property
    def fallback_count(self) -> int:
        return sum(self.hit_budget)


@torch.no_grad()
def generate_rationales(
    rge: RGEModel, queries: Sequence[Query], max_new_tokens: int, sampling: Sampling
) -> RationaleBatch:
    if not queries:
        return RationaleBatch()
    batch = rge.tokenize([rge.generation_prompt(q) for q in queries], [q.image for q in queries], padding_side="left")
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    sequences = rge.model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        eos_token_id=rge.emb.token_id,
        pad_token_id=rge.tokenizer.pad_token_id,
        use_cache=True,
        **generate_kwargs(sampling.decoding),
    )
    new_tokens = sequences[: len(queries), batch["input_ids"].shape[1] :].tolist()  # drops a dummy row
    return rationales_from_tokens(rge.tokenizer, new_tokens, rge.emb.token_id)


def rationales_from_tokens(tokenizer, rows: Sequence[Sequence[int]], emb_id: int) -> RationaleBatch:
    """Generated token rows (any engine) cut at their first `<emb>`, decoded."""
    result = RationaleBatch()
    for row in rows:
        row = list(row)
        stop = row.index(emb_id) if emb_id in row else None
        kept = row if stop is None else row[:stop]
        # Special tokens (image pads, chat markers) cannot be re-fed as plain text, so they are dropped.
        result.texts.append(tokenizer.decode(kept, skip_special_tokens=True))
        result.num_tokens.append(len(kept))
        result.hit_budget.append(stop is None)
    return result
