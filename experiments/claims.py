"""The paper's claims, trained and evaluated through the pipeline on the synthetic reasoning suite.

    python -m experiments.claims [--root DIR] [--quick] [--set key=value ...]

configs/learning-check.yaml with the settings in SUITE (the reasoning subsets, whose answers are computed
from the scene, at 84 px so each visual token covers one grid cell, with room for the facts), run as:
  warm-start         train.method lm: the oracle facts' LM loss alone, so the tiny model learns to write
                     them (its random weights cannot); the runs below start from its checkpoint
  rge                rge, evaluated with reasoning
  baseline           baseline (no rationale), evaluated without reasoning
  warm-start-unpaired, rge-unpaired, oracle-unpaired
                     the same on shuffled queries (every pair's query is another pair's; its oracle facts and
                     targets kept: the paper's Fig. 4 "unpaired queries"); oracle-embed embeds the ORACLE facts
  blind-text, blind-image
                     baseline from the warm start on a benchmark whose queries show only their text (blank
                     image) or only their image (one neutral text): the shortcuts the suite leaves
One line per claim, each with an exact p-value (rge_core/evaluation/significance.py):
  reasoning-helps    rge against baseline on the same eval queries, two-sided exact McNemar on the pairs
  oracle-leak        Fig. 4: the contrastive training accuracy of oracle-unpaired against rge-unpaired over the
                     last quarter of the logged steps, one-sided Fisher exact (the oracle facts name the target,
                     so the loss falls without any query-target alignment; rge's own rationale cannot)
  control            rge-unpaired's eval P@1 against chance (1 / candidates), one-sided exact binomial: a model
                     trained on pairs that carry no signal must not beat chance (p >= 0.01 expected)
then the reasoning-helps test per subset, how many of rge's eval rationales reach the facts' conclusion per
subset (`facts:`; reasoning can only add what its rationales get right), and one `scores:` line per evaluated
run with its P@1 per subset. Artifacts go under --root (default
./claims-artifacts); a rerun reuses what exists. --quick is the CI smoke run: the same code on a fraction of
the data and steps, whose p-values mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas.io import read_table
from rge_core import stage_logs
from rge_core.artifacts.local import checkpoint_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config
from rge_core.config.schema import Config
from rge_core.evaluation.predictions import Pairing, correct_queries, pair_predictions
from rge_core.evaluation.significance import binomial_tail, fisher_greater, mcnemar_exact

PRESET = Path(__file__).resolve().parent.parent / "configs" / "learning-check.yaml"
SUITE = [  # on top of the preset, for every run
    "data.synth.suite=reasoning",
    "data.synth.image_size=84",  # 3x3 visual tokens after the 2x2 merge: one per grid cell
    "train.decoding.max_new_tokens=32",  # the reasoning facts are 8-32 tokens of the tiny tokenizer
    "eval.decoding.max_new_tokens=32",
    "data.synth.eval_per_subset=512",  # 2,048 paired eval queries: eval is seconds, the test needs the power
    "train.steps=1000",  # twice the learning check's: the embedding must learn to read the facts it wrote
]
WARM_START = [  # measured: the answer in the greedy facts rises from chance to about half by 1,500 steps
    "train.method=lm",
    "train.steps=2000",
    "train.batch_size=8",
    "train.lr=0.001",
    "train.warmup_steps=50",
    "train.schedule=constant",
]
UNPAIRED = "train.pairing=shuffled-queries"
RGE, BASELINE = ["train.method=rge", "eval.reasoning=true"], ["train.method=baseline", "eval.reasoning=false"]


@dataclass(frozen=True)
class Spec:
    overrides: list[str]
    last: str  # the last stage it runs
    warm_start: str | None = None  # the run whose trained model it starts from


RUNS: dict[str, Spec] = {  # in run order: a warm start comes before the runs that start from it
    "warm-start": Spec(WARM_START, "train"),
    "rge": Spec(RGE, "evaluate", "warm-start"),
    "baseline": Spec(BASELINE, "evaluate", "warm-start"),
    "blind-text": Spec([*BASELINE, "data.synth.query_view=text-only"], "evaluate", "warm-start"),
    "blind-image": Spec([*BASELINE, "data.synth.query_view=image-only"], "evaluate", "warm-start"),
    "warm-start-unpaired": Spec([*WARM_START, UNPAIRED], "train"),
    "rge-unpaired": Spec([*RGE, UNPAIRED], "evaluate", "warm-start-unpaired"),
    "oracle-unpaired": Spec(["train.method=oracle-embed", UNPAIRED], "train", "warm-start-unpaired"),
}
QUICK = [  # the CI smoke run: every code path, minutes on 2 cores
    "data.synth.train_per_subset=16",
    "data.synth.eval_per_subset=8",
    "train.steps=12",
    "train.warmup_steps=2",
    "train.checkpoint_every=1000",
]
TAIL = 4  # oracle-leak: the last 1/TAIL of the logged steps


@dataclass(frozen=True)
class Run:
    config: Config
    store: ArtifactStore
    ids: dict[str, str | None]

    def artifact(self, stage: str):
        version = self.ids[stage]
        if version is None:
            raise LookupError(f"no {stage} artifact")
        return self.store.get(version)

    @functools.cached_property
    def predictions(self) -> pa.Table:
        return read_table(self.artifact("evaluate").file_url("predictions.parquet"), "predictions")

    @property
    def correct(self) -> int:
        return sum(self.by_subset[0].values())

    @functools.cached_property
    def by_subset(self) -> tuple[Counter[str], Counter[str]]:
        """(correct queries, queries) per eval dataset."""
        right: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for (subset, _), correct in correct_queries(self.predictions).items():
            right[subset] += correct
            total[subset] += 1
        return right, total

    def training_hits(self) -> tuple[int, int]:
        """(in-batch matches, rows) over the last 1/TAIL of the logged steps: accuracy x the global batch."""
        lines = self.artifact("train").read_bytes("metrics.jsonl").decode().splitlines()
        records = [json.loads(line) for line in lines]
        tail = records[-max(1, len(records) // TAIL) :]
        rows = self.config.train.batch_size * self.config.train.launch.nproc
        return sum(round(r["accuracy"] * rows) for r in tail), rows * len(tail)


def run(name: str, root: Path, extra: list[str], runs: dict[str, Run], terminal) -> Run:
    spec = RUNS[name]
    start = []
    if spec.warm_start:
        warm = runs[spec.warm_start]
        start = [f"model.path={checkpoint_folder(warm.store, warm.artifact('train').id)}"]
    config = load_config(PRESET, [f"run.artifacts_root={root}", *SUITE, *spec.overrides, *start, *extra])
    from rge_core.pipeline import run_pipeline  # heavy imports after argument parsing

    def stage_line(stage: str, result, seconds: float) -> None:
        print(f"  {name:<19} {stage:<9} {'reused' if result.reused else 'built'} {seconds:6.1f} s", file=terminal)

    ids = run_pipeline(config, [spec.last], on_stage=stage_line)
    return Run(config, ArtifactStore.from_config(config), ids)


def reasoning_helps(rge: Run, baseline: Run, pairing: Pairing) -> str:
    b = sum(bc[0] for bc in pairing.discordant.values())  # right with reasoning only
    c = sum(bc[1] for bc in pairing.discordant.values())
    paired = sum(pairing.paired.values())
    return (
        f"claim: reasoning-helps: rge {rge.correct / paired:.1%} vs baseline {baseline.correct / paired:.1%} "
        f"on {paired} paired queries (right only with reasoning {b}, only without {c}), p={mcnemar_exact(b, c):.2g}"
    )


def per_subset(rge: Run, baseline: Run, pairing: Pairing) -> str:
    (right_rge, _), (right_baseline, _) = rge.by_subset, baseline.by_subset
    parts = [
        f"{subset} {right_rge[subset]} vs {right_baseline[subset]} (b={b} c={c} p={mcnemar_exact(b, c):.2g})"
        for subset, (b, c) in pairing.discordant.items()
    ]
    return "reasoning-helps per subset: rge vs baseline correct: " + "; ".join(parts)


def conclusion(text: str) -> str:
    """The reasoning suite's facts end with the answer after their last "; " or ", so "."""
    return re.split(r"; |, so ", text.strip())[-1].rstrip(".")


def facts_stated(rge: Run) -> str:
    """How often rge's eval rationale reaches the facts' conclusion: what reasoning can add is bounded by it."""
    from rge_core.builds import build_or_reuse
    from rge_core.sources import benchmark_spec

    benchmark = rge.store.get(build_or_reuse(rge.store, benchmark_spec(rge.config)))  # the run's, reused
    facts = pq.read_table(io.BytesIO(benchmark.read_bytes("facts.parquet")), columns=["item_id", "facts"])
    expected = dict(zip(*(facts.column(c).to_pylist() for c in ("item_id", "facts")), strict=True))
    rationales = pq.read_table(io.BytesIO(rge.artifact("evaluate").read_bytes("rationales.parquet")))
    stated: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row in rationales.select(["item_id", "dataset", "rationale"]).to_pylist():
        stated[row["dataset"]] += conclusion(row["rationale"]) == conclusion(expected[row["item_id"]])
        total[row["dataset"]] += 1
    parts = " ".join(f"{subset} {stated[subset]}/{total[subset]}" for subset in sorted(total))
    return f"facts: rge's eval rationales that reach the right conclusion: {parts}"


def oracle_leak(oracle: Run, rge: Run) -> str:
    hits_o, rows_o = oracle.training_hits()
    hits_r, rows_r = rge.training_hits()
    return (
        f"claim: oracle-leak: unpaired queries, contrastive training accuracy over the last 1/{TAIL} of the steps: "
        f"oracle-embed {hits_o / rows_o:.1%} vs rge {hits_r / rows_r:.1%} ({rows_o} rows each), "
        f"p={fisher_greater(hits_o, rows_o, hits_r, rows_r):.2g}"
    )


def control(unpaired: Run) -> str:
    right, queries = unpaired.correct, unpaired.predictions.num_rows
    chance = Fraction(1, unpaired.config.data.synth.candidates)
    return (
        f"claim: control: rge trained on shuffled queries, eval P@1 {right / queries:.1%} vs chance "
        f"{float(chance):.1%} on {queries} queries, p={binomial_tail(right, queries, chance):.2g}"
    )


def scores(name: str, result: Run) -> str:
    right, total = result.by_subset
    subsets = " ".join(f"{subset} {right[subset]}/{total[subset]}" for subset in sorted(total))
    return f"scores: {name}: P@1 {result.correct / result.predictions.num_rows:.1%} ({subsets})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("claims-artifacts"), help="artifact root")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: tiny sizes, meaningless p-values")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value for every run")
    args = parser.parse_args(argv)
    extra = [*(QUICK if args.quick else []), *args.overrides]
    started = time.monotonic()
    runs: dict[str, Run] = {}
    with stage_logs.quiet() as terminal:  # the libraries' output goes to each stage's log file
        for name in RUNS:
            runs[name] = run(name, args.root.resolve(), extra, runs, terminal)
    pairing = pair_predictions(runs["rge"].predictions, runs["baseline"].predictions)
    print(reasoning_helps(runs["rge"], runs["baseline"], pairing))
    print(per_subset(runs["rge"], runs["baseline"], pairing))
    print(facts_stated(runs["rge"]))
    print(oracle_leak(runs["oracle-unpaired"], runs["rge-unpaired"]))
    print(control(runs["rge-unpaired"]))
    for name, result in runs.items():
        if RUNS[name].last == "evaluate":
            print(scores(name, result))
    print(f"claims: {len(RUNS)} runs in {time.monotonic() - started:.0f} s under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
