"""transformers generator: batched, KV-cached `model.generate` with left padding.

    generator = TransformersGenerator("path/to/checkpoint", resolve_placement("auto", "auto"), batch_size=16)
    results = generator.generate(requests, DecodingConfig(temperature=0.0, max_new_tokens=128))

For CPU machines without vLLM and as a reference for the vLLM engine (same prompts, see chat.py).
Two differences from vLLM, by design:
  * Seeds: torch samples a whole batch from one generator, so each batch is seeded once with a value derived
    from its requests' seeds. Sampled texts are reproducible for the same requests in the same batches, but
    change with batch composition (vLLM seeds each request on its own). Greedy output (temperature 0) does
    not depend on batching. The caller's global RNG state is left untouched.
  * Structured output: transformers has no regex-constrained decoding. A requested regex is ignored with a
    UserWarning; the curation stage validates every text against the prompt set's format anyway, so
    unconstrained texts that miss it are rejected (and retried) there, not silently accepted.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence

import torch
from transformers import AutoModelForImageTextToText

from rge_core.config.schema import DecodingConfig
from rge_core.generation.base import GenerationRequest, GenerationResult
from rge_core.generation.chat import load_chat_processor, render_prompt
from rge_core.model.generation import Continuation, generate_continuations
from rge_core.model.placement import Placement, resolve_placement
from rge_core.model.rge_model import load_location


def batch_seed(seeds: Sequence[int]) -> int:
    """One torch seed for a batch, a stable function of its request seeds (in order)."""
    digest = hashlib.blake2b(",".join(map(str, seeds)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**63


class TransformersGenerator:
    def __init__(
        self,
        model: str,
        placement: Placement | None = None,
        batch_size: int = 16,
        min_pixels: int = 0,
        max_pixels: int = 0,
    ):
        self.name = str(model)
        self.batch_size = batch_size
        placement = placement or resolve_placement()
        self.device = placement.device
        self.processor, self.chat_template = load_chat_processor(self.name, min_pixels, max_pixels)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"  # generated tokens must follow every prompt directly
        self.eos_id = self.tokenizer.eos_token_id  # `<|im_end|>` on Qwen chat checkpoints: end of the turn
        self.model = AutoModelForImageTextToText.from_pretrained(
            self.name,
            dtype=placement.dtype,
            attn_implementation=placement.attn_implementation,
            **load_location(placement.device),
        ).eval()

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: DecodingConfig, regex: str | None = None
    ) -> list[GenerationResult]:
        if regex is not None:
            warnings.warn(
                "TransformersGenerator cannot constrain decoding to a regex; generating unconstrained "
                "(use the vllm generator for structured output)",
                UserWarning,
                stacklevel=2,
            )
        results: list[GenerationResult] = []
        for start in range(0, len(requests), self.batch_size):
            results.extend(self._generate_batch(requests[start : start + self.batch_size], sampling))
        return results

    @torch.inference_mode()
    def _generate_batch(self, batch: Sequence[GenerationRequest], sampling: DecodingConfig) -> list[GenerationResult]:
        rendered = [render_prompt(self.processor, self.chat_template, r.parts, r.system) for r in batch]
        images = [image for _, request_images in rendered for image in request_images]
        inputs = self.processor(
            text=[prompt for prompt, _ in rendered],
            images=images or None,
            padding=True,
            return_tensors="pt",
            return_mm_token_type_ids=True,  # the transformers 5 Qwen-VL forward needs it with images
        ).to(self.device)
        continuations = generate_continuations(
            self.model,
            inputs,
            sampling.max_new_tokens,
            self.eos_id,
            self.tokenizer.pad_token_id,
            sampling.knobs,  # every knob explicit: same distribution as vLLM's SamplingParams
            seed=batch_seed([r.seed for r in batch]),
        )
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        return [
            self._result(request, continuation, n)
            for request, continuation, n in zip(batch, continuations, prompt_tokens, strict=True)
        ]

    def _result(self, request: GenerationRequest, continuation: Continuation, prompt_tokens: int) -> GenerationResult:
        return GenerationResult(
            request_id=request.request_id,
            text=self.tokenizer.decode(continuation.tokens, skip_special_tokens=True),
            num_tokens=len(continuation.tokens) + int(continuation.stopped),  # the end-of-turn token counts
            finish_reason="stop" if continuation.stopped else "length",
            prompt_tokens=prompt_tokens,
        )

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
