"""The evaluate stage end to end: a cold run against a repeated, fully cached one, in the same run; plus
the candidate encodings that deduplication saves.

    .venv/bin/python benchmarks/bench_eval.py [--eval-per-subset 32] [--candidates 8] [--max-new-tokens 32] [--quick]

The tiny random Qwen2-VL model evaluates the synthetic eval split (6 subsets) with reasoning on. The cold
run encodes every query (generate, then embed) and every unique candidate; the repeated run is the same
evaluation after its artifact is deleted (as after a crash before the manifest), so every embedding comes
from the on-disk chunk cache. Batched vs one-at-a-time reasoning queries (the reference eval's loop) is
measured by benchmarks/bench_model_core.py.

Measured on the project's 2-core CPU machine (Nov 2026, defaults, while two other jobs held the cores):
cold 72.7 s, cached 0.35 s (206x; what remains is reading data, model and cache); deduplication saved 737
of 1,536 candidate encodings (48%).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _timing import parse_args
from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config
from rge_core.pipeline import run_pipeline

QUICK = {"eval_per_subset": 2, "candidates": 4, "max_new_tokens": 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-per-subset", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parse_args(parser, QUICK)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        os.environ["RGE_CACHE"] = str(Path(tmp) / "cache")
        overrides = [f"run.artifacts_root={tmp}/artifacts", "data.synth.train_per_subset=0",
                     f"data.synth.eval_per_subset={args.eval_per_subset}", f"data.synth.candidates={args.candidates}",
                     f"eval.max_new_tokens={args.max_new_tokens}"]
        config = load_config(Path("configs/tiny.yaml"), overrides)
        model = run_pipeline(config, ["model"])["model"]
        config = load_config(Path("configs/tiny.yaml"), [*overrides, f"eval.model={model}"])
        store = ArtifactStore(config.run.artifacts_root)
        timings = {}
        for name in ("cold", "cached"):
            start = time.perf_counter()
            version = run_pipeline(config, ["evaluate"])["evaluate"]
            timings[name] = time.perf_counter() - start
            stats = store.get(version).manifest.stats
            print(f"{name:<7} {timings[name]:7.2f} s   chunks encoded: {stats['chunks_encoded']}")
            shutil.rmtree(store.path(version))
        saved, references = stats["candidate_encodings_saved_by_dedup"], stats["candidate_references"]
        print(f"deduplication: {saved} of {references} candidate encodings saved ({saved / references:.0%})")
        print(f"ratio: cached vs cold: {timings['cold'] / timings['cached']:.2f}x")


if __name__ == "__main__":
    main()
