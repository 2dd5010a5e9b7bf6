"""Every benchmark (`benchmarks/bench_*.py`) runs end to end with `--quick` and prints its ratio lines, and those
lines say what the timings printed in the same run say: each ratio is the one its table's medians and rates
give (within the printed rounding), and the comparisons named are the ones the benchmark defines (the checker
is tests/benchmark_output.py; here it is also run on made-up outputs it must reject). `_timing`'s `measure`
and `Timing` are checked against an independent computation on a fake clock. No timing is asserted:
benchmarks report figures, they never pass or fail on them.

    .venv/bin/python -m pytest tests/test_benchmarks_smoke.py -q
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.benchmark_output import BENCHMARKS, agrees, check_output, check_table, expected_comparisons, explain, tables

SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))

sys.path.insert(0, str(BENCHMARKS))
import _timing  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
from _timing import Case, Timing, measure  # noqa: E402

# ---------------------------------------------------------------------------------------------- the smoke runs


def test_every_benchmark_has_its_comparisons_defined_here() -> None:
    for script in SCRIPTS:
        assert expected_comparisons(script), script


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_quick_run_prints_ratios_that_its_timings_back(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS.parent,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    check_output(script, result.stdout)


# ------------------------------------------------------------------------------------- the checker on made-up runs

GOOD_RUN = """\
write_benchmark: 48 rows, 72 PNGs

scaling (rows/s; baseline: the same writer at 1/4 of the rows)
  name                                  median s             items/s    ratio
  write_benchmark 1/4 size (baseline)     0.0622        193.1 rows/s    1.00x
  write_benchmark                         0.0894        536.7 rows/s    2.78x
ratio: write_benchmark vs write_benchmark 1/4 size: 2.78x

PNG floor (PNGs/s; baseline: plain PIL loop, same PNG count)
  name                            median s             items/s    ratio
  plain PIL PNG loop (baseline)     0.0231       3113.5 PNGs/s    1.00x
  write_benchmark                   0.0894        805.1 PNGs/s    0.26x
ratio: write_benchmark vs plain PIL PNG loop: 0.26x
"""


@pytest.mark.parametrize(
    "broken",
    [
        ("size: 2.78x", "size: 3.78x"),  # a ratio line that its table does not back
        ("rows/s    2.78x", "rows/s    2.87x"),  # a table ratio that its rates do not give
        ("0.26x", "3.85x"),  # the inverse ratio (baseline over candidate), in the table and the line
        ("805.1 PNGs/s", "806.1 PNGs/s"),  # a rate that is not a whole item count over the median
        ("0.0894        805.1 PNGs/s", "0.0899        800.9 PNGs/s"),  # one case, two medians
        ("plain PIL PNG loop", "PIL loop"),  # a comparison the benchmark does not define
        ("ratio: write_benchmark vs plain PIL PNG loop: 0.26x\n", ""),  # a comparison missing
        ("ratio: write_benchmark vs plain", "ratio: write_benchmark 1/4 size vs plain"),  # a case not in its table
    ],
)
def test_the_output_checker_catches(broken: tuple[str, str]) -> None:
    check_output("bench_synth.py", GOOD_RUN)
    old, new = broken
    assert old in GOOD_RUN
    with pytest.raises(AssertionError):
        check_output("bench_synth.py", GOOD_RUN.replace(old, new))


def test_the_output_checker_backs_time_ratios_seconds_and_backend_rates() -> None:
    step = """\
training step, steps/s
  name                  median s             items/s    ratio
  baseline (baseline)     0.4774         2.1 steps/s    1.00x
  rge                     1.5423         0.6 steps/s    0.31x
ratio: rge vs baseline: 0.31x
ratio: rge step time vs baseline: 3.23x
"""
    lines = step.splitlines()
    assert agrees("3.23", explain(lines[-1], len(lines) - 1, lines, tables(lines)))
    assert not agrees("0.31", explain(lines[-1], len(lines) - 1, lines, tables(lines)))
    cached = (
        "cold       1.20 s   chunks encoded: 3\ncached     0.40 s   chunks encoded: 0\nratio: cached vs cold: 3.00x"
    )
    lines = cached.splitlines()
    assert agrees("3.00", explain(lines[-1], 2, lines, [])) and not agrees("0.33", explain(lines[-1], 2, lines, []))
    backends = """\
prompts/rge-terse    xgrammar       1.76     146        83     4/4
prompts/rge-terse    guidance       5.22     146        28     4/4
ratio: prompts/rge-terse guidance vs xgrammar: 0.34x"""
    lines = backends.splitlines()
    assert agrees("0.34", explain(lines[-1], 2, lines, [])) and not agrees("2.98", explain(lines[-1], 2, lines, []))
    with pytest.raises(AssertionError):  # a printed rate that is not tokens / seconds
        explain(lines[-1], 2, [lines[0].replace(" 83 ", " 95 "), *lines[1:]], [])
    with pytest.raises(AssertionError):  # a ratio with nothing printed behind it
        explain("ratio: a vs b: 1.00x", 0, ["ratio: a vs b: 1.00x"], [])


# ------------------------------------------------------------------------------------------------- _timing


class FakeClock:
    """time.perf_counter stand-in: time moves only when a case runs, by the next of that case's durations."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def case(self, durations: list[float], calls: list[str], name: str):
        pending = iter(durations)

        def run() -> None:
            calls.append(name)
            self.now += next(pending)

        return run


def _median(values: list[float]) -> float:
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@pytest.mark.parametrize("repeats", [3, 4])
def test_measure_times_each_call_after_the_warmup_on_a_fake_clock(monkeypatch, repeats: int) -> None:
    clock, calls = FakeClock(), []
    monkeypatch.setattr(time, "perf_counter", clock)
    warmup = [500.0, 700.0]  # never in a timing
    a_times = [2.0, 8.0, 3.0, 5.0][:repeats]
    b_times = [1.0, 0.5, 4.0, 0.25][:repeats]
    cases = [
        Case("a", clock.case([warmup[0], *a_times], calls, "a"), 10, "q"),
        Case("b", clock.case([warmup[1], *b_times], calls, "b"), 20, "q"),
    ]
    first, second = measure(cases, warmup=1, repeats=repeats)
    assert calls == ["a", "b"] * (1 + repeats)  # warmup, then interleaved rounds
    assert (first.name, first.items, first.unit, first.seconds) == ("a", 10, "q", tuple(a_times))
    assert (second.name, second.items, second.unit, second.seconds) == ("b", 20, "q", tuple(b_times))
    assert first.median == _median(a_times) and second.median == _median(b_times)
    assert first.rate == pytest.approx(10 / _median(a_times)) and second.rate == pytest.approx(20 / _median(b_times))
    expected = (20 / _median(b_times)) / (10 / _median(a_times))
    assert second.ratio(first) == pytest.approx(expected) and first.ratio(first) == pytest.approx(1.0)
    assert _timing.ratio_line(second, first) == f"ratio: b vs a: {expected:.2f}x"


def test_measure_with_real_sleeps_counts_each_call_once() -> None:
    """Against the real clock: every timing covers its call's sleep (a lower bound only, no upper threshold)."""
    (timing,) = measure([Case("sleep", lambda: time.sleep(0.01), 1, "x")], warmup=0, repeats=2)
    assert len(timing.seconds) == 2 and min(timing.seconds) >= 0.01


def test_measure_rejects_no_repeats_and_warmup_zero_times_every_call(monkeypatch) -> None:
    with pytest.raises(ValueError):
        measure([Case("a", lambda: None, 1, "x")], repeats=0)
    clock, calls = FakeClock(), []
    monkeypatch.setattr(time, "perf_counter", clock)
    (timing,) = measure([Case("a", clock.case([1.5, 2.5], calls, "a"), 3, "x")], warmup=0, repeats=2)
    assert calls == ["a", "a"] and timing.seconds == (1.5, 2.5) and timing.median == 2.0


def test_ratio_is_throughput_against_the_baseline() -> None:
    baseline = Timing("one", items=10, unit="q", seconds=(4.0, 2.0, 9.0))  # median 4 s: 2.5 q/s
    batched = Timing("batched", items=20, unit="q", seconds=(1.0,))  # 20 q/s
    assert batched.ratio(baseline) == pytest.approx(8.0)
    same_items = Timing("fast", items=10, unit="q", seconds=(0.5, 1.0))  # equal items: baseline s / s
    assert same_items.ratio(baseline) == pytest.approx(4.0 / 0.75)
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


def test_print_table_prints_the_timings_figures(capsys) -> None:
    """print_table's rows and ratio lines, read back with the parser the smoke runs use, are the Timings'."""
    baseline = Timing("one at a time", items=8, unit="queries", seconds=(2.0, 4.0, 3.0))
    batched = Timing("batched", items=8, unit="queries", seconds=(0.5, 0.25, 0.75))
    other = Timing("other", items=16, unit="queries", seconds=(1.25,))
    _timing.print_table("title", baseline, [batched, other])
    lines = capsys.readouterr().out.splitlines()
    (table,) = tables(lines)
    assert table.title == "title" and [r.name for r in table.rows] == ["one at a time", "batched", "other"]
    for row, timing in zip(table.rows, (baseline, batched, other), strict=True):
        assert float(row.median) == pytest.approx(timing.median) and row.unit == "queries"
        assert float(row.rate) == pytest.approx(timing.items / timing.median, abs=0.05)
        assert row.items() == timing.items
    assert [line for line in lines if line.startswith("ratio:")] == [
        "ratio: batched vs one at a time: 6.00x",  # 3 s / 0.5 s, equal items
        "ratio: other vs one at a time: 4.80x",  # (16 / 1.25) / (8 / 3)
    ]
    check_table(table)


def test_quick_swaps_in_the_smoke_sizes(monkeypatch) -> None:
    import argparse

    def parse(*argv: str):
        parser = argparse.ArgumentParser()
        parser.add_argument("--queries", type=int, default=64)
        monkeypatch.setattr(sys, "argv", ["bench", *argv])
        return _timing.parse_args(parser, {"queries": 4})

    assert parse().queries == 64 and not parse().quick
    assert parse("--quick").queries == 4
    assert parse("--quick", "--queries", "9").queries == 9  # an explicit size still wins
