"""The paper's claims, trained and evaluated through the pipeline on the synthetic benchmark.

    python -m experiments.claims [--root DIR] [--quick] [--set key=value ...]

Four trainings of configs/learning-check.yaml, which differ only in train.method and train.pairing:
  rge                rge on the pairs as built, evaluated with reasoning
  baseline           baseline (no rationale), evaluated without reasoning
  rge-unpaired       rge on shuffled queries (every pair's query is another pair's; its oracle rationale and
                     targets kept: the paper's Fig. 4 "unpaired queries"), evaluated with reasoning
  oracle-unpaired    oracle-embed (the query embeds the ORACLE rationale) on the same shuffled queries
One line per claim, each with an exact p-value (rge_core/evaluation/significance.py):
  reasoning-helps    rge against baseline on the same eval queries, two-sided exact McNemar on the pairs
  oracle-leak        Fig. 4: the contrastive training accuracy of oracle-unpaired against rge-unpaired over the
                     last quarter of the logged steps, one-sided Fisher exact (the oracle rationale names the
                     target, so the loss falls without any query-target alignment; rge's own rationale cannot)
  control            rge-unpaired's eval P@1 against chance (1 / candidates), one-sided exact binomial: a model
                     trained on pairs that carry no signal must not beat chance (p >= 0.01 expected)
Artifacts go under --root (default ./claims-artifacts); a rerun reuses what exists. --quick is the CI smoke
run: the same code on a fraction of the data and steps, whose p-values mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow as pa

from data_schemas.io import read_table
from rge_core import stage_logs
from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config
from rge_core.config.schema import Config
from rge_core.evaluation.predictions import correct_queries, pair_predictions
from rge_core.evaluation.significance import binomial_tail, fisher_greater, mcnemar_exact

PRESET = Path(__file__).resolve().parent.parent / "configs" / "learning-check.yaml"
RUNS: dict[str, tuple[list[str], str]] = {  # name: (overrides, last stage)
    "rge": (["train.method=rge", "eval.reasoning=true"], "evaluate"),
    "baseline": (["train.method=baseline", "eval.reasoning=false"], "evaluate"),
    "rge-unpaired": (["train.method=rge", "train.pairing=shuffled-queries", "eval.reasoning=true"], "evaluate"),
    "oracle-unpaired": (["train.method=oracle-embed", "train.pairing=shuffled-queries"], "train"),
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
        return sum(correct_queries(self.predictions).values())

    def training_hits(self) -> tuple[int, int]:
        """(in-batch matches, rows) over the last 1/TAIL of the logged steps: accuracy x the global batch."""
        lines = self.artifact("train").read_bytes("metrics.jsonl").decode().splitlines()
        records = [json.loads(line) for line in lines]
        tail = records[-max(1, len(records) // TAIL) :]
        rows = self.config.train.batch_size * self.config.train.nproc
        return sum(round(r["accuracy"] * rows) for r in tail), rows * len(tail)


def run(name: str, root: Path, extra: list[str], terminal) -> Run:
    overrides, last = RUNS[name]
    config = load_config(PRESET, [f"run.artifacts_root={root}", *overrides, *extra])
    from rge_core.pipeline import run_pipeline  # heavy imports after argument parsing

    def stage_line(stage: str, result, seconds: float) -> None:
        print(f"  {name:<16} {stage:<9} {'reused' if result.reused else 'built'} {seconds:6.1f} s", file=terminal)

    ids = run_pipeline(config, [last], on_stage=stage_line)
    return Run(config, ArtifactStore.from_config(config), ids)


def reasoning_helps(rge: Run, baseline: Run) -> str:
    pairing = pair_predictions(rge.predictions, baseline.predictions)
    b = sum(bc[0] for bc in pairing.discordant.values())  # right with reasoning only
    c = sum(bc[1] for bc in pairing.discordant.values())
    paired = sum(pairing.paired.values())
    return (
        f"claim: reasoning-helps: rge {rge.correct / paired:.1%} vs baseline {baseline.correct / paired:.1%} "
        f"on {paired} paired queries (right only with reasoning {b}, only without {c}), p={mcnemar_exact(b, c):.2g}"
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("claims-artifacts"), help="artifact root")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: tiny sizes, meaningless p-values")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value for every run")
    args = parser.parse_args(argv)
    extra = [*(QUICK if args.quick else []), *args.overrides]
    started = time.monotonic()
    with stage_logs.quiet() as terminal:  # the libraries' output goes to each stage's log file
        runs = {name: run(name, args.root.resolve(), extra, terminal) for name in RUNS}
    print(reasoning_helps(runs["rge"], runs["baseline"]))
    print(oracle_leak(runs["oracle-unpaired"], runs["rge-unpaired"]))
    print(control(runs["rge-unpaired"]))
    print(f"claims: {len(RUNS)} runs in {time.monotonic() - started:.0f} s under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
