"""Eval query rationales of one model from both engines (transformers and vLLM); prints JSON.

    python tests/eval_vllm_script.py MODEL_DIR IMAGE_DIR

Output line: `RESULT {"hf": [[text, num_tokens, budget_hit], ...], "vllm": [...]}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __name__ == "__main__":  # vLLM may spawn workers, which re-import this module
    from PIL import Image

    from rge_core.config.schema import Config, greedy_decoding
    from rge_core.embedder import EmbedSettings, TransformersRationales
    from rge_core.generation.vllm_rationales import VLLMRationales
    from rge_core.model.inputs import Query
    from rge_core.model.rge_model import RGEModel

    model_dir, image_dir = sys.argv[1], Path(sys.argv[2])
    colours = ["red", "green", "blue", "white", "black", "yellow"]
    queries = []
    for i, colour in enumerate(colours):
        path = image_dir / f"{colour}.png"
        Image.new("RGB", (56 + 28 * i, 56), colour).save(path)
        queries.append(Query(f"<|image_1|> What colour is this, {colour} or not?", path if i % 3 else None))
    config = Config()
    config.eval.vllm.max_model_len = 1024
    rge = RGEModel.load(model_dir)
    settings = EmbedSettings(greedy_decoding(10), batch_size=4)
    runs = {
        "hf": TransformersRationales(rge, settings)(queries),
        "vllm": VLLMRationales(rge, model_dir, config.eval.vllm, 0, 0, settings.decoding, settings.batch_size)(queries),
    }
    print(
        "RESULT "
        + json.dumps({name: list(zip(r.texts, r.num_tokens, r.budget_hit, strict=True)) for name, r in runs.items()})
    )
