"""The exact McNemar test against independent computations: every outcome of n fair coins enumerated, known
values, and a log-space binomial tail for large n."""

from __future__ import annotations

import itertools
import math

import pytest

from rge_core.evaluation.significance import mcnemar_exact


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
