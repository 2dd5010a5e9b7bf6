"""Merged weights for the colocated vLLM engine (rge_core/training/weight_sync.py), against PEFT's own in-place
merge of a copy: LoRA and DoRA, every name, full and partial syncs, base weights never written, and ZeRO-3's
gather entered one module at a time."""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import pytest
import torch
from transformers import AutoModelForImageTextToText

from rge_core.config.schema import LoraConfig, TrainConfig
from rge_core.training.setup import apply_peft
from rge_core.training.weight_sync import merged_weights

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def adapted(tiny_model_dir, dora: bool, dtype=torch.float32):
    """The tiny model with LoRA/DoRA whose adapters are far from their zero start (as after training)."""
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=dtype)
    train = dataclasses.replace(TrainConfig(), lora=LoraConfig(rank=4, alpha=16, dropout=0.0, use_dora=dora))
    torch.manual_seed(0)
    model = apply_peft(model, train)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


@pytest.mark.parametrize("dora", [False, True], ids=["lora", "dora"])
def test_full_sync_is_peft_merge_of_a_copy(tiny_model_dir, dora):
    model = adapted(tiny_model_dir, dora)
    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    ours = dict(merged_weights(model, full=True))
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    assert ours.keys() == expected.keys() - tied
    changed = 0
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-6, atol=1e-6)
        changed += any(f".{t}." in name for t in TARGETS) and name.endswith("weight")
    assert changed == sum(1 for name in ours if name.endswith("proj.weight") and "language_model" in name) > 0


@pytest.mark.parametrize("dora", [False, True], ids=["lora", "dora"])
def test_partial_sync_sends_the_adapted_layers_only(tiny_model_dir, dora):
    model = adapted(tiny_model_dir, dora)
    full = dict(merged_weights(model, full=True))
    partial = dict(merged_weights(model, full=False))
    layers = {name.removesuffix(".weight") for name in partial if name.endswith(".weight")}
    assert layers and all("language_model" in layer and layer.rsplit(".", 1)[1] in TARGETS for layer in layers)
    # A layer goes whole (weight and bias): vLLM re-processes a fused layer (qkv) only once all of it came.
    assert set(partial) == {n for n in full if n.rsplit(".", 1)[0] in layers}
    assert any(name.endswith(".bias") for name in partial)
    for name, tensor in partial.items():
        assert torch.equal(tensor, full[name])


def test_base_weights_are_never_written_in_bf16(tiny_model_dir):
    model = adapted(tiny_model_dir, dora=False, dtype=torch.bfloat16)
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    for _ in range(3):
        sent = dict(merged_weights(model, full=False))
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if n in base)
    assert all(t.dtype == torch.bfloat16 for t in sent.values())
    # What out of place avoids: PEFT's merge then unmerge in place does not give the bf16 base back.
    layer = model.get_submodule("base_model.model.model.language_model.layers.0.self_attn.q_proj")
    before = layer.get_base_layer().weight.detach().clone()
    layer.merge()
    layer.unmerge()
    assert not torch.equal(layer.get_base_layer().weight, before)


def test_without_adapters_a_partial_sync_sends_what_trains(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    for name, param in model.named_parameters():
        param.requires_grad_("visual" not in name)
    partial = dict(merged_weights(model, full=False))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(partial) == trainable and len(partial) < len(dict(merged_weights(model, full=True)))


def test_zero3_gather_holds_one_module_at_a_time(tiny_model_dir):
    model = adapted(tiny_model_dir, dora=True)
    open_gathers, calls = [], []

    @contextlib.contextmanager
    def gather(params):
        open_gathers.append(params)
        calls.append({id(p) for p in params})
        assert len(open_gathers) == 1, "two modules gathered at once"
        yield
        open_gathers.pop()

    sent = dict(merged_weights(model, full=True, gather=gather))
    q_proj = model.get_submodule("base_model.model.model.language_model.layers.0.self_attn.q_proj")
    assert {id(p) for p in q_proj.parameters()} in calls  # base weight, bias, lora_A/B and magnitude at once
    assert len(sent) >= len(calls) > 0 and not open_gathers
