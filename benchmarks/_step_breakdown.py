"""Where a training step's time goes: each step's `StepOutput.seconds` plus `optimizer` and `total` (the
whole step's wall time), averaged over the timed steps and printed as seconds and shares of the step."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

PARTS = {
    "weight sync": ("weight_sync",),
    "generation": ("generation",),
    "forwards": ("lm_forward", "embed_forward"),
    "backward": ("backward",),
    "optimizer": ("optimizer",),
}


def print_breakdown(records: Mapping[str, Sequence[Mapping[str, float]]]) -> None:
    """`records`: per method, one dict of seconds per timed step."""
    print("\nwhere the step time goes (mean over the timed steps; shares of the whole step)")
    width = max(len(name) for name in records)
    print(f"  {'method':<{width}}  {'step s':>7}" + "".join(f"  {part:>18}" for part in PARTS) + f"  {'other':>7}")
    for name, steps in records.items():
        step = statistics.mean(r["total"] for r in steps)
        means = {
            part: statistics.mean(sum(r.get(key, 0.0) for key in keys) for r in steps) for part, keys in PARTS.items()
        }
        cells = "".join(f"  {means[p]:>8.4f} s {means[p] / step:>6.1%}" for p in PARTS)
        print(f"  {name:<{width}}  {step:>7.4f}{cells}  {1 - sum(means.values()) / step:>7.1%}")
