"""experiments/claims.py --quick (the CI smoke run): the four trainings go through the pipeline and the three
claim lines come out with exact p-values. The quick sizes make the p-values meaningless, so only their form
and what they are computed from are checked; docs/evaluation.md has the full run's figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rge_core.artifacts.store import ArtifactStore

CLAIM = re.compile(r"^claim: (?P<name>[\w-]+): .+, p=(?P<p>[0-9.e+-]+)$")


@pytest.mark.slow
def test_quick_claims_print_three_claims_from_four_trainings(tmp_path: Path):
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
    # Four distinct trained models: method and pairing each change the model's version.
    trained = [m for m in ArtifactStore(str(tmp_path)).list("model") if "dataset" in m.inputs]
    assert len({m.id for m in trained}) == 4
    assert sorted((m.config["method"], m.config["pairing"]) for m in trained) == [
        ("baseline", "paired"),
        ("oracle-embed", "shuffled-queries"),
        ("rge", "paired"),
        ("rge", "shuffled-queries"),
    ]
