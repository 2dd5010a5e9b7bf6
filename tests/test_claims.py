"""experiments/claims.py --quick (the CI smoke run): the trainings and evaluations go through the pipeline, and the
gate, the seed pairs, the claim lines with exact p-values, the endpoint and the mechanism lines come out. The
quick sizes make the p-values meaningless, so only their form, what they are computed from and the endpoint
rule are checked; docs/evaluation.md has the full run's figures."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from experiments.claims_report import ALPHA, endpoint
from rge_core.artifacts.local import checkpoint_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import folder_identity
from rge_core.evaluation.significance import mcnemar_exact

CLAIM = re.compile(r"^claim: (?P<name>[\w-]+): .+, p=(?P<p>[0-9.e+-]+)$")
SEED = re.compile(r"^seed (?P<seed>\d): rge (?P<rge>\d+)/(?P<n>\d+) .* b=(?P<b>\d+), only without c=(?P<c>\d+)\), p=")


@pytest.mark.slow
def test_quick_claims_print_the_gate_seed_pairs_claims_endpoint_and_mechanism(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.claims", "--quick", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    lines = done.stdout.splitlines()
    claims = [(m["name"], float(m["p"])) for m in map(CLAIM.match, lines) if m]
    assert [name for name, _ in claims] == ["reasoning-helps", "oracle-leak", "control", "control"], done.stdout
    assert all(0.0 <= p <= 1.0 for _, p in claims)
    assert re.search(r"^gate: .* \d+/24 = .*; gate 75%: (passed|failed)$", done.stdout, re.M), done.stdout
    # Two seed pairs on the 24 eval queries; the stratified test pools their discordant queries.
    seeds = [m for m in map(SEED.match, lines) if m]
    assert [int(m["seed"]) for m in seeds] == [0, 1] and all(int(m["n"]) == 24 for m in seeds), done.stdout
    b, c = sum(int(m["b"]) for m in seeds), sum(int(m["c"]) for m in seeds)
    helps = next(line for line in lines if line.startswith("claim: reasoning-helps"))
    assert f"stratified exact McNemar b={b} c={c}, p={mcnemar_exact(b, c):.2g}" in helps
    assert sum(line.startswith("endpoint: ") for line in lines) == 1
    assert sum(line.startswith("mechanism: ") for line in lines) == 4
    assert sum(line.startswith("post hoc: ") for line in lines) == 3
    scored = re.findall(r"^scores: ([\w-]+): P@1 .*\(SynthRankFewest \d+/8 ", done.stdout, re.M)
    assert scored == [
        "gate",
        "rge-0",
        "baseline-0",
        "rge-1",
        "baseline-1",
        "rge-0-oracle",
        "rge-0-shuffled",
        "rge-1-oracle",
        "rge-1-shuffled",
        "rge-unpaired",
        "blind-text",
        "baseline-long",
        "rge-unpaired-from-paired",
    ], done.stdout
    store = ArtifactStore(str(tmp_path))
    trained = [m for m in store.list("model") if "dataset" in m.inputs]
    assert sorted((m.config["method"], m.config["pairing"], m.config["seed"]) for m in trained) == [
        ("baseline", "paired", 0),
        ("baseline", "paired", 0),  # blind-text (baseline-long is baseline-0 at the quick steps)
        ("baseline", "paired", 1),
        ("lm", "paired", 0),
        ("lm", "shuffled-queries", 0),
        ("oracle-embed", "shuffled-queries", 0),
        ("oracle-embed", "shuffled-queries", 0),  # post hoc, from the paired warm start
        ("rge", "paired", 0),
        ("rge", "paired", 1),
        ("rge", "shuffled-queries", 0),
        ("rge", "shuffled-queries", 0),  # post hoc, from the paired warm start
    ]
    # Every contrastive run starts from a warm start, not from the random tiny model: the pre-registered
    # unpaired runs from the unpaired one, everything else from the paired one.
    warm = [
        (folder_identity(checkpoint_folder(store, m.id)), m.config["pairing"])
        for m in trained
        if m.config["method"] == "lm"
    ]
    starts = Counter(
        (m.config["method"], m.config["pairing"], next(p for identity, p in warm if identity == m.config["base_model"]))
        for m in trained
        if m.config["method"] != "lm"
    )
    assert starts[("rge", "shuffled-queries", "shuffled-queries")] == 1
    assert starts[("oracle-embed", "shuffled-queries", "shuffled-queries")] == 1
    assert sum(n for (_, _, start), n in starts.items() if start == "paired") == len(trained) - 4
    # The mechanism evals embed the rge model's queries after the oracle's facts and after shuffled rationales.
    evals = {m.config.get("rationales"): m for m in store.list("eval")}
    assert set(evals) == {"generated", "given", "shuffled"}
    oracle = pq.read_table(Path(store.path(evals["given"].id)) / "predictions.parquet")
    assert set(oracle.column("rationale_check").to_pylist()) == {"right"}  # the facts reach their own conclusion


@pytest.mark.parametrize(
    ("passed", "controls", "ahead", "p", "verdict"),
    [
        (False, [0.5, 0.5], True, 1e-9, "endpoint: not tested: the warm start's rationales are below the gate"),
        (True, [0.5, 0.001], True, 1e-9, "endpoint: not tested: a control beat chance"),
        (True, [0.5, 0.5], False, 1e-9, "endpoint: not met: not every seed pair favours rge"),
        (True, [0.5, 0.5], True, ALPHA, f"endpoint: not met: stratified p={ALPHA:.2g} >= {ALPHA}"),
        (True, [ALPHA, 0.5], True, 0.001, "endpoint: met: "),
    ],
)
def test_the_endpoint_rule(passed, controls, ahead, p, verdict):
    assert endpoint(passed, controls, ahead, p, 3).startswith(verdict)
