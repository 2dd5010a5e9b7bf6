"""Seeds derived from their parts (a base seed, a step, a rank, a pair, a row): the same parts give the same
seed in any process, order or resumed run, and 32 bits suit every engine (torch, vLLM, numpy)."""

from __future__ import annotations

import hashlib


def derived_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "big")
