"""Eval query rationales from a vLLM engine (eval.engine: vllm); the embedding forward stays in transformers.

Each process owns one engine on the evaluated checkpoint. Requests and decoding are those of
rge_core/generation/rationale_requests.py (greedy, with eval's repetition penalty); the token ids are cut and
decoded exactly as the transformers path does (`rationales_from_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rge_core.config.schema import Config
from rge_core.embedder import EmbedSettings
from rge_core.generation.rationale_requests import rationale_params, rationale_prompt
from rge_core.model.generation import RationaleBatch, rationales_from_tokens
from rge_core.model.inputs import Query
from rge_core.model.rge_model import RGEModel


class VLLMRationales:
    """An engine on `model_dir` (the checkpoint `rge` was loaded from) with config's eval.vllm_* settings
    and image bounds; called with a chunk's queries."""

    def __init__(self, model_dir: str, config: Config, rge: RGEModel, settings: EmbedSettings):
        from rge_core.generation.vllm_engine import VLLMGenerator

        model, ev = config.model, config.eval
        self.rge = rge
        self.engine = VLLMGenerator(
            model_dir,
            max_model_len=ev.vllm_max_model_len,
            dtype=str(rge.model.dtype).removeprefix("torch."),  # the embedder's dtype
            limit_images=1,
            min_pixels=model.min_pixels,
            max_pixels=model.max_pixels,
            gpu_memory_utilization=ev.vllm_gpu_memory_utilization,
        )
        self.params = rationale_params(settings.decoding, settings.max_new_tokens, rge.emb.token_id)

    def __call__(self, queries: Sequence[Query]) -> RationaleBatch:
        outputs = self.engine.llm.generate(
            [rationale_prompt(self.rge, q) for q in queries], self.params, use_tqdm=False
        )
        rows = [output.outputs[0].token_ids for output in outputs]  # in input order
        return rationales_from_tokens(self.rge.tokenizer, rows, self.rge.emb.token_id)

    def close(self) -> None:
        self.engine.close()
