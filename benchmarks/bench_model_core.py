"""RGE model core: batched encoding against the reference-eval way (one item at a time), in the same run.

    .venv/bin/python benchmarks/bench_model_core.py [--queries 64] [--max-new-tokens 32] [--batch-size 16]
                                                    [--repeats 3] [--quick]

A tiny random Qwen2-VL checkpoint (`write_tiny_model`, seed 0) encodes queries and targets taken round-robin
from the synthetic benchmark's eval split (`write_benchmark`, seed 0, 64x64 images; images preloaded, so no
disk reads are timed). Two comparisons, each with the one-at-a-time path as the baseline:
  * reasoning queries: generate_rationales + embed_queries per batch of --batch-size, against a batch of 1
    (generate for one query, then one more forward for its `<emb>`), as reference evaluation loops do;
  * targets: embed_targets per batch of --batch-size, against one target per forward.
Everything runs under torch.inference_mode() with torch's default thread count.
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pyarrow.parquet as pq
import torch
from _timing import Case, measure, parse_args, print_table
from PIL import Image

from rge_core.model.inputs import Query, Target, load_image
from rge_core.model.rge_model import RGEModel
from rge_core.model.tiny import write_tiny_model
from rge_core.synth.tasks import SUBSETS
from rge_core.synth.writer import write_benchmark

T = TypeVar("T")
QUICK = {"queries": 4, "max_new_tokens": 4, "batch_size": 2, "repeats": 1}


def synth_items(root: Path, count: int) -> tuple[list[Query], list[Target]]:
    """`count` eval rows, round-robin over the subsets: each row's query and its ground-truth target."""
    write_benchmark(
        root, seed=0, train_per_subset=0, eval_per_subset=math.ceil(count / len(SUBSETS)), candidates=2, image_size=64
    )
    tables = [pq.read_table(root / "eval" / subset.name / "test.parquet").to_pylist() for subset in SUBSETS]
    rows = [row for group in itertools.zip_longest(*tables) for row in group if row is not None][:count]

    def image(relative: str) -> Image.Image | None:
        return load_image(root / "eval" / relative) if relative else None

    queries = [Query(row["qry_text"], image(row["qry_img_path"])) for row in rows]
    targets = [Target(row["tgt_text"][0], image(row["tgt_img_path"][0])) for row in rows]
    return queries, targets


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def encode_queries(model: RGEModel, queries: Sequence[Query], max_new_tokens: int, batch_size: int) -> None:
    for batch in chunks(queries, batch_size):
        rationales = model.generate_rationales(batch, max_new_tokens)
        model.embed_queries(batch, rationales.texts)


def encode_targets(model: RGEModel, targets: Sequence[Target], batch_size: int) -> None:
    for batch in chunks(targets, batch_size):
        model.embed_targets(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=64, help="queries, and as many targets")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, QUICK)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        queries, targets = synth_items(Path(tmp) / "synth", args.queries)
        model = RGEModel.load(str(write_tiny_model(Path(tmp) / "model", seed=0)))

    n, size, budget = len(queries), args.batch_size, args.max_new_tokens
    with torch.inference_mode():
        sample = model.generate_rationales(queries[:size], budget)
        print(
            f"{n} queries + {n} targets, batch {size}, max_new_tokens {budget}, torch threads "
            f"{torch.get_num_threads()}; median of {args.repeats} timed runs after 1 warmup"
        )
        print(
            f"sample batch: {sum(sample.num_tokens) / len(sample.num_tokens):.1f} rationale tokens per query, "
            f"{sample.budget_hits}/{len(sample.num_tokens)} hit the budget without <emb>"
        )
        one_q, batched_q = measure(
            [
                Case("queries one at a time", lambda: encode_queries(model, queries, budget, 1), n, "queries"),
                Case("queries batched", lambda: encode_queries(model, queries, budget, size), n, "queries"),
            ],
            repeats=args.repeats,
        )
        one_t, batched_t = measure(
            [
                Case("targets one at a time", lambda: encode_targets(model, targets, 1), n, "targets"),
                Case("targets batched", lambda: encode_targets(model, targets, size), n, "targets"),
            ],
            repeats=args.repeats,
        )

    print_table("reasoning-query encoding (generate rationale, then embed at <emb>)", one_q, [batched_q])
    print_table("target embedding", one_t, [batched_t])


if __name__ == "__main__":
    main()
