"""Decoding obeys our settings, never the checkpoint's generation_config: the tiny model ships Qwen2.5-VL's
`do_sample: true, top_k: 1, repetition_penalty: 1.05`, which a call that leaves a knob unset would inherit."""

from __future__ import annotations

import json

import torch

from rge_core.model.decoding import Decoding, generate_kwargs
from rge_core.model.inputs import Query
from rge_core.model.tiny import QWEN_GENERATION_DEFAULTS

QUERIES = [
    Query("Describe a red circle left of a blue square."),
    Query("How many shapes are there?", instruction="Count."),
]
TOKENS = 12


def test_the_tiny_checkpoint_carries_qwens_decoding_defaults(tiny_model_dir):
    shipped = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert {key: shipped[key] for key in QWEN_GENERATION_DEFAULTS} == QWEN_GENERATION_DEFAULTS


def manual_greedy(rge, query: Query, steps: int) -> list[int]:
    """Independent reference: argmax of full forwards, no cache, no logits processors."""
    ids = rge.tokenize([rge.generation_prompt(query)], [None])["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(steps):
            token = int(rge.model(input_ids=ids).logits[0, -1].argmax())
            if token == rge.emb.token_id:
                break
            out.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def test_greedy_is_plain_argmax_without_the_checkpoints_repetition_penalty(tiny_rge):
    generated = tiny_rge.generate_rationales(QUERIES, TOKENS, Decoding(temperature=0.0))
    for query, text in zip(QUERIES, generated.texts, strict=True):
        expected = tiny_rge.tokenizer.decode(manual_greedy(tiny_rge, query, TOKENS), skip_special_tokens=True)
        assert text == expected


def test_each_knob_changes_what_is_generated(tiny_rge):
    def texts(**knobs):
        return tiny_rge.generate_rationales(QUERIES, TOKENS, Decoding(**knobs), seed=3).texts

    greedy = texts(temperature=0.0)
    assert texts(temperature=1.0) != greedy  # sampling really samples (the checkpoint's top_k=1 would not)
    assert texts(temperature=1.0, top_k=1) == greedy  # top-1 sampling is greedy: top_k reaches generate
    assert texts(temperature=0.0, repetition_penalty=3.0) != greedy


def test_generate_kwargs_set_every_knob():
    for decoding in (Decoding(), Decoding(temperature=0.7, top_p=0.9, top_k=5, repetition_penalty=1.1)):
        kwargs = generate_kwargs(decoding)
        assert set(kwargs) == {"do_sample", "temperature", "top_p", "top_k", "repetition_penalty"}
        assert kwargs["do_sample"] is not decoding.greedy
        assert kwargs["repetition_penalty"] == decoding.repetition_penalty
