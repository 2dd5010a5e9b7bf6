"""What encoding a list of eval items gives: one row per item, a zero row and its reason where it failed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Encoded:
    embeddings: np.ndarray  # [n, hidden], L2-normalised, float32
    rationales: list[str]
    num_tokens: list[int]
    budget_hit: list[bool]
    chunks_encoded: int = 0  # chunks computed now (the rest came from the cache)
    errors: list[str] = field(default_factory=list)  # per item: why it could not be encoded, "" when it was
