"""Paired significance of two evaluations on the same queries: the exact McNemar test."""

from __future__ import annotations

from fractions import Fraction

MCNEMAR_NOTE = (
    "p: exact McNemar test, two-sided: the discordant queries b and c against Bin(b + c, 1/2), "
    "p = min(1, 2 P[X <= min(b, c)]), 1 when b + c = 0."
)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of `b` queries right only in run a and `c` right only in run b.
    Exact integer arithmetic (the binomial tail in units of 2^-n), so no precision is lost for any n."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    term, tail = 1, 0  # term = C(n, i), updated in place: one multiplication per step instead of math.comb each
    for i in range(k + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))
