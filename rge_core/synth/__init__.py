"""Procedurally generated benchmark of coloured-shape scenes in MMEB's train and eval layouts, small enough
that the whole pipeline runs and learns on a laptop. Entry point: `rge synth OUT` or `write_benchmark`."""

from __future__ import annotations

from rge_core.synth.writer import write_benchmark

__all__ = ["write_benchmark"]
