"""Offline byte-level BPE tokenizer with Qwen's pre-tokenizer and special tokens.

Nothing can be downloaded here, so tiny models get a small tokenizer trained on a bundled corpus. It is
a real `Qwen2Tokenizer` (same pre-tokenizer regex, byte-level decoder and special tokens as the Qwen2-VL
checkpoints), so code paths that handle it handle the real one.
"""

from __future__ import annotations

import json
from importlib import resources

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from rge_core.model.special_tokens import EMB_TOKEN, QWEN_SPECIAL_TOKENS

BASE_VOCAB_SIZE = 1024


def _corpus_lines() -> list[str]:
    text = resources.files("rge_core.model.assets").joinpath("tokenizer_corpus.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line.strip()]


def train_tokenizer(vocab_size: int = BASE_VOCAB_SIZE) -> Qwen2Tokenizer:
    """Train the BPE merges on the bundled corpus and wrap them in a Qwen2Tokenizer (deterministic)."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus_lines(), trainer)
    learned = json.loads(bpe.to_str())["model"]
    merges = [tuple(pair) if isinstance(pair, list) else tuple(pair.split(" ")) for pair in learned["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=learned["vocab"],
        merges=merges,  # type: ignore[arg-type]  # (a, b) pairs, as the tokenizers library writes them
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [*QWEN_SPECIAL_TOKENS, EMB_TOKEN]})
    return tokenizer
