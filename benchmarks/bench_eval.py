"""The evaluate stage end to end: a cold run against a repeated, fully cached one, in the same run; plus
the candidate encodings that deduplication saves; plus how each way of running it compares, cold, each in
a fresh embedding cache: length-sorted vs unsorted batches, two shard processes (eval.launch.nproc=2) vs one,
vLLM rationales (eval.engine=vllm) vs transformers generate.

    .venv/bin/python benchmarks/bench_eval.py [--eval-per-subset 32] [--candidates 8] [--max-new-tokens 32]
        [--repeats 1] [--quick]

The tiny random Qwen2-VL model evaluates the synthetic eval split (6 subsets) with reasoning on. The cold
run encodes every query (generate, then embed) and every unique candidate; the repeated run is the same
evaluation after its artifact is deleted (as after a crash before the manifest), so every embedding comes
from the on-disk chunk cache. Batched vs one-at-a-time reasoning queries (the reference eval's loop) is
measured by benchmarks/bench_model_core.py.

Measured on the project's 2-core CPU machine (Nov 2026, defaults, while two other jobs held the cores):
cold 72.7 s, cached 0.35 s (206x; what remains is reading data, model and cache); deduplication saved 737
of 1,536 candidate encodings (48%).
Ways of running it (27 Nov 2026, `--eval-per-subset 64 --repeats 2`: 384 reasoning queries of 32 tokens,
while the test suite ran on the same 2 cores): sorted vs unsorted batches 1.05x (26.9 s vs 28.2 s; the
synthetic prompts are all about one length); 2 shard processes vs one 0.84x (31.8 s: each torchrun shard
pays imports and a model load, and both share the same 2 cores; the gain is for one process per GPU);
vLLM vs transformers rationales 0.85x (31.8 s, including the engine start); mixed-length candidates (2,048
texts of 1-120 words) sorted vs unsorted 0.98x: the tiny model's forward costs about the same at 10 or 120
tokens (overhead-bound), so halving the pad tokens saves no time on it. benchmarks/bench_gpu.py measures
the same sorting at full size.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

from _timing import Case, measure, parse_args, print_table

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config
from rge_core.pipeline import run_pipeline, version_of

QUICK = {"eval_per_subset": 2, "candidates": 4, "max_new_tokens": 4, "repeats": 1}
# Cold runs of the same evaluation, each way of running it against the one before it in the ratio lines.
WAYS = {
    "unsorted batches": ["eval.sort_by_length=false"],
    "sorted batches": [],
    "2 shard processes": ["eval.launch.nproc=2"],
    "vllm rationales": ["eval.engine=vllm"],
}
COMPARED = [
    ("sorted batches", "unsorted batches"),
    ("2 shard processes", "sorted batches"),
    ("vllm rationales", "sorted batches"),
]


def cold_run(overrides: list[str], scratch: Path, counter) -> None:
    """One evaluation from nothing: a fresh artifact root and embedding cache."""
    fresh = scratch / str(next(counter))
    os.environ["RGE_CACHE"] = str(fresh / "cache")
    config = load_config(Path("configs/tiny.yaml"), [*overrides, f"run.artifacts_root={fresh}"])
    run_pipeline(config, ["evaluate"])


def compare_ways(overrides: list[str], model_dir: Path, queries: int, repeats: int, scratch: Path) -> None:
    counter = itertools.count()
    base = [*overrides, f"eval.model={model_dir}"]
    cases = [
        Case(name, functools.partial(cold_run, [*base, *extra], scratch, counter), queries, "queries")
        for name, extra in WAYS.items()
    ]
    timings = {t.name: t for t in measure(cases, warmup=0, repeats=repeats)}
    for name, baseline in COMPARED:
        print_table(f"{name} vs {baseline}", timings[baseline], [timings[name]])


def mixed_lengths(model_dir: Path, items: int, repeats: int, scratch: Path) -> None:
    """Sorting where lengths differ (MMEB mixes one-word labels with long captions): text candidates of 1 to
    120 words, encoded cold through the chunk cache, sorted vs unsorted; the synthetic split's prompts are
    all about one length, so the stage comparison above shows only sorting's cost."""
    import numpy as np

    from rge_core.embedder import Embedder, EmbedSettings
    from rge_core.evaluation.encode import Encoder, EncodeSettings
    from rge_core.model.inputs import Target
    from rge_core.model.rge_model import RGEModel

    rge = RGEModel.load(str(model_dir))
    words = np.random.default_rng(0).integers(1, 121, size=items)
    targets = [Target(" ".join(["colour"] * int(n))) for n in words]
    counter = itertools.count()

    def encode(sort: bool) -> None:
        embedder = Embedder(rge, EmbedSettings(batch_size=16, sort_by_length=sort))
        cache = scratch / str(next(counter))
        cache.mkdir(parents=True)
        encoder = Encoder(lambda: embedder, EncodeSettings(reasoning=False, chunk_size=256), cache)
        encoder.encode("candidates", "c", targets)

    unsorted, sorted_ = measure(
        [
            Case("unsorted mixed-length candidates", lambda: encode(False), items, "targets"),
            Case("sorted mixed-length candidates", lambda: encode(True), items, "targets"),
        ],
        repeats=repeats,
    )
    print_table("mixed-length candidates, sorted vs unsorted", unsorted, [sorted_])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-per-subset", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parse_args(parser, QUICK)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        os.environ["RGE_CACHE"] = str(Path(tmp) / "cache")
        overrides = [
            f"run.artifacts_root={tmp}/artifacts",
            "data.synth.train_per_subset=0",
            f"data.synth.eval_per_subset={args.eval_per_subset}",
            f"data.synth.candidates={args.candidates}",
            f"eval.decoding.max_new_tokens={args.max_new_tokens}",
        ]
        config = load_config(Path("configs/tiny.yaml"), overrides)
        model = version_of(run_pipeline(config, ["model"]), "model")
        config = load_config(Path("configs/tiny.yaml"), [*overrides, f"eval.model={model}"])
        store = ArtifactStore(config.run.artifacts_root)
        timings = {}
        for name in ("cold", "cached"):
            start = time.perf_counter()
            version = version_of(run_pipeline(config, ["evaluate"]), "evaluate")
            timings[name] = time.perf_counter() - start
            stats = store.get(version).manifest.stats
            print(f"{name:<7} {timings[name]:7.2f} s   chunks encoded: {stats['chunks_encoded']}")
            shutil.rmtree(store.path(version))
        saved, references = stats["candidate_encodings_saved_by_dedup"], stats["candidate_references"]
        print(f"deduplication: {saved} of {references} candidate encodings saved ({saved / references:.0%})")
        print(f"ratio: cached vs cold: {timings['cold'] / timings['cached']:.2f}x")
        model_dir = Path(store.path(model))  # a checkpoint folder: every way below reads the same weights
        compare_ways(overrides, model_dir, 6 * args.eval_per_subset, args.repeats, Path(tmp) / "ways")
        mixed_lengths(model_dir, 32 * args.eval_per_subset, max(args.repeats, 3), Path(tmp) / "mixed")


if __name__ == "__main__":
    main()
