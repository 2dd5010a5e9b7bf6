"""The exact tests against independent computations: every outcome enumerated for small n (McNemar's coins, the
binomial's weighted outcomes, Fisher's ways to deal the hits between two runs), known values, and a log-space
binomial tail for large n."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from rge_core.evaluation.significance import binomial_tail, fisher_greater, mcnemar_exact


def _enumerated(b: int, c: int) -> float:
    """Two-sided p by listing all 2^n discordant outcomes: the share at least as extreme as (b, c) on either side."""
    n, k = b + c, min(b, c)
    extreme = sum(1 for flips in itertools.product((0, 1), repeat=n) if min(sum(flips), n - sum(flips)) <= k)
    return extreme / 2**n


@pytest.mark.parametrize("n", range(0, 13))
def test_matches_every_outcome_enumerated_for_small_n(n):
    for b in range(n + 1):
        assert mcnemar_exact(b, n - b) == pytest.approx(_enumerated(b, n - b), rel=1e-12)


def test_known_values():
    assert mcnemar_exact(0, 6) == 0.03125  # 2 * (1/2)^6
    assert mcnemar_exact(6, 0) == 0.03125
    assert mcnemar_exact(10, 10) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # (C(10,0) + C(10,1)) / 2^10, doubled


def _log_tail(b: int, c: int) -> float:
    """2 P[X <= min(b, c)] by a log-sum-exp over lgamma terms: float arithmetic, another route."""
    n, k = b + c, min(b, c)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, 2 * math.exp(top) * sum(math.exp(x - top) for x in logs))


@pytest.mark.parametrize(("b", "c"), [(480, 520), (4000, 4200), (120, 180), (7, 30)])
def test_large_counts_match_a_log_space_sum(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(_log_tail(b, c), rel=1e-9)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize("chance", [Fraction(1, 2), Fraction(1, 8), Fraction(2, 3)])
def test_binomial_tail_matches_every_outcome_enumerated(chance):
    n = 9
    for successes in range(n + 1):
        weights = [
            chance ** sum(o) * (1 - chance) ** (n - sum(o))
            for o in itertools.product((0, 1), repeat=n)
            if sum(o) >= successes
        ]
        assert binomial_tail(successes, n, chance) == pytest.approx(float(sum(weights)), rel=1e-12)


def test_binomial_tail_known_values():
    assert binomial_tail(0, 10, Fraction(3, 10)) == 1.0
    assert binomial_tail(10, 10, Fraction(1, 2)) == 0.5**10
    # 384 queries at chance 1/8: 48 correct expected; 65 (16.9%) is the fewest that pass at p < 0.01.
    assert binomial_tail(64, 384, Fraction(1, 8)) > 0.01 > binomial_tail(65, 384, Fraction(1, 8))
    with pytest.raises(ValueError, match="5 of 4"):
        binomial_tail(5, 4, Fraction(1, 2))


def _fisher_enumerated(hits_a: int, trials_a: int, hits_b: int, trials_b: int) -> float:
    """The share of all ways to choose which trials hit (the total fixed) that give run a at least hits_a."""
    trials, hits = trials_a + trials_b, hits_a + hits_b
    ways = list(itertools.combinations(range(trials), hits))
    return sum(1 for w in ways if sum(1 for t in w if t < trials_a) >= hits_a) / len(ways)


@pytest.mark.parametrize(("trials_a", "trials_b"), [(4, 4), (5, 3), (2, 6)])
def test_fisher_matches_every_deal_enumerated(trials_a, trials_b):
    for hits_a in range(trials_a + 1):
        for hits_b in range(trials_b + 1):
            expected = _fisher_enumerated(hits_a, trials_a, hits_b, trials_b)
            assert fisher_greater(hits_a, trials_a, hits_b, trials_b) == pytest.approx(expected, rel=1e-12)


def test_fisher_known_values():
    assert fisher_greater(3, 3, 0, 3) == 0.05  # 1 / C(6, 3)
    assert fisher_greater(0, 3, 3, 3) == 1.0
    assert fisher_greater(400, 800, 100, 800) < 1e-50 < fisher_greater(100, 800, 100, 800)
    with pytest.raises(ValueError, match="4/3"):
        fisher_greater(4, 3, 0, 3)
