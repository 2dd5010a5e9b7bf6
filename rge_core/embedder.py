"""The RGE embedding API: a trained model as an embedder of plain items, with the eval's decoding, image bounds
and rewrite rules. The eval stage encodes through it too (rge_core/evaluation/encode.py), so what it scores is
what this returns.

    from rge_core import Embedder

    embedder = Embedder.load("model-3f2a9c01b7de")   # a model artifact id or folder, or a checkpoint folder
    q, rationales = embedder.encode_queries([{"text": "What is shown?", "image": "cat.jpg"}], return_rationales=True)
    c = embedder.encode_candidates([{"text": "a cat"}, {"text": "a dog"}])
    scores = q @ c.T                                # vectors are L2-normalised float32

Queries reason first (greedy, up to max_new_tokens, stopping at `<emb>`) unless `reasoning=False`; candidates
never do. Items are batched by prompt length (`sort_by_length`); each item's vector is the same, up to float
rounding, whatever else is in its batch. See docs/inference.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np

from rge_core.config.schema import Config, DecodingConfig, EvalConfig, greedy_decoding
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.embedding.items import Item, as_queries, as_targets
from rge_core.embedding.locate import locate_model

if TYPE_CHECKING:
    from rge_core.model.generation import RationaleBatch
    from rge_core.model.inputs import Query
    from rge_core.model.rge_model import RGEModel


@dataclass(frozen=True)
class EmbedSettings:
    """How items are encoded: the eval.* settings of the same names (rge_core/config/schema.py)."""

    decoding: DecodingConfig = field(default_factory=greedy_decoding)
    batch_size: int = EvalConfig.batch_size
    sort_by_length: bool = EvalConfig.sort_by_length
    on_budget_hit: str = EvalConfig.on_budget_hit

    @classmethod
    def of(cls, ev: EvalConfig) -> EmbedSettings:
        return cls(ev.decoding, ev.batch_size, ev.sort_by_length, ev.on_budget_hit)


@dataclass(frozen=True)
class Rationale:
    text: str  # what the query generated before `<emb>` ("" without reasoning)
    budget_hit: bool  # no `<emb>` within max_new_tokens (on_budget_hit says where the query was embedded)
    num_tokens: int  # generated tokens before `<emb>`


class RationaleEngine(Protocol):
    """Generates the rationales of a list of queries (transformers' generate, or a vLLM engine)."""

    def __call__(self, queries: Sequence[Query]) -> RationaleBatch: ...


EngineFactory = Callable[["RGEModel", EmbedSettings], RationaleEngine]


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments that were given (not None), nested sections alike."""
    out = {}
    for key, value in values.items():
        value = _given(value) if isinstance(value, dict) else value
        if value not in (None, {}):
            out[key] = value
    return out


class Embedder:
    def __init__(
        self,
        rge: RGEModel,
        settings: EmbedSettings | None = None,
        engine: EngineFactory | None = None,
        query_rewrites: RewriteFile | None = None,
        candidate_rewrites: RewriteFile | None = None,
    ) -> None:
        """`engine` builds the rationale engine on first use (default: transformers' batched generate)."""
        self.rge = rge
        self.settings = settings or EmbedSettings()
        self._engine_factory = engine
        self._engine: RationaleEngine | None = None
        self.query_rewrites = query_rewrites
        self.candidate_rewrites = candidate_rewrites

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        attn_implementation: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_new_tokens: int | None = None,
        repetition_penalty: float | None = None,
        on_budget_hit: str | None = None,
        batch_size: int | None = None,
        sort_by_length: bool | None = None,
        query_rewrites: str | None = None,
        candidate_rewrites: str | None = None,
        engine: str | None = None,
        root: str | None = None,
    ) -> Embedder:
        """Load `model`: a model artifact id (under `root`, default $RGE_ARTIFACTS, else ./rge-artifacts), a model
        artifact folder or a checkpoint folder. The keywords are the model.* and eval.* settings of the same
        names; None keeps the setting's default (rge_core/config/schema.py). A bad value fails in one line
        naming it, before the model loads."""
        from rge_core.config.loader import from_dict

        given: dict[str, dict[str, Any]] = {
            "model": {
                "device": device,
                "dtype": dtype,
                "attn_implementation": attn_implementation,
                "min_pixels": min_pixels,
                "max_pixels": max_pixels,
            },
            "eval": {
                "decoding": {"max_new_tokens": max_new_tokens, "repetition_penalty": repetition_penalty},
                "on_budget_hit": on_budget_hit,
                "batch_size": batch_size,
                "sort_by_length": sort_by_length,
                "query_rewrites": query_rewrites,
                "candidate_rewrites": candidate_rewrites,
                "engine": engine,
            },
        }
        chosen = {section: _given(values) for section, values in given.items()}
        config = from_dict(Config, {**chosen, "run": {"artifacts_root": root or ""}}, "Embedder.load")
        return cls.from_config(config, model)

    @classmethod
    def from_config(cls, config: Config, model: str | Path) -> Embedder:
        """`model` loaded with the config's model.* placement and image bounds and its eval.* decoding, batching,
        rewrite files and rationale engine (the eval stage and `rge embed` load it this way)."""
        from rge_core.model.placement import placement_of
        from rge_core.model.processor import image_size_kwargs
        from rge_core.model.rge_model import RGEModel  # heavy: transformers

        m, ev = config.model, config.eval
        image_size_kwargs(m.min_pixels, m.max_pixels)
        placement = placement_of(m)  # every bad setting fails before anything is read
        query_rewrites = load_rewrites(ev.query_rewrites, "eval.query_rewrites")
        candidate_rewrites = load_rewrites(ev.candidate_rewrites, "eval.candidate_rewrites")
        folder = locate_model(model, config.run.artifacts_root or None).folder
        rge = RGEModel.load(str(folder), placement, m.min_pixels, m.max_pixels)

        def vllm_engine(rge: RGEModel, settings: EmbedSettings) -> RationaleEngine:
            from rge_core.generation.vllm_rationales import VLLMRationales  # heavy: vLLM

            bounds = (m.min_pixels, m.max_pixels)
            return VLLMRationales(rge, str(folder), ev.vllm, *bounds, settings.decoding, settings.batch_size)

        engine = vllm_engine if ev.engine == "vllm" else None
        return cls(rge, EmbedSettings.of(ev), engine, query_rewrites, candidate_rewrites)

    # ---- encoding ------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Length of every vector."""
        return int(self.rge.model.config.get_text_config().hidden_size)

    @overload
    def encode_queries(
        self,
        items: Sequence[Item],
        reasoning: bool = True,
        return_rationales: Literal[False] = False,
        *,
        rationales: Sequence[Rationale] | None = None,
    ) -> np.ndarray: ...
    @overload
    def encode_queries(
        self,
        items: Sequence[Item],
        reasoning: bool = True,
        *,
        return_rationales: Literal[True],
        rationales: Sequence[Rationale] | None = None,
    ) -> tuple[np.ndarray, list[Rationale]]: ...
    def encode_queries(
        self,
        items: Sequence[Item],
        reasoning: bool = True,
        return_rationales: bool = False,
        *,
        rationales: Sequence[Rationale] | None = None,
    ) -> np.ndarray | tuple[np.ndarray, list[Rationale]]:
        """[len(items), dim] L2-normalised float32 vectors, each embedded at `<emb>` after the query's rationale
        (greedy; a rationale that reaches max_new_tokens is flagged `budget_hit` and embedded as on_budget_hit
        says: `<emb>` appended, or at its last token). With `return_rationales`, also each query's Rationale.
        `rationales` (one per item): embed each query after that rationale instead of generating one (another
        query's, an oracle's: the eval's eval.rationales shuffled and given); its budget flag counts as above."""
        import torch

        queries = as_queries(items, self.query_rewrites)
        n = len(queries)
        if rationales is not None and len(rationales) != n:
            raise ValueError(f"rationales: {len(rationales)} given for {n} queries")
        texts: list[str | None]
        with torch.inference_mode():
            if rationales is not None:
                chosen, texts = list(rationales), [r.text for r in rationales]
            elif reasoning and queries:
                generated = self._rationales(queries)
                texts = list(generated.texts)
                chosen = [
                    Rationale(text, hit, tokens)
                    for text, hit, tokens in zip(
                        generated.texts, generated.budget_hit, generated.num_tokens, strict=True
                    )
                ]
            else:
                texts, chosen = [None] * n, [Rationale("", False, 0)] * n
            # on_budget_hit last-token: a rationale that never reached <emb> is embedded at its own last token.
            last_token = self.settings.on_budget_hit == "last-token"
            emb = [not (last_token and r.budget_hit) for r in chosen]
            prompts = [self.rge.query_prompt(q, r, e) for q, r, e in zip(queries, texts, emb, strict=True)]
            vectors = self._embed(prompts, [q.image for q in queries], last_token_without_emb=last_token)
        return (vectors, chosen) if return_rationales else vectors

    def encode_candidates(self, items: Sequence[Item]) -> np.ndarray:
        """[len(items), dim] L2-normalised float32 vectors, each embedded at `<emb>` right after the item."""
        import torch

        targets = as_targets(items, self.candidate_rewrites)
        with torch.inference_mode():
            return self._embed([self.rge.target_prompt(t) for t in targets], [t.image for t in targets])

    def _embed(self, prompts: list[str], images: list[Any], last_token_without_emb: bool = False) -> np.ndarray:
        import torch

        from rge_core.model.batching import in_batches, prompt_lengths

        if not prompts:
            return np.zeros((0, self.dim), np.float32)
        lengths = prompt_lengths(self.rge, prompts, images) if self.settings.sort_by_length else None

        def run(batch: list[tuple[str, Any]]):
            prompts, images = [p for p, _ in batch], [i for _, i in batch]
            return (
                self.rge.embed_prompts(prompts, images, last_token_without_emb=last_token_without_emb).cpu().unbind(0)
            )

        rows = in_batches(list(zip(prompts, images, strict=True)), self.settings.batch_size, run, lengths)
        return torch.stack(rows).numpy().astype(np.float32)

    # ---- rationales ----------------------------------------------------------------------------------------
    def _rationales(self, queries: Sequence[Query]) -> RationaleBatch:
        if self._engine is None:
            factory = self._engine_factory or TransformersRationales
            self._engine = factory(self.rge, self.settings)
        return self._engine(queries)

    def close(self) -> None:
        """Shut the rationale engine down (a vLLM engine holds its memory until then)."""
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()
        self._engine = None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TransformersRationales:
    """Rationales from the model's own batched, KV-cached generate, in batches of similar prompt length."""

    def __init__(self, rge: RGEModel, settings: EmbedSettings) -> None:
        self.rge, self.settings = rge, settings

    def __call__(self, queries: Sequence[Query]) -> RationaleBatch:
        from rge_core.model.batching import in_batches, prompt_lengths
        from rge_core.model.generation import RationaleBatch

        rge, settings = self.rge, self.settings
        lengths = None
        if settings.sort_by_length:
            lengths = prompt_lengths(rge, [rge.generation_prompt(q) for q in queries], [q.image for q in queries])

        def run(batch: list[Query]):
            decoding = settings.decoding  # a sampled eval (temperature > 0) is seeded: the same run, the same texts
            seed = None if decoding.knobs.greedy else decoding.seed
            out = rge.generate_rationales(batch, decoding.max_new_tokens, decoding.knobs, seed)
            return zip(out.texts, out.num_tokens, out.budget_hit, strict=True)

        rows = in_batches(list(queries), settings.batch_size, run, lengths)
        return RationaleBatch([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
