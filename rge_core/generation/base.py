"""The one interface every rationale generator implements, and the request/result records it trades in.

    generator = build_generator("vllm", model="path/to/Qwen2.5-VL-32B-Instruct")
    results = generator.generate(requests, DecodingConfig(temperature=0.7, max_new_tokens=256), regex=None)
    generator.close()

Results come back in the order of the requests, one per request.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rge_core.config.schema import DecodingConfig

# At most this many images in one request: the curation prompts show a query image and a target image.
MAX_IMAGES = 2


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str  # the pair id
    # Chat content parts, in order: {"type": "text", "text": ...} | {"type": "image", "path": "/abs/file.png"}
    parts: list[dict]
    seed: int  # per-request sampling seed
    system: str | None = None  # optional system prompt (else the chat template's default, if any)


@dataclass(frozen=True)
class GenerationResult:
    request_id: str
    text: str
    num_tokens: int  # generated tokens, the closing end-of-turn token included
    finish_reason: str  # "stop" (end of turn / regex complete) | "length" (max_tokens hit) | "missing" (reference)
    prompt_tokens: int = 0  # the prompt's length in tokens, image tokens included (0 where there is no model)


class Generator(Protocol):
    name: str  # the model folder / id (or reference file), recorded in every rationale row

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: DecodingConfig, regex: str | None = None
    ) -> list[GenerationResult]: ...

    def close(self) -> None: ...


# kind -> (module, class). Imported on use, so a reference run never loads torch or vLLM.
_GENERATORS = {
    "vllm": ("rge_core.generation.vllm_engine", "VLLMGenerator"),
    "transformers": ("rge_core.generation.hf_engine", "TransformersGenerator"),
    "reference": ("rge_core.generation.reference", "ReferenceGenerator"),
}


def build_generator(kind: str, **options: Any) -> Generator:
    """`build_generator("vllm", model=...)`, `("transformers", model=...)`, `("reference", path=...)`;
    options are the class's constructor arguments."""
    if kind not in _GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; choose one of {sorted(_GENERATORS)}")
    module, cls = _GENERATORS[kind]
    return getattr(importlib.import_module(module), cls)(**options)
