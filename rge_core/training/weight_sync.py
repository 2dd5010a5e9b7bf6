"""The trained model's weights for an inference engine, with LoRA/DoRA adapters merged out of place.

`merged_weights(model, full)` yields (name, tensor) pairs in transformers' parameter names (without PEFT's
`base_model.model.` / `.base_layer`), which vLLM's `load_weights` maps to its own (Qwen2-VL:
`model.language_model.` -> `language_model.model.`, `model.visual.` -> `visual.`, q/k/v stacked into qkv).

- An adapted linear layer gives W + s*B@A (LoRA) or m * (W + s*B@A) / ||W + s*B@A||_row (DoRA, PEFT's merge
  formula), computed in float32 into a new tensor and cast to W's dtype. The base weights are never written:
  merging and unmerging in place would drift bf16 base weights a rounding at a time.
- `full=True` also yields every other parameter once (the first load); `full=False` only what training
  changes: the adapted layers, whole (weight and bias), or every trainable parameter of a model without
  adapters.
- `gather(params)` makes partitioned parameters whole for the block (DeepSpeed ZeRO-3's GatheredParameters);
  it is entered one module at a time, so at most one module is ever gathered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

Gather = Callable[[list[torch.nn.Parameter]], contextlib.AbstractContextManager]


def no_gather(params: list[torch.nn.Parameter]) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def _adapted_layers(model: torch.nn.Module) -> set[str]:
    from peft.tuners.lora import LoraLayer

    return {name for name, module in model.named_modules() if isinstance(module, LoraLayer)}


def merged_weight(layer) -> torch.Tensor:
    """One PEFT LoRA/DoRA linear layer's merged weight, as a new tensor in the base weight's dtype."""
    if layer.merged:
        raise RuntimeError("weight sync: an adapter is merged in place; merged weights would count it twice")
    adapters = list(layer.active_adapters)
    if len(adapters) != 1:
        raise RuntimeError(f"weight sync: expected one active adapter, got {adapters}")
    adapter = adapters[0]
    base = layer.get_base_layer().weight
    merged = base.detach().float() + layer.get_delta_weight(adapter).detach().float()
    if layer.use_dora[adapter]:
        magnitude = layer.lora_magnitude_vector[adapter].weight.detach().float()
        merged = merged * (magnitude / torch.linalg.norm(merged, dim=1)).view(-1, 1)
    return merged.to(base.dtype)


def merged_weights(
    model: torch.nn.Module, full: bool, gather: Gather = no_gather
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) per weight to send; each tensor is valid until the next one is asked for."""
    get_base_model = getattr(model, "get_base_model", None)  # a PEFT model's wrapped transformers model
    inner = get_base_model() if get_base_model is not None else model
    adapted = _adapted_layers(inner)
    seen: set[int] = set()  # tied weights (embeddings and lm_head) go once
    parts_of = None  # modules come parent first: an adapted layer's own parts follow it
    for name, module in inner.named_modules():
        if parts_of is not None and name.startswith(parts_of):
            continue  # base layer, lora_A/B, magnitude: merged with their layer
        if name in adapted:
            parts_of = f"{name}."
            with gather(list(module.parameters())):
                yield f"{name}.weight", merged_weight(module)
                bias = module.get_base_layer().bias
                if bias is not None:  # unchanged, but vLLM re-processes a fused layer (qkv) only once all came
                    yield f"{name}.bias", bias.detach()
            continue
        for local, param in module.named_parameters(recurse=False):
            if id(param) in seen or not (full or (not adapted and param.requires_grad)):
                continue
            seen.add(id(param))
            with gather([param]):
                yield f"{name}.{local}" if name else local, param.detach()
