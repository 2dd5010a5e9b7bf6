"""Every benchmark (`benchmarks/bench_*.py`) runs end to end with `--quick` and prints its ratio lines. No timing
is asserted: benchmarks report figures, they never pass or fail on them.

    .venv/bin/python -m pytest tests/test_benchmarks_smoke.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))
RATIO_LINE = re.compile(r"^ratio: .+ vs .+: \d+\.\d\dx$")

sys.path.insert(0, str(BENCHMARKS))
from _timing import Case, Timing, measure  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_quick_run_prints_ratios(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS.parent,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ratio_lines = [line for line in result.stdout.splitlines() if line.startswith("ratio:")]
    assert ratio_lines, result.stdout
    assert all(RATIO_LINE.match(line) for line in ratio_lines), ratio_lines


def test_ratio_is_throughput_against_the_baseline() -> None:
    baseline = Timing("one", items=10, unit="q", seconds=(4.0, 2.0, 9.0))  # median 4 s: 2.5 q/s
    batched = Timing("batched", items=20, unit="q", seconds=(1.0,))  # 20 q/s
    assert batched.ratio(baseline) == pytest.approx(8.0)
    with pytest.raises(ValueError):
        batched.ratio(Timing("other", items=1, unit="rows", seconds=(1.0,)))


def test_measure_warms_up_then_interleaves_rounds() -> None:
    calls: list[str] = []
    first, second = measure(
        [Case("a", lambda: calls.append("a"), 1, "x"), Case("b", lambda: calls.append("b"), 1, "x")],
        warmup=1,
        repeats=2,
    )
    assert calls == ["a", "b"] * 3
    assert (len(first.seconds), len(second.seconds)) == (2, 2)
