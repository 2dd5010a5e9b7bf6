"""Loads tiny checkpoints in vLLM (CPU build) and prints greedy tokens as JSON; run by test_tiny_model.py.

python tests/vllm_smoke.py MODEL_DIR [MODEL_DIR ...]
"""

from __future__ import annotations

import json
import os
import sys

# In-process engine core: starts in seconds instead of ~30 s on CPU, same tokens.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

PROMPT = "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"

if __name__ == "__main__":  # vLLM may spawn workers, which re-import this module
    from PIL import Image
    from vllm import LLM, SamplingParams

    greedy = SamplingParams(max_tokens=6, temperature=0.0)
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    results = {}
    for model_dir in sys.argv[1:]:
        llm = LLM(model=model_dir, dtype="float32", max_model_len=512, enforce_eager=True, seed=0)
        text, with_image = llm.generate(
            [
                {"prompt": PROMPT.format(content="How many shapes are there?")},
                {
                    "prompt": PROMPT.format(content="<|vision_start|><|image_pad|><|vision_end|>What colour?"),
                    "multi_modal_data": {"image": image},
                },
            ],
            greedy,
            use_tqdm=False,
        )
        results[model_dir] = {"text": list(text.outputs[0].token_ids), "image": list(with_image.outputs[0].token_ids)}
        del llm
    print("RESULT " + json.dumps(results))
