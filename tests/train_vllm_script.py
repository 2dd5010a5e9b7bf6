"""Six LoRA (or DoRA) training steps whose on-the-fly rationales come from a colocated vLLM engine, next to
the rationales transformers generates from the same weights just before each step; prints JSON.

    python tests/train_vllm_script.py MODEL_DIR IMAGE_DIR [--dora] [--no-sync]

--no-sync: the control; the engine gets the weights once (the first sync) and never again.
Output line: `RESULT {"hf": [[texts of step k], ...], "vllm": [...], "syncs": n, "sampled": [texts with seed 7,
again with seed 7, with seed 8], "base_unchanged": bool, "max_merge_error": float, "merged_names": n}`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path

STEPS = 6

if __name__ == "__main__":  # vLLM may spawn workers, which re-import this module
    import torch
    from PIL import Image

    from rge_core.config.schema import DecodingConfig, LoraConfig, TrainConfig, VLLMEngineConfig
    from rge_core.model.inputs import Query, Target
    from rge_core.model.rge_model import RGEModel
    from rge_core.training.data import Example
    from rge_core.training.setup import apply_peft, optimizer_and_schedule
    from rge_core.training.step import HFRationales, RGEStep
    from rge_core.training.trainer import _single_process_env
    from rge_core.training.vllm_rationales import ColocatedVLLM
    from rge_core.training.weight_sync import merged_weights

    model_dir, image_dir = sys.argv[1], Path(sys.argv[2])
    dora, sync = "--dora" in sys.argv, "--no-sync" not in sys.argv
    _single_process_env()
    torch.distributed.init_process_group("gloo")
    train = dataclasses.replace(
        TrainConfig(),
        method="rge",
        batch_size=4,
        lr=2e-2,  # large, so that six steps move the greedy rationales of a random model
        warmup_steps=0,
        schedule="constant",
        decoding=DecodingConfig(temperature=0.0, max_new_tokens=8),
        hard_negatives=False,
        lora=LoraConfig(rank=8, alpha=32, dropout=0.0, use_dora=dora),
        vllm=VLLMEngineConfig(max_model_len=1024),
    )
    colours = ["red", "green", "blue", "white", "black", "yellow", "purple", "orange"]
    examples = []
    for i, colour in enumerate(colours):
        path = image_dir / f"{colour}.png"
        Image.new("RGB", (56 + 28 * (i % 3), 56), colour).save(path)
        query = Query(f"<|image_1|> Which shape is {colour}?", path if i % 4 else None)
        examples.append(Example(f"p{i}", "s", query, f"The {colour} one.", Target(f"a {colour} shape"), None))
    torch.manual_seed(0)
    rge = RGEModel.load(model_dir)
    rge.model = apply_peft(rge.model, train)
    rge.model.train()
    base = {n: p.detach().clone() for n, p in rge.model.named_parameters() if "base_layer" in n}
    optimizer, _ = optimizer_and_schedule(rge.model, train)
    colocated = ColocatedVLLM(rge, model_dir, train)
    step, hf = RGEStep(rge, train, rationales=colocated), HFRationales(rge)
    result: dict = {"hf": [], "vllm": []}
    for k in range(STEPS):
        batch = examples[(k % 2) * 4 : (k % 2) * 4 + 4]
        expected = hf([e.query for e in batch], train.decoding, seed=k)
        out = step(batch, seed=k)
        optimizer.step()
        optimizer.zero_grad()
        if sync:
            colocated.weights_changed()
        result["hf"].append(expected.texts)
        result["vllm"].append(out.rationales.texts)
    result["syncs"] = colocated.syncs
    # Sampling: a query's text depends on its seed alone (a resumed run passes the same step seed).
    sampling = dataclasses.replace(train.decoding, temperature=1.0)
    queries = [e.query for e in examples[:4]]
    result["sampled"] = [colocated(queries, sampling, seed=seed).texts for seed in (7, 7, 8)]
    result["base_unchanged"] = all(torch.equal(p, base[n]) for n, p in rge.model.named_parameters() if n in base)
    # The merged weights against PEFT's own in-place merge of a copy (a different code path).
    peft_merged = copy.deepcopy(rge.model).merge_and_unload().state_dict()
    ours = dict(merged_weights(rge.model, full=True))
    result["max_merge_error"] = max(float((ours[n] - peft_merged[n]).abs().max()) for n in ours)
    result["merged_names"] = len(ours)
    colocated.close()
    print("RESULT " + json.dumps(result))
