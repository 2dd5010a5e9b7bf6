"""The lines experiments/claims.py prints: the gate, each seed pair, the claims with their exact p-values
(rge_core/evaluation/significance.py), the pre-registered endpoint, the mechanism and the scores.

The endpoint, fixed before the full run (docs/evaluation.md): reasoning helps if
  1. the gate passed: the warm start's greedy rationales reach the facts' conclusion on at least GATE of the
     dev split (else the endpoint is not tested: the rationales are not right often enough to help),
  2. both controls stay at chance: rge trained on shuffled pairs and the blind-text baseline each have
     p >= ALPHA against chance (else the setup leaks and the endpoint is not tested),
  3. every seed pair favours rge (rge's P@1 above the baseline's of the same seed, on the same queries), and
  4. the stratified exact McNemar test over the seed pairs gives p < ALPHA (two-sided): conditional on each
     pair's discordant queries, b_s ~ Bin(b_s + c_s, 1/2) under no difference, so the b_s add up to
     Bin(sum of the b_s + c_s, 1/2).
"""

from __future__ import annotations

import functools
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import pyarrow as pa

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.schema import Config
from rge_core.evaluation.predictions import Pairing, correct_queries, pair_predictions, read_predictions
from rge_core.evaluation.significance import binomial_tail, fisher_greater, mcnemar_exact

ALPHA = 0.01
GATE = Fraction(3, 4)  # share of the dev split's greedy rationales that must reach the right conclusion
TAIL = 4  # oracle-leak: the last 1/TAIL of the logged steps


@dataclass(frozen=True)
class Run:
    name: str
    config: Config
    store: ArtifactStore
    ids: dict[str, str | None]

    def artifact(self, stage: str):
        version = self.ids[stage]
        if version is None:
            raise LookupError(f"{self.name}: no {stage} artifact")
        return self.store.get(version)

    @functools.cached_property
    def predictions(self) -> pa.Table:
        return read_predictions(self.artifact("evaluate").file_url("predictions.parquet"))

    @functools.cached_property
    def right(self) -> dict[tuple[str, str], bool]:
        return correct_queries(self.predictions)

    @property
    def correct(self) -> int:
        return sum(self.right.values())

    @property
    def queries(self) -> int:
        return len(self.right)

    @functools.cached_property
    def checks(self) -> dict[tuple[str, str], str]:
        """(dataset, item_id) -> whether the query's rationale reaches the facts' conclusion (right / wrong)."""
        columns = self.predictions.select(["dataset", "item_id", "rationale_check"]).to_pydict()
        return dict(
            zip(zip(columns["dataset"], columns["item_id"], strict=True), columns["rationale_check"], strict=True)
        )

    def training_hits(self) -> tuple[int, int]:
        """(in-batch matches, rows) over the last 1/TAIL of the logged steps: accuracy x the global batch."""
        lines = self.artifact("train").read_bytes("metrics.jsonl").decode().splitlines()
        records = [json.loads(line) for line in lines]
        tail = records[-max(1, len(records) // TAIL) :]
        rows = self.config.train.batch_size * self.config.train.launch.nproc
        return sum(round(r["accuracy"] * rows) for r in tail), rows * len(tail)


def _pct(right: int, total: int) -> str:
    return f"{right}/{total} = {right / total:.1%}" if total else f"{right}/0"


def _discordant(pairing: Pairing) -> tuple[int, int]:
    return sum(b for b, _ in pairing.discordant.values()), sum(c for _, c in pairing.discordant.values())


def gate(run: Run) -> tuple[str, bool]:
    checks = Counter(run.checks.values())
    by_subset = Counter(dataset for (dataset, _), check in run.checks.items() if check == "right")
    subsets = Counter(dataset for dataset, _ in run.checks)
    passed = checks["right"] >= GATE * run.queries
    parts = " ".join(f"{s} {by_subset[s]}/{subsets[s]}" for s in sorted(subsets))
    return (
        f"gate: the warm start's greedy rationales reach the right conclusion on {_pct(checks['right'], run.queries)} "
        f"of the dev split ({parts}); gate {float(GATE):.0%}: {'passed' if passed else 'failed'}",
        passed,
    )


@dataclass(frozen=True)
class SeedPair:
    seed: int
    rge: Run
    baseline: Run

    @functools.cached_property
    def pairing(self) -> Pairing:
        return pair_predictions(self.rge.predictions, self.baseline.predictions)

    @property
    def difference(self) -> float:
        """rge's P@1 minus the baseline's, in points."""
        return 100 * (self.rge.correct - self.baseline.correct) / self.rge.queries

    def line(self) -> str:
        b, c = _discordant(self.pairing)
        return (
            f"seed {self.seed}: rge {_pct(self.rge.correct, self.rge.queries)} vs baseline "
            f"{_pct(self.baseline.correct, self.baseline.queries)} ({self.difference:+.1f} points; right only with "
            f"reasoning b={b}, only without c={c}), p={mcnemar_exact(b, c):.2g}"
        )


def stratified(pairings: list[Pairing]) -> tuple[int, int, float]:
    """(sum of b, sum of c, two-sided exact p) of McNemar stratified over the pairings."""
    b = sum(_discordant(p)[0] for p in pairings)
    c = sum(_discordant(p)[1] for p in pairings)
    return b, c, mcnemar_exact(b, c)


def reasoning_helps(pairs: list[SeedPair]) -> tuple[str, bool, float]:
    """The claim line, whether every pair favours rge, and the stratified p."""
    b, c, p = stratified([pair.pairing for pair in pairs])
    differences = [pair.difference for pair in pairs]
    ahead = sum(d > 0 for d in differences)
    sd = statistics.stdev(differences) if len(differences) > 1 else 0.0
    rge = statistics.mean(100 * pair.rge.correct / pair.rge.queries for pair in pairs)
    baseline = statistics.mean(100 * pair.baseline.correct / pair.baseline.queries for pair in pairs)
    line = (
        f"claim: reasoning-helps: rge {rge:.1f}% vs baseline {baseline:.1f}% (means over {len(pairs)} seed pairs of "
        f"{pairs[0].rge.queries} queries), P@1 difference {statistics.mean(differences):+.1f} points (sd {sd:.1f}), "
        f"rge ahead in {ahead} of {len(pairs)} pairs, stratified exact McNemar b={b} c={c}, p={p:.2g}"
    )
    return line, ahead == len(pairs), p


def oracle_leak(oracle: Run, rge: Run) -> str:
    hits_o, rows_o = oracle.training_hits()
    hits_r, rows_r = rge.training_hits()
    return (
        f"claim: oracle-leak: unpaired queries, contrastive training accuracy over the last 1/{TAIL} of the steps: "
        f"oracle-embed {hits_o / rows_o:.1%} vs rge {hits_r / rows_r:.1%} ({rows_o} rows each), "
        f"p={fisher_greater(hits_o, rows_o, hits_r, rows_r):.2g}"
    )


def control(run: Run, what: str) -> tuple[str, float]:
    chance = Fraction(1, run.config.data.synth.candidates)
    p = binomial_tail(run.correct, run.queries, chance)
    line = f"claim: control: {what}, eval P@1 {_pct(run.correct, run.queries)} vs chance {float(chance):.1%}, p={p:.2g}"
    return line, p


def endpoint(passed_gate: bool, controls: list[float], all_ahead: bool, p: float, pairs: int) -> str:
    """The pre-registered rule (module docstring) applied."""
    if not passed_gate:
        return "endpoint: not tested: the warm start's rationales are below the gate"
    if min(controls) < ALPHA:
        return f"endpoint: not tested: a control beat chance (p < {ALPHA}), so the setup leaks"
    reasons = [] if all_ahead else [f"not every seed pair favours rge ({pairs} pairs)"]
    reasons += [] if p < ALPHA else [f"stratified p={p:.2g} >= {ALPHA}"]
    if reasons:
        return "endpoint: not met: " + "; ".join(reasons)
    return f"endpoint: met: gate passed, controls at chance, rge ahead in every seed pair, p={p:.2g} < {ALPHA}"


def _where(pairs: list[SeedPair], check: str) -> tuple[int, int, int, int]:
    """Pooled over the seed pairs, on the queries whose rge rationale is `check` (right / wrong): (rge correct,
    baseline correct, right with reasoning only, right without it only)."""
    rge_right = baseline_right = b = c = 0
    for pair in pairs:
        for key, status in pair.rge.checks.items():
            if status == check and key in pair.baseline.right:
                mine, theirs = pair.rge.right[key], pair.baseline.right[key]
                rge_right, baseline_right = rge_right + mine, baseline_right + theirs
                b, c = b + (mine and not theirs), c + (theirs and not mine)
    return rge_right, baseline_right, b, c


def mechanism(pairs: list[SeedPair], runs: dict[str, Run]) -> list[str]:
    lines = []
    counts = {
        check: sum(Counter(status for status in pair.rge.checks.values())[check] for pair in pairs)
        for check in ("right", "wrong")
    }
    right = {check: _where(pairs, check) for check in ("right", "wrong")}
    (hits_r, base_r, b_r, c_r), (hits_w, base_w, b_w, c_w) = right["right"], right["wrong"]
    lines.append(
        f"mechanism: rge's P@1 where its rationale reaches the right conclusion {_pct(hits_r, counts['right'])} vs "
        f"where not {_pct(hits_w, counts['wrong'])} (pooled over seeds), one-sided Fisher "
        f"p={fisher_greater(hits_r, counts['right'], hits_w, counts['wrong']):.2g}"
    )
    lines.append(
        f"mechanism: rge vs baseline where rge's rationale is right {_pct(hits_r, counts['right'])} vs "
        f"{_pct(base_r, counts['right'])} (b={b_r} c={c_r} p={mcnemar_exact(b_r, c_r):.2g}); where it is wrong "
        f"{_pct(hits_w, counts['wrong'])} vs {_pct(base_w, counts['wrong'])} "
        f"(b={b_w} c={c_w} p={mcnemar_exact(b_w, c_w):.2g})"
    )
    for suffix, what in (("oracle", "the oracle's facts"), ("shuffled", "another query's rationale")):
        others = [runs[f"{pair.rge.name}-{suffix}"] for pair in pairs]
        b, c, p = stratified(
            [
                pair_predictions(other.predictions, pair.rge.predictions)
                for other, pair in zip(others, pairs, strict=True)
            ]
        )
        mean_other = statistics.mean(100 * o.correct / o.queries for o in others)
        mean_own = statistics.mean(100 * pair.rge.correct / pair.rge.queries for pair in pairs)
        lines.append(
            f"mechanism: the rge models embedding {what}: P@1 {mean_other:.1f}% vs {mean_own:.1f}% after their own "
            f"(means over seeds; stratified McNemar b={b} c={c} p={p:.2g})"
        )
    return lines


def post_hoc(runs: dict[str, Run], first_seed: int) -> list[str]:
    """Lines added after the pre-registered run: none of them decides the endpoint."""
    leak = oracle_leak(runs["oracle-unpaired-from-paired"], runs["rge-unpaired-from-paired"])
    unpaired, _ = control(runs["rge-unpaired-from-paired"], "rge trained on shuffled queries")
    long, short = runs["baseline-long"], runs[f"baseline-{first_seed}"]
    return [
        "post hoc: from the paired warm start, " + leak.removeprefix("claim: oracle-leak: "),
        "post hoc: from the paired warm start, " + unpaired.removeprefix("claim: control: "),
        f"post hoc: baseline with three times the steps (seed {first_seed}): P@1 {_pct(long.correct, long.queries)} "
        f"vs {_pct(short.correct, short.queries)} with the endpoint's steps",
    ]


def scores(run: Run) -> str:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for (subset, _), correct in run.right.items():
        right[subset] += correct
        total[subset] += 1
    subsets = " ".join(f"{subset} {right[subset]}/{total[subset]}" for subset in sorted(total))
    return f"scores: {run.name}: P@1 {run.correct / run.queries:.1%} ({subsets})"


def report(runs: dict[str, Run], seeds: tuple[int, ...]) -> list[str]:
    gate_line, passed = gate(runs["gate"])
    pairs = [SeedPair(seed, runs[f"rge-{seed}"], runs[f"baseline-{seed}"]) for seed in seeds]
    claim, all_ahead, p = reasoning_helps(pairs)
    unpaired, p_unpaired = control(runs["rge-unpaired"], "rge trained on shuffled queries")
    blind, p_blind = control(runs["blind-text"], "baseline on the query text alone (blank images)")
    return [
        gate_line,
        *(pair.line() for pair in pairs),
        claim,
        oracle_leak(runs["oracle-unpaired"], runs["rge-unpaired"]),
        unpaired,
        blind,
        endpoint(passed, [p_unpaired, p_blind], all_ahead, p, len(pairs)),
        *mechanism(pairs, runs),
        *post_hoc(runs, seeds[0]),
        *(scores(run) for run in runs.values() if run.ids.get("evaluate")),
    ]
