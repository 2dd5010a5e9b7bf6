"""The learning check (issue 5): the tiny random model, trained by the train stage on the synthetic
benchmark with configs/learning-check.yaml, reaches Precision@1 clearly above chance on the synthetic eval
split, for `rge` (reasoning at eval) and `baseline` (no reasoning). "Clearly" is a one-sided exact binomial
test over all eval queries against the chance level 1 / candidates, at p < ALPHA. The untrained model is
evaluated too, as a control that the same test fails without learning. No claim on which method wins.

Takes about five minutes on 2 CPU cores (both trainings dominate); see docs/evaluation.md.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config, to_dict
from rge_core.config.schema import Config
from rge_core.evaluation.significance import binomial_tail
from rge_core.pipeline import run_pipeline
from rge_core.strict_yaml import load_strict
from tests.helpers import leaf_keys

PRESET = Path(__file__).resolve().parent.parent / "configs" / "learning-check.yaml"
ALPHA = 0.01
METHODS = {
    "rge": ["train.method=rge", "eval.reasoning=true"],
    "baseline": ["train.method=baseline", "eval.reasoning=false"],
}


def pooled_p_at_1(store: ArtifactStore, eval_id: str) -> tuple[int, int]:
    """(correct queries, queries) over every dataset of an eval artifact."""
    datasets = json.loads(store.get(eval_id).read_bytes("results.json"))["datasets"].values()
    correct = sum(round(d["metrics"]["precision@1"] * d["num_queries"]) for d in datasets)
    return correct, sum(d["num_queries"] for d in datasets)


def test_preset_spells_out_every_key() -> None:
    assert leaf_keys(load_strict(PRESET.read_text())) == leaf_keys(to_dict(Config()))


@pytest.mark.slow
def test_trained_tiny_model_beats_chance_with_and_without_reasoning(tmp_path: Path) -> None:
    root = f"run.artifacts_root={tmp_path / 'artifacts'}"
    report = {}
    for method, overrides in METHODS.items():
        config = load_config(PRESET, [root, *overrides])
        store = ArtifactStore.from_config(config)
        ids = run_pipeline(config, ["evaluate"])
        report[method] = pooled_p_at_1(store, ids["evaluate"])
    # Control: the untrained tiny model (the base checkpoint of both runs), without reasoning.
    untrained = load_config(PRESET, [root, f"eval.model={ids['model']}", "eval.reasoning=false"])
    report["untrained"] = pooled_p_at_1(store, run_pipeline(untrained, ["evaluate"])["evaluate"])

    chance = Fraction(1, config.data.synth.candidates)  # ties count as misses: a constant model scores 0
    p_values = {name: binomial_tail(correct, queries, chance) for name, (correct, queries) in report.items()}
    print(f"\nlearning check: chance {float(chance):.1%}, alpha {ALPHA}")
    for name, (correct, queries) in report.items():
        print(f"  {name:9s} P@1 {correct}/{queries} = {correct / queries:.1%}  p = {p_values[name]:.2g}")
    assert p_values["untrained"] >= ALPHA, "the untrained model passes: the check cannot tell learning from chance"
    assert p_values["rge"] < ALPHA and p_values["baseline"] < ALPHA, report
