"""Decoding settings for transformers' `generate`, every knob explicit.

`generate` fills any knob its caller leaves unset from the checkpoint's generation_config.json, then from
its own defaults (top_k=50). Qwen2.5-VL ships `top_k=1` and `repetition_penalty=1.05`, so a call that
passes only a temperature silently decodes greedily with a repetition penalty. Every caller that
generates goes through `generate_kwargs`, which sets all of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoding:
    temperature: float = 0.0  # 0 (or below): greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


GREEDY = Decoding()


def generate_kwargs(decoding: Decoding) -> dict:
    """do_sample, temperature, top_p, top_k and repetition_penalty for `model.generate`. Greedy decoding
    passes transformers' own defaults as sampling values: greedy ignores them, leaving them unset would let
    the checkpoint's values through, and any other value draws a "flags are not valid" warning. The
    repetition penalty applies in both modes."""
    if decoding.greedy:
        sampling = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50}
    else:
        sampling = {
            "do_sample": True,
            "temperature": decoding.temperature,
            "top_p": decoding.top_p,
            "top_k": decoding.top_k,
        }
    return {**sampling, "repetition_penalty": decoding.repetition_penalty}
