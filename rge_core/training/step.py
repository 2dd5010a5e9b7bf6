"""One RGE training step on one process's batch (method in TrainConfig.method):

- rge: LM loss on query + ORACLE rationale + `<emb>` (teacher forcing, prompt masked); the model then
  samples its own rationales (batched, KV-cached, no grad) and the query embedding comes from
  query + SELF-GENERATED rationale + `<emb>`; InfoNCE against target (+ hard negative) embeddings.
- baseline: no rationale anywhere; query + `<emb>`, contrastive loss only (the non-reasoning baseline).
- oracle-embed: embeds the ORACLE rationale. It leaks the target into the query; kept only for the
  leakage diagnostic.
- lm: the LM loss on the oracle rationales alone, no embedding: a warm start that teaches a model to write
  rationales before a contrastive run starts from it (experiments/claims.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from rge_core.config.schema import DecodingConfig, TrainConfig
from rge_core.model.generation import RationaleBatch
from rge_core.model.inputs import Query, assistant_suffix
from rge_core.model.rge_model import RGEModel
from rge_core.training.data import Example
from rge_core.training.grad_cache import grad_cache_step
from rge_core.training.losses import info_nce, lm_labels, lm_loss

METHODS = ("rge", "baseline", "oracle-embed", "lm")


@dataclass
class StepOutput:
    loss: float
    lm_loss: float
    emb_loss: float
    accuracy: float
    generated_tokens: int = 0
    budget_hits: int = 0  # on-the-fly rationales that ran out of budget before `<emb>`
    seconds: dict[str, float] = field(default_factory=dict)
    rationales: RationaleBatch | None = None  # what the model sampled for the batch's queries (rge)


def query_rationales(method: str, examples: Sequence[Example], generated: RationaleBatch | None) -> list[str | None]:
    """What stands between each query and its `<emb>` in the contrastive forward."""
    if method == "rge":
        if generated is None:
            raise ValueError("train.method rge embeds the rationales the model sampled: none were generated")
        return list(generated.texts)  # never the oracle: it would leak the target into the query
    if method == "oracle-embed":
        return [example.rationale for example in examples]
    return [None] * len(examples)


def lm_batch(rge: RGEModel, examples: Sequence[Example]):
    """Query + oracle rationale + `<emb>`, right-padded, with labels on the rationale and `<emb>` only."""
    prompts = [rge.query_prompt(e.query, e.rationale) for e in examples]
    batch = rge.tokenize(prompts, [e.query.image for e in examples], padding_side="right")
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    starts = []
    for row, example in enumerate(examples):
        suffix = rge.tokenizer(assistant_suffix(example.rationale), add_special_tokens=False)["input_ids"]
        start = lengths[row] - len(suffix)
        # The chat template ends the prompt with a newline, a pre-token boundary, so the completion
        # tokenizes the same alone and in context; check rather than trust it.
        if batch["input_ids"][row, start : lengths[row]].tolist() != suffix:
            raise ValueError(f"{example.pair_id}: the rationale tokenizes differently inside the prompt")
        starts.append(start)
    starts += lengths[len(examples) :]  # a dummy image row (ZeRO-3, see RGEModel.tokenize) has no labels
    labels = lm_labels(
        batch["input_ids"], batch["attention_mask"], torch.tensor(starts, device=batch["input_ids"].device)
    )
    return batch, labels


class RationaleSource(Protocol):
    """Where a step's on-the-fly rationales come from (train.rationale_engine)."""

    def sync(self) -> None:
        """Bring the generator up to the trained weights, where it holds a copy of its own."""

    def __call__(self, queries: Sequence[Query], decoding: DecodingConfig, seed: int) -> RationaleBatch: ...


class HFRationales:
    """train.rationale_engine hf: the trained model itself, in eval mode (no dropout), under
    `generation_context` (under ZeRO-3 one gather of every parameter for the whole generation)."""

    def __init__(
        self,
        rge: RGEModel,
        generation_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.rge, self.generation_context = rge, generation_context

    def sync(self) -> None:
        pass  # generates with the trained weights themselves

    def __call__(self, queries: Sequence[Query], decoding: DecodingConfig, seed: int) -> RationaleBatch:
        self.rge.model.eval()
        try:
            with self.generation_context():
                return self.rge.generate_rationales(queries, decoding.max_new_tokens, decoding.knobs, seed=seed)
        finally:
            self.rge.model.train()


class RGEStep:
    def __init__(
        self,
        rge: RGEModel,
        train: TrainConfig,
        backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward(),
        generation_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        reduction_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        rationales: RationaleSource | None = None,
    ):
        """`backward` and `reduction_context` are the DeepSpeed engine's `backward` and
        `coalesce_grad_reduction` in training: with gradient caching one step calls backward several
        times, and ZeRO must reduce their sum, not just the last call's gradients. `rationales` samples the
        rge method's rationales (default: the trained model, under `generation_context`)."""
        if train.method not in METHODS:
            raise ValueError(f"train.method: {train.method!r} is not one of {METHODS}")
        self.rge, self.train, self.backward = rge, train, backward
        self.reduction_context = reduction_context
        self.rationales = rationales or HFRationales(rge, generation_context)

    def _generate(self, examples: Sequence[Example], seed: int, seconds: dict[str, float]) -> RationaleBatch:
        clock = time.perf_counter()
        self.rationales.sync()
        seconds["weight_sync"] = time.perf_counter() - clock
        clock = time.perf_counter()
        generated = self.rationales([e.query for e in examples], self.train.decoding, seed)
        seconds["generation"] = time.perf_counter() - clock
        return generated

    def _encoders(self, examples: Sequence[Example], rationales: list[str | None]):
        """Embedding functions over slices of the batch, and which pairs bring a hard negative. A slice's
        targets come as [its positives; the hard negatives of its pairs that have one], so a chunk keeps a
        pair's target and negative together and no placeholder negative is embedded."""
        has_negative = [self.train.hard_negatives and e.negative is not None for e in examples]

        def queries(part: slice) -> torch.Tensor:
            return self.rge.embed_queries([e.query for e in examples[part]], rationales[part])

        def targets(part: slice) -> torch.Tensor:
            chosen = examples[part]
            negatives = [
                n for e, has in zip(chosen, has_negative[part], strict=True) if has and (n := e.negative) is not None
            ]
            return self.rge.embed_targets([e.positive for e in chosen] + negatives)

        return queries, targets, has_negative

    def _contrastive_loss(
        self, queries: torch.Tensor, targets: torch.Tensor, parts: list[slice], has_negative: list[bool]
    ):
        """InfoNCE over the concatenated target outputs of `_encoders` for `parts`. With train.hard_negatives
        the negatives go in as a [B, D] block with a mask (zero rows for pairs without one) whatever this
        batch holds: every rank must make the same gathers, with the same shapes."""
        positives, negatives, offset = [], [], 0
        for part in parts:
            rows, count = part.stop - part.start, sum(has_negative[part])
            positives.append(targets[offset : offset + rows])
            negatives.append(targets[offset + rows : offset + rows + count])
            offset += rows + count
        positive = torch.cat(positives)
        if not self.train.hard_negatives:
            return info_nce(queries, positive, self.train.temperature)
        mask = torch.tensor(has_negative, device=positive.device)
        block = positive.new_zeros(positive.shape).index_copy(0, mask.nonzero().flatten(), torch.cat(negatives))
        return info_nce(queries, positive, self.train.temperature, hard_negatives=block, negative_mask=mask)

    def _lm_only(self, lm: torch.Tensor, seconds: dict[str, float]) -> StepOutput:
        seconds["embed_forward"] = 0.0
        clock = time.perf_counter()
        self.backward(self.train.w_lm * lm)
        seconds["backward"] = time.perf_counter() - clock
        value = float(lm.detach())
        # No embedding is trained: its loss and in-batch accuracy are reported as 0.
        return StepOutput(loss=self.train.w_lm * value, lm_loss=value, emb_loss=0.0, accuracy=0.0, seconds=seconds)

    def __call__(self, examples: Sequence[Example], seed: int) -> StepOutput:
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        lm = torch.zeros(())
        w_lm = 0.0 if self.train.method == "baseline" else self.train.w_lm
        if w_lm:
            batch, labels = lm_batch(self.rge, examples)
            lm = lm_loss(self.rge.model(**batch).logits, labels)
        seconds["lm_forward"] = time.perf_counter() - clock
        seconds["weight_sync"] = seconds["generation"] = 0.0
        if self.train.method == "lm":
            return self._lm_only(lm, seconds)
        generated = self._generate(examples, seed, seconds) if self.train.method == "rge" else None
        encode_queries, encode_targets, has_negative = self._encoders(
            examples, query_rationales(self.train.method, examples, generated)
        )
        size, chunk = len(examples), self.train.grad_cache_chunk
        stats: dict = {}
        clock = time.perf_counter()
        if chunk <= 0:
            whole = slice(0, size)
            emb, stats = self._contrastive_loss(encode_queries(whole), encode_targets(whole), [whole], has_negative)
            seconds["embed_forward"] = time.perf_counter() - clock
            clock = time.perf_counter()
            loss = w_lm * lm + self.train.w_emb * emb
            self.backward(loss)
        else:
            # Gradient caching: the LM loss and every replayed chunk backward inside one reduction.
            parts = [
                slice(start, min(start + chunk, size)) for start in range(0, size, chunk)
            ]  # as grad_cache_step cuts

            def loss_fn(queries: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
                value, found = self._contrastive_loss(queries, targets, parts, has_negative)
                stats.update(found)
                return value

            def weighted_backward(surrogate: torch.Tensor) -> None:
                self.backward(self.train.w_emb * surrogate)

            with self.reduction_context():
                if w_lm:
                    self.backward(w_lm * lm)
                emb = grad_cache_step(encode_queries, encode_targets, size, chunk, loss_fn, backward=weighted_backward)
            loss = w_lm * lm.detach() + self.train.w_emb * emb
            seconds["embed_forward"] = 0.0  # forwards and backward interleave here; all counted as backward
        seconds["backward"] = time.perf_counter() - clock
        return StepOutput(
            loss=float(loss.detach()),
            lm_loss=float(lm.detach()),
            emb_loss=float(emb.detach()),
            accuracy=float(stats["accuracy"]),
            generated_tokens=sum(generated.num_tokens) if generated else 0,
            budget_hits=generated.budget_hits if generated else 0,
            seconds=seconds,
            rationales=generated,
        )
