"""experiments/claims.py --quick (the CI smoke run): the eight trainings go through the pipeline and the three
claim lines come out with exact p-values. The quick sizes make the p-values meaningless, so only their form
and what they are computed from are checked; docs/evaluation.md has the full run's figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rge_core.artifacts.local import checkpoint_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import folder_identity

CLAIM = re.compile(r"^claim: (?P<name>[\w-]+): .+, p=(?P<p>[0-9.e+-]+)$")


@pytest.mark.slow
def test_quick_claims_print_three_claims_from_eight_trainings(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.claims", "--quick", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    claims = {m["name"]: float(m["p"]) for m in map(CLAIM.match, done.stdout.splitlines()) if m}
    assert set(claims) == {"reasoning-helps", "oracle-leak", "control"}, done.stdout
    assert all(0.0 <= p <= 1.0 for p in claims.values())
    per_subset = re.search(r"^reasoning-helps per subset: rge vs baseline correct: (.+)$", done.stdout, re.MULTILINE)
    assert per_subset and per_subset[1].count("SynthCountColor") == 1, done.stdout
    stated = re.search(
        r"^facts: rge's eval rationales that reach the right conclusion: (.+)$", done.stdout, re.MULTILINE
    )
    assert stated and all(0 <= int(a) <= int(b) == 8 for a, b in re.findall(r"(\d+)/(\d+)", stated[1])), done.stdout
    scored = re.findall(r"^scores: ([\w-]+): P@1 .*\(SynthCountColor \d+/8 ", done.stdout, re.MULTILINE)
    assert scored == ["rge", "baseline", "blind-text", "blind-image", "rge-unpaired"], done.stdout
    # Eight distinct trained models: method, pairing and query view each change the model's version.
    store = ArtifactStore(str(tmp_path))
    trained = [m for m in store.list("model") if "dataset" in m.inputs]
    assert len({m.id for m in trained}) == 8
    assert sorted((m.config["method"], m.config["pairing"]) for m in trained) == [
        ("baseline", "paired"),
        ("baseline", "paired"),
        ("baseline", "paired"),
        ("lm", "paired"),
        ("lm", "shuffled-queries"),
        ("oracle-embed", "shuffled-queries"),
        ("rge", "paired"),
        ("rge", "shuffled-queries"),
    ]
    # Every contrastive run starts from the warm start of its own pairing, not from the random tiny model.
    warm = {
        m.config["pairing"]: folder_identity(checkpoint_folder(store, m.id))
        for m in trained
        if m.config["method"] == "lm"
    }
    for m in trained:
        if m.config["method"] != "lm":
            assert m.config["base_model"] == warm[m.config["pairing"]], m.config["method"]
