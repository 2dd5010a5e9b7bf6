"""Model and optimiser set-up for training: LoRA/DoRA via PEFT or full fine-tuning, frozen vision tower,
AdamW with warmup + cosine/linear/constant decay, and the DeepSpeed config from TrainConfig."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from rge_core.config.schema import TrainConfig
from rge_core.model.placement import Placement, resolve_placement

# train.lora.init_weights -> PEFT's init_lora_weights (True: Kaiming-uniform A, zero B).
_LORA_INIT: dict[str, Any] = {"default": True, "gaussian": "gaussian"}


def check_lora(train: TrainConfig) -> None:
    """The LoRA settings PEFT would only reject inside every trainer process; the train stage checks first."""
    if train.lora.init_weights not in _LORA_INIT:
        raise ValueError(f"train.lora.init_weights: {train.lora.init_weights!r} is not one of {sorted(_LORA_INIT)}")


def apply_peft(model, train: TrainConfig):
    """Wrap `model` with LoRA/DoRA adapters (train.lora.enabled) or leave it whole; freeze the vision tower."""
    if train.lora.enabled:
        from peft import LoraConfig, get_peft_model

        check_lora(train)
        lora = train.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                use_dora=lora.use_dora,
                target_modules=lora.target_modules,  # a regex: full match over module names
                init_lora_weights=_LORA_INIT[lora.init_weights],
            ),
        )
    elif train.freeze_vision:
        for name, parameter in model.named_parameters():
            if ".visual." in f".{name}":
                parameter.requires_grad_(False)
    if train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def lr_factor(step: int, train: TrainConfig) -> float:
    """Multiplier of the peak learning rate at `step` (0-based)."""
    if step < train.warmup_steps:
        return (step + 1) / train.warmup_steps
    progress = (step - train.warmup_steps) / max(1, train.steps - train.warmup_steps)
    if train.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if train.schedule == "linear":
        return max(0.0, 1.0 - progress)
    if train.schedule == "constant":
        return 1.0
    raise ValueError(f"train.schedule: {train.schedule!r} is not cosine, linear or constant")


def optimizer_and_schedule(model, train: TrainConfig):
    parameters = [p for p in model.parameters() if p.requires_grad]
    # A torch optimizer keeps DeepSpeed from JIT-building its fused Adam (minutes on CPU).
    optimizer = torch.optim.AdamW(parameters, lr=train.lr, weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, train))
    return optimizer, schedule


def deepspeed_config(train: TrainConfig) -> dict:
    zero: dict = {"stage": train.zero_stage}
    if train.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if train.offload_params:
        zero["offload_param"] = {"device": "cpu"}
    if train.precision not in ("fp32", "bf16"):
        raise ValueError(f"train.precision: {train.precision!r} is not fp32 or bf16 (fp16 does not work on CPU)")
    return {
        "train_micro_batch_size_per_gpu": train.batch_size,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": train.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": train.precision == "bf16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # our own metrics.jsonl does the logging
    }


def training_dtype(precision: str) -> str:
    """The weights' dtype under train.precision: what the model trains, and is merged and saved, in."""
    return "bfloat16" if precision == "bf16" else "float32"


def training_placement(train: TrainConfig, device: str, attn_implementation: str) -> Placement:
    """Each trainer process loads onto its local rank's device (model.device) in the training precision
    (train.precision; model.dtype is eval's and the generators')."""
    return resolve_placement(
        device, training_dtype(train.precision), attn_implementation, dtype_setting="train.precision"
    )


@contextlib.contextmanager
def partitioned_loading(ds_config: dict):
    """Under ZeRO-3, models loaded inside this block are built under `deepspeed.zero.Init` by transformers'
    DeepSpeed integration: every rank keeps only its partition, none materialises a full copy. Outside it
    (e.g. rank 0's export of the merged model) loads are plain again."""
    if ds_config["zero_optimization"]["stage"] != 3:
        yield
        return
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    active = HfDeepSpeedConfig(ds_config)  # transformers keeps only a weak reference: hold it here
    try:
        yield
    finally:
        del active
        unset_hf_deepspeed_config()
