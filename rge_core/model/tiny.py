"""Tiny random multimodal models built from the real transformers Qwen-VL classes.

`rge tiny-model OUT --arch qwen2-vl --seed 0` writes a complete checkpoint folder (config, safetensors,
tokenizer with the Qwen special tokens and `<emb>`, chat template, image processor) that loads in
transformers and in vLLM exactly like `Qwen/Qwen2-VL-2B-Instruct` does, so swapping in the real model is
a config change. Same seed, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

from rge_core.model.limits import TINY_MAX_POSITIONS
from rge_core.model.special_tokens import EMB_TOKEN
from rge_core.model.tokenizer_build import train_tokenizer

# 128-wide, 2 heads: head_dim 64 is the smallest vLLM's CPU attention backend accepts.
_TEXT = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    max_position_embeddings=TINY_MAX_POSITIONS,
    # mrope sections (temporal, height, width) must add up to head_dim / 2.
    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [8, 12, 12]},
)
_QWEN2_VL_VISION = dict(depth=1, embed_dim=64, hidden_size=128, num_heads=2, mlp_ratio=2)
_QWEN2_5_VL_VISION = dict(
    depth=2,
    hidden_size=64,
    intermediate_size=128,
    num_heads=2,
    out_hidden_size=128,
    window_size=56,
    fullatt_block_indexes=[1],
)
# A 64x64 image becomes 56x56 pixels -> 4x4 patches of 14 -> 4 tokens after the 2x2 merge.
_MIN_PIXELS = 28 * 28
_MAX_PIXELS = 112 * 112


# From Qwen/Qwen2.5-VL-3B-Instruct's generation_config.json.
QWEN_GENERATION_DEFAULTS = {"do_sample": True, "top_k": 1, "repetition_penalty": 1.05}


@dataclass(frozen=True)
class TinyArch:
    config_class: type
    model_class: type
    vision: dict[str, Any]


ARCHS: dict[str, TinyArch] = {
    "qwen2-vl": TinyArch(Qwen2VLConfig, Qwen2VLForConditionalGeneration, _QWEN2_VL_VISION),
    "qwen2.5-vl": TinyArch(Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, _QWEN2_5_VL_VISION),
}


def chat_template() -> str:
    return resources.files("rge_core.model.assets").joinpath("chat_template.jinja").read_text("utf-8")


def build_processor() -> Qwen2VLProcessor:
    tokenizer = train_tokenizer()
    pixel_bounds = {"shortest_edge": _MIN_PIXELS, "longest_edge": _MAX_PIXELS}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixel_bounds),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=pixel_bounds),
        chat_template=chat_template(),
    )


def build_config(arch: str, tokenizer) -> Any:
    spec = ARCHS[arch]
    ids = tokenizer.convert_tokens_to_ids
    return spec.config_class(
        text_config=dict(
            _TEXT,
            vocab_size=len(tokenizer),
            bos_token_id=None,
            eos_token_id=ids(tokenizer.eos_token),
            pad_token_id=ids(tokenizer.pad_token),
        ),
        vision_config=dict(spec.vision),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def write_tiny_model(out: Path, arch: str = "qwen2-vl", seed: int = 0) -> Path:
    """Write a tiny random checkpoint of `arch` to `out` (created); returns `out`."""
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny arch {arch!r}; choose one of {sorted(ARCHS)}")
    processor = build_processor()
    config = build_config(arch, processor.tokenizer)
    if processor.tokenizer.convert_tokens_to_ids(EMB_TOKEN) >= config.text_config.vocab_size:
        raise RuntimeError(f"the tiny tokenizer's {EMB_TOKEN} id lies outside the {arch} vocabulary")
    torch.manual_seed(seed)
    model = ARCHS[arch].model_class(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    # Qwen2.5-VL-Instruct's shipped decoding defaults: whatever leaves a knob unset decodes greedily with a
    # repetition penalty, on the tiny model as on the real one (every generate call must set them all).
    model.generation_config.update(**QWEN_GENERATION_DEFAULTS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
