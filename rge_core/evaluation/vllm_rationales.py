"""Eval query rationales from a vLLM engine (eval.engine: vllm); the embedding forward stays in transformers.

Each process owns one engine on the evaluated checkpoint. Requests are the same chat prompt as the
transformers path (`RGEModel.generation_prompt`) with the image as a PIL image in `multi_modal_data` (never
pre-expanded image token ids, which would misalign Qwen-VL's M-RoPE); decoding is greedy, stops at the
`<emb>` id with `ignore_eos` (else the generation config's end tokens would stop it too), and the token ids
are cut and decoded exactly as the transformers path does (`rationales_from_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rge_core.config.schema import Config
from rge_core.evaluation.encode import EncodeSettings
from rge_core.model.generation import RationaleBatch, rationales_from_tokens
from rge_core.model.inputs import Query, load_image
from rge_core.model.rge_model import RGEModel

if TYPE_CHECKING:
    from vllm.inputs import TextPrompt


class VLLMRationales:
    """An engine on `model_dir` (the checkpoint `rge` was loaded from) with config's eval.vllm_* settings
    and image bounds; called with a chunk's queries."""

    def __init__(self, model_dir: str, config: Config, rge: RGEModel, settings: EncodeSettings):
        from vllm import SamplingParams

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
        self.params = SamplingParams(
            temperature=0.0,
            max_tokens=settings.max_new_tokens,
            repetition_penalty=settings.decoding.repetition_penalty,
            stop_token_ids=[rge.emb.token_id],
            ignore_eos=True,
            skip_special_tokens=True,
        )

    def _request(self, query: Query) -> TextPrompt:
        prompt: TextPrompt = {"prompt": self.rge.generation_prompt(query)}
        if query.image is not None:
            prompt["multi_modal_data"] = {"image": load_image(query.image)}
        return prompt

    def __call__(self, queries: Sequence[Query]) -> RationaleBatch:
        outputs = self.engine.llm.generate([self._request(q) for q in queries], self.params, use_tqdm=False)
        rows = [output.outputs[0].token_ids for output in outputs]  # in input order
        return rationales_from_tokens(self.rge.tokenizer, rows, self.rge.emb.token_id)

    def close(self) -> None:
        self.engine.close()
