"""The embedding API's throughput: `Embedder` batched by length against one item per call, in the same run.

    .venv/bin/python benchmarks/bench_embed.py [--items 64] [--max-new-tokens 32] [--batch-size 16]
                                              [--repeats 3] [--quick]

A tiny random Qwen2-VL checkpoint (`write_tiny_model`, seed 0) loaded with `Embedder.load` (CPU, float32) embeds
plain items (`{"text", "image"}`, PIL images preloaded, so no disk reads are timed) built from the synthetic
benchmark's eval split, round-robin over its six subsets (`bench_model_core.synth_items`). Two comparisons,
each against the loop a user would write without batching, `encode_*([item])` per item:
  * queries with reasoning (greedy rationales of --max-new-tokens, then the embedding at `<emb>`);
  * candidates (no reasoning).
Batched: one `encode_queries(items)` / `encode_candidates(items)` call, batches of --batch-size by prompt length.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _timing import Case, measure, parse_args, print_table
from bench_model_core import synth_items

from rge_core import Embedder
from rge_core.model.tiny import write_tiny_model

QUICK = {"items": 4, "max_new_tokens": 4, "batch_size": 2, "repeats": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64, help="queries, and as many candidates")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, QUICK)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        queries, targets = synth_items(Path(tmp) / "synth", args.items)
        folder = write_tiny_model(Path(tmp) / "model", seed=0)
        settings = {"device": "cpu", "dtype": "float32", "max_new_tokens": args.max_new_tokens}
        batched = Embedder.load(folder, batch_size=args.batch_size, **settings)
        single = Embedder.load(folder, batch_size=1, **settings)
    query_items = [{"text": q.text, "image": q.image} for q in queries]
    candidate_items = [{"text": t.text, "image": t.image} for t in targets]
    n = len(query_items)

    _, sample = batched.encode_queries(query_items[: args.batch_size], return_rationales=True)
    print(
        f"{n} queries + {n} candidates, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, torch threads "
        f"{torch.get_num_threads()}; median of {args.repeats} timed runs after 1 warmup"
    )
    print(f"sample: {sum(r.budget_hit for r in sample)}/{len(sample)} rationales hit the budget without <emb>")

    def one_at_a_time_queries() -> None:
        for item in query_items:
            single.encode_queries([item])

    def one_at_a_time_candidates() -> None:
        for item in candidate_items:
            single.encode_candidates([item])

    one_q, batched_q = measure(
        [
            Case("queries one at a time", one_at_a_time_queries, n, "queries"),
            Case("queries batched", lambda: batched.encode_queries(query_items), n, "queries"),
        ],
        repeats=args.repeats,
    )
    one_c, batched_c = measure(
        [
            Case("candidates one at a time", one_at_a_time_candidates, n, "candidates"),
            Case("candidates batched", lambda: batched.encode_candidates(candidate_items), n, "candidates"),
        ],
        repeats=args.repeats,
    )
    print_table("Embedder.encode_queries (reasoning, then the embedding at <emb>)", one_q, [batched_q])
    print_table("Embedder.encode_candidates", one_c, [batched_c])


if __name__ == "__main__":
    main()
