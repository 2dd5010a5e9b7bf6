"""Batched, KV-cached generation with transformers, shared by the model core (rationales that stop at `<emb>`)
and the transformers curation generator (texts that stop at the end of the turn).

Every row is cut at its first stop token and flagged when it never came (the budget ran out). A query whose
rationale hits the budget before `<emb>` is flagged (`budget_hit`) and its text is what was generated; the
caller then embeds `text + <emb>` — the `<emb>` is appended explicitly and counted, never silently replaced by
whatever token happened to come last.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from rge_core.model.decoding import Decoding, generate_kwargs


@dataclass(frozen=True)
class Continuation:
    tokens: list[int]  # generated tokens before the first stop token
    stopped: bool  # the stop token came within the budget


def cut_at_stop(row: Sequence[int], stop_id: int) -> Continuation:
    """A generated row up to its first `stop_id`; rows that stopped early are padded after it."""
    row = list(row)
    if stop_id in row:
        return Continuation(row[: row.index(stop_id)], True)
    return Continuation(row, False)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators for the block (nothing when `seed` is None), leaving the caller's RNG state as it
    was: torch samples a whole batch from the global generator, and the caller's own draws (dropout, data order)
    must not depend on what was generated."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def generate_continuations(
    model,
    batch: Mapping,
    max_new_tokens: int,
    stop_id: int,
    pad_id: int,
    decoding: Decoding,
    seed: int | None = None,
) -> list[Continuation]:
    """`model.generate` on a left-padded `batch` (every decoding knob explicit), each row's new tokens cut at
    `stop_id`; one continuation per batch row."""
    with seeded(seed, model.device):
        sequences = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_id,
            pad_token_id=pad_id,
            use_cache=True,
            **generate_kwargs(decoding),
        )
    new_tokens = sequences[:, batch["input_ids"].shape[1] :].tolist()
    return [cut_at_stop(row, stop_id) for row in new_tokens]


@dataclass
class RationaleBatch:
    texts: list[str] = field(default_factory=list)
    num_tokens: list[int] = field(default_factory=list)  # generated tokens before `<emb>`
    budget_hit: list[bool] = field(default_factory=list)  # no `<emb>` within max_new_tokens

    @property
    def budget_hits(self) -> int:
        return sum(self.budget_hit)


def decode_rationales(tokenizer, continuations: Sequence[Continuation]) -> RationaleBatch:
    result = RationaleBatch()
    for continuation in continuations:
        # Special tokens (image pads, chat markers) cannot be re-fed as plain text, so they are dropped.
        result.texts.append(tokenizer.decode(continuation.tokens, skip_special_tokens=True))
        result.num_tokens.append(len(continuation.tokens))
        result.budget_hit.append(not continuation.stopped)
    return result


def rationales_from_tokens(tokenizer, rows: Sequence[Sequence[int]], emb_id: int) -> RationaleBatch:
    """Generated token rows (any engine) cut at their first `<emb>`, decoded."""
    return decode_rationales(tokenizer, [cut_at_stop(row, emb_id) for row in rows])
