"""Step-named checkpoints: DeepSpeed state (for resuming) + the merged model in HF format (for
evaluation). Each is written into a hidden temporary folder, completed with `complete.json`, then renamed
into place, so `checkpoints/step-NNNNNN/` exists only when whole."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist

from rge_core.fileio import naming_a_full_disk

COMPLETE = "complete.json"


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / "checkpoints" / f"step-{step:06d}"


def latest_step(root: Path) -> int:
    """The step of the newest complete checkpoint, 0 when there is none."""
    steps = [int(p.name.split("-")[1]) for p in (root / "checkpoints").glob("step-*") if (p / COMPLETE).exists()]
    return max(steps, default=0)


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def full_state_dict(engine, rank: int) -> dict[str, torch.Tensor]:
    """Every parameter, gathered from ZeRO-3 partitions when needed (all ranks must call), copied to the
    CPU on rank 0 only (the others return {}: one CPU copy per node would not fit for large models)."""
    import deepspeed

    module = engine.module
    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        if rank != 0:
            return {}
        return {name: tensor.detach().cpu().clone() for name, tensor in module.state_dict().items()}


def export_hf(state: dict[str, torch.Tensor], base_dir: str, train, processor, out: Path) -> None:
    """Rebuild the trained model from the base checkpoint + `state`, merge adapters, save as HF. The base loads in
    the training dtype, so the adapters merge into weights of the precision they were trained against (not the
    checkpoint's own dtype, e.g. bf16 weights of an fp32 run) and the saved model is in that dtype."""
    from transformers import AutoModelForImageTextToText

    from rge_core.training.setup import apply_peft, training_dtype

    model = AutoModelForImageTextToText.from_pretrained(base_dir, dtype=training_dtype(train.precision))
    rows = model.get_input_embeddings().weight.shape[0]  # type: ignore[index]  # an nn.Embedding
    if len(processor.tokenizer) > rows:
        model.resize_token_embeddings(len(processor.tokenizer))  # `<emb>` was added at load time
    model = apply_peft(model, train)
    model.load_state_dict(state)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with naming_a_full_disk(out):
        model.save_pretrained(out)
        processor.save_pretrained(out)


def save_checkpoint(engine, root: Path, step: int, base_dir: str, train, processor, rank: int) -> Path:
    final = checkpoint_dir(root, step)
    scratch = final.with_name(f".{final.name}.tmp")
    if rank == 0 and scratch.exists():
        shutil.rmtree(scratch)
    _barrier()
    with naming_a_full_disk(scratch):
        engine.save_checkpoint(str(scratch), tag="deepspeed")
    state = full_state_dict(engine, rank)
    if rank == 0:
        export_hf(state, base_dir, train, processor, scratch / "hf")
        with naming_a_full_disk(scratch):
            (scratch / COMPLETE).write_text(json.dumps({"step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(scratch, final)
    _barrier()
    return final


def resume(engine, root: Path) -> int:
    """Load the newest complete checkpoint into `engine`; returns the step to continue from."""
    step = latest_step(root)
    if step:
        engine.load_checkpoint(str(checkpoint_dir(root, step)), tag="deepspeed")
    return step
