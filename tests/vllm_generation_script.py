"""Runs VLLMGenerator (one engine) through the scenarios test_generation.py checks; prints JSON.

    python tests/vllm_generation_script.py MODEL_DIR REQUESTS.json

REQUESTS.json: a list of GenerationRequest fields. Output line: `RESULT {scenario: [result dicts]}`.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict, replace

REGEX = r"Reasoning: [a-z ]{10,40}"

if __name__ == "__main__":  # vLLM may spawn workers, which re-import this module
    from rge_core.config.schema import DecodingConfig
    from rge_core.generation import GenerationRequest, build_generator

    model_dir, requests_file = sys.argv[1:3]
    with open(requests_file) as handle:
        requests = [GenerationRequest(**fields) for fields in json.load(handle)]
    shuffled = random.Random(0).sample(requests, len(requests))
    sampled = DecodingConfig(temperature=1.0, top_p=1.0, max_new_tokens=12)
    generator = build_generator("vllm", model=model_dir, dtype="float32", max_model_len=1024)
    runs = {
        "sampled": generator.generate(requests, sampled),
        "shuffled": generator.generate(shuffled, sampled),
        "alone": generator.generate(requests[:1], sampled),
        "reseeded": generator.generate([replace(r, seed=r.seed + 1000) for r in requests], sampled),
        "regex": generator.generate(requests, replace(sampled, max_new_tokens=64), regex=REGEX),
        "greedy": generator.generate(requests, DecodingConfig(temperature=0.0, max_new_tokens=10)),
    }
    generator.close()
    # model.min_pixels / max_pixels as the curate stage passes them (tests/test_generation.py: BOUNDS)
    bounded = build_generator(
        "vllm", model=model_dir, dtype="float32", max_model_len=1024, min_pixels=112 * 112, max_pixels=224 * 224
    )
    runs["bounded"] = bounded.generate(requests, DecodingConfig(temperature=0.0, max_new_tokens=10))
    bounded.close()
    print("RESULT " + json.dumps({name: [asdict(r) for r in results] for name, results in runs.items()}))
