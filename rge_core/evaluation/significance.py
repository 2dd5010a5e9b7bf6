"""Exact significance tests in integer arithmetic: McNemar (two evaluations on the same queries), the binomial
tail (a score against a chance level) and Fisher's one-sided test (two success rates on different trials)."""

from __future__ import annotations

from fractions import Fraction
from math import comb

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


def binomial_tail(successes: int, trials: int, chance: Fraction) -> float:
    """P(X >= successes) for X ~ Bin(trials, chance): how likely a model that guesses does as well."""
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    miss = 1 - chance
    return float(sum(comb(trials, k) * chance**k * miss ** (trials - k) for k in range(successes, trials + 1)))


def fisher_greater(hits_a: int, trials_a: int, hits_b: int, trials_b: int) -> float:
    """One-sided Fisher exact p-value that run a's success rate exceeds run b's: with the margins fixed,
    P(a gets >= hits_a of all hits_a + hits_b successes) under the hypergeometric law."""
    if not (0 <= hits_a <= trials_a and 0 <= hits_b <= trials_b):
        raise ValueError(f"need 0 <= hits <= trials, got {hits_a}/{trials_a} and {hits_b}/{trials_b}")
    hits, trials = hits_a + hits_b, trials_a + trials_b
    upper = min(hits, trials_a)
    tail = sum(comb(hits, k) * comb(trials - hits, trials_a - k) for k in range(hits_a, upper + 1))
    return float(Fraction(tail, comb(trials, trials_a)))
