"""Validation of one generated rationale. Each rule returns a short reason; the first failing rule wins.

The rules, in order: non-empty; finished (not cut at max_tokens); within the length bounds in characters,
then within the prompt set's token budget (counted with the tokenizer of the model being trained); free
of special tokens (`<emb>`, image/vision markers, chat markers: they would corrupt training sequences);
matching the prompt set's declared format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rge_core.model.special_tokens import EMB_TOKEN, MMEB_IMAGE_PLACEHOLDER, QWEN_SPECIAL_TOKENS

FORBIDDEN_TOKENS = (EMB_TOKEN, MMEB_IMAGE_PLACEHOLDER, "<|endoftext|>", *QWEN_SPECIAL_TOKENS)


@dataclass(frozen=True)
class RationaleRules:
    min_chars: int
    max_chars: int
    output_regex: str
    max_tokens: int | None = None  # the prompt set's budget; None: no token rule
    count_tokens: Callable[[str], int] | None = None  # required with max_tokens

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.count_tokens is None:
            raise ValueError("a token budget needs count_tokens (the tokenizer of the model being trained)")


def token_counter(tokenizer_path: str) -> Callable[[str], int]:
    """Tokens of a text under the tokenizer at `tokenizer_path`, counted as training tokenizes a rationale
    (no special tokens added). Loads the tokenizer only, never the model."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def reject_reason(text: str, finish_reason: str, rules: RationaleRules) -> str:
    """ "" when the rationale is valid, else why not."""
    stripped = text.strip()
    if not stripped:
        return "empty" if finish_reason != "missing" else "missing: no reference rationale for this pair"
    if finish_reason != "stop":
        return f"unfinished: finish_reason={finish_reason}"
    if len(stripped) < rules.min_chars:
        return f"too short: {len(stripped)} chars < {rules.min_chars}"
    if len(stripped) > rules.max_chars:
        return f"too long: {len(stripped)} chars > {rules.max_chars}"
    budget, count = rules.max_tokens, rules.count_tokens  # __post_init__: a budget comes with its counter
    if budget is not None and count is not None and (tokens := count(stripped)) > budget:
        return f"too long: {tokens} tokens > {budget} (prompt set budget)"
    found = [token for token in FORBIDDEN_TOKENS if token in text]
    if found:
        return f"special tokens: {', '.join(found)}"
    if not re.fullmatch(rules.output_regex, stripped):
        return "format: does not match the prompt set's output regex"
    return ""
