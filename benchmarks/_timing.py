"""Shared timing for the benchmarks: warmup + repeats, the median, and a table of ratios against a baseline
measured in the same run (absolute times on shared machines are noise; ratios are the figures to compare).

    baseline, batched = measure([Case("one at a time", run_single, 64, "queries"),
                                 Case("batched", run_batched, 64, "queries")])
    print_table("query encoding", baseline, [batched])

The ratio column is throughput against the baseline's throughput, so >1 means faster than the baseline;
with equal item counts that is the plain speed-up (baseline seconds / seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    name: str
    items: int
    unit: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.items / self.median

    def ratio(self, baseline: Timing) -> float:
        if baseline.unit != self.unit:
            raise ValueError(f"cannot compare {self.unit}/s with {baseline.unit}/s")
        return self.rate / baseline.rate


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[[], object]
    items: int  # processed by one call of fn
    unit: str


def measure(cases: Sequence[Case], warmup: int = 1, repeats: int = 3) -> list[Timing]:
    """Time every case `repeats` times after `warmup` untimed calls. Rounds are interleaved (A B A B ...), so
    load that comes and goes on a shared machine hits the baseline and the candidates alike."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        for case in cases:
            case.fn()
    seconds: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for case, times in zip(cases, seconds, strict=True):
            start = time.perf_counter()
            case.fn()
            times.append(time.perf_counter() - start)
    return [Timing(case.name, case.items, case.unit, tuple(times)) for case, times in zip(cases, seconds, strict=True)]


def ratio_line(timing: Timing, baseline: Timing) -> str:
    """The machine-greppable summary: `ratio: <name> vs <baseline>: <x>x`."""
    return f"ratio: {timing.name} vs {baseline.name}: {timing.ratio(baseline):.2f}x"


def print_table(title: str, baseline: Timing, others: Sequence[Timing]) -> None:
    rows = [(f"{baseline.name} (baseline)", baseline), *((t.name, t) for t in others)]
    width = max(len(label) for label, _ in rows)
    print(f"\n{title}")
    print(f"  {'name':<{width}}  {'median s':>9}  {'items/s':>18}  {'ratio':>7}")
    for label, timing in rows:
        rate = f"{timing.rate:.1f} {timing.unit}/s"
        print(f"  {label:<{width}}  {timing.median:>9.4f}  {rate:>18}  {timing.ratio(baseline):>6.2f}x")
    for timing in others:
        print(ratio_line(timing, baseline))


def parse_args(parser: argparse.ArgumentParser, quick: dict) -> argparse.Namespace:
    """Parse the command line; `--quick` (the smoke-test size) swaps in `quick` as the defaults."""
    parser.add_argument("--quick", action="store_true", help="smallest sizes, one repeat (smoke test)")
    args = parser.parse_args()
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args()
    return args
