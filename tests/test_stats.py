from __future__ import annotations

import math
import statistics
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefit import stats

latencies = st.lists(
    st.floats(min_value=1e-6, max_value=10.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=200
)


def _binom_below(n: int, j: int) -> Fraction:
    """P(B < j), B ~ Binomial(n, 1/2), exactly."""
    return Fraction(sum(math.comb(n, k) for k in range(j)), 2**n)


# ------------------------------------------------------------------------------------------- exact small cases


def test_median_odd_even() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert stats.median([7.0]) == 7.0


def test_percentile_linear_interpolation() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert stats.percentile(xs, 0) == 1.0
    assert stats.percentile(xs, 100) == 5.0
    assert stats.percentile(xs, 25) == 2.0
    assert stats.percentile(xs, 10) == pytest.approx(1.4)
    assert stats.iqr(xs) == 2.0


def test_mad_and_spread() -> None:
    xs = [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]
    # median 2; |x - 2| = 1 1 0 0 2 4 7 -> median 1
    assert stats.mad(xs) == 1.0
    assert stats.stdev([5.0]) == 0.0
    assert stats.cv([2.0, 2.0, 2.0]) == 0.0
    assert math.isnan(stats.cv([0.0, 0.0]))


@pytest.mark.parametrize("fn", [stats.median, stats.mean, stats.stdev, stats.iqr, stats.mad, stats.summarize])
def test_empty_samples_rejected(fn: object) -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        fn([])  # type: ignore[operator]


def test_percentile_q_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        stats.percentile([1.0], 101)


@pytest.mark.parametrize(
    ("n", "rank"),
    [
        # Textbook order-statistic intervals for the median (e.g. Conover, Practical Nonparametric Statistics,
        # table of binomial quantiles; also reproducible with the exact sum in _binom_below):
        (5, 0),  # no 95 % interval exists
        (6, 1),
        (10, 2),
        (20, 6),
        (100, 40),
    ],
)
def test_median_ci_rank_known_values(n: int, rank: int) -> None:
    assert stats.median_ci_rank(n) == rank


@pytest.mark.parametrize("n", [*range(1, 80), 255, 1000, 1999, 2000, 2001, 2500, 4001])
def test_median_ci_rank_is_the_largest_rank_with_95_percent_coverage(n: int) -> None:
    j = stats.median_ci_rank(n)
    if j > 0:
        assert 1 - 2 * _binom_below(n, j) >= Fraction(95, 100)
    assert 1 - 2 * _binom_below(n, j + 1) < Fraction(95, 100)


def test_median_ci95_small_n_falls_back_to_range() -> None:
    assert stats.median_ci95([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert stats.median_ci95_rel([1.0, 2.0, 3.0]) == math.inf


def test_median_ci95_order_statistics() -> None:
    xs = [float(x) for x in range(1, 21)]  # n = 20 -> [x(6), x(15)]
    assert stats.median_ci95(xs) == (6.0, 15.0)
    assert stats.median_ci95_rel(xs) == pytest.approx(max(10.5 - 6.0, 15.0 - 10.5) / 10.5)


def test_median_ci95_coverage_on_skewed_data() -> None:
    # Distribution-free: on a lognormal (skewed, like latencies) the interval covers the true median
    # at least 95 % of the time (exact coverage for n = 20 is 1 - 2 P(B < 6) = 95.86 %).
    rng = np.random.default_rng(7)
    trials, n, covered = 3000, 20, 0
    true_median = 1.0  # lognormal(0, s) has median e^0
    for _ in range(trials):
        lo, hi = stats.median_ci95(rng.lognormal(0.0, 0.8, size=n).tolist())
        covered += lo <= true_median <= hi
    assert covered / trials >= 0.945


def test_enough_samples() -> None:
    assert not stats.enough_samples([1.0] * 5)  # never below 6
    assert stats.enough_samples([1.0] * 6)
    tight = [1.0 + 0.001 * i for i in range(30)]
    assert stats.enough_samples(tight, rel_precision=0.02)
    wide = [1.0 + 0.1 * i for i in range(30)]
    assert not stats.enough_samples(wide, rel_precision=0.02)
    # the median's interval is robust: one huge outlier (a preempted iteration) does not block stopping
    assert stats.enough_samples([*tight, 50.0])
    with pytest.raises(ValueError):
        stats.enough_samples(tight, rel_precision=0.0)


def test_summary_fields_and_json() -> None:
    xs = [0.010, 0.011, 0.012, 0.013, 0.014, 0.015, 0.016]
    s = stats.summarize(xs)
    assert s.n == 7
    assert s.median_s == 0.013
    assert s.min_s == 0.010 and s.max_s == 0.016
    assert s.mean_s == pytest.approx(statistics.mean(xs))
    assert s.stdev_s == pytest.approx(statistics.stdev(xs))
    assert s.cv == pytest.approx(statistics.stdev(xs) / statistics.mean(xs))
    assert (s.ci95_low_s, s.ci95_high_s) == stats.median_ci95(xs)
    d = stats.summarize([1.0, 2.0]).to_dict()
    assert d["ci95_rel"] is None  # inf -> None: JSON has no infinity
    assert d["n"] == 2


# ------------------------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(latencies)
def test_median_within_range_and_ci_contains_median(xs: list[float]) -> None:
    m = stats.median(xs)
    assert min(xs) <= m <= max(xs)
    lo, hi = stats.median_ci95(xs)
    assert min(xs) <= lo <= m <= hi <= max(xs)


@settings(max_examples=200, deadline=None)
@given(latencies, st.floats(0, 100), st.floats(0, 100))
def test_percentiles_monotone_and_match_numpy(xs: list[float], q1: float, q2: float) -> None:
    lo_q, hi_q = sorted((q1, q2))
    assert stats.percentile(xs, lo_q) <= stats.percentile(xs, hi_q)
    assert stats.percentile(xs, q1) == pytest.approx(float(np.percentile(xs, q1)), rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(latencies)
def test_summary_agrees_with_reference_implementations(xs: list[float]) -> None:
    s = stats.summarize(xs)
    assert s.n == len(xs)
    assert s.mean_s == pytest.approx(statistics.fmean(xs), rel=1e-9)
    assert s.median_s == pytest.approx(statistics.median(xs), rel=1e-12)
    if len(xs) > 1:
        assert s.stdev_s == pytest.approx(statistics.stdev(xs), rel=1e-6, abs=1e-12)
    assert s.p5_s <= s.median_s <= s.p95_s
    assert s.iqr_s >= 0.0 and s.mad_s >= 0.0


@settings(max_examples=100, deadline=None)
@given(latencies, st.floats(min_value=0.5, max_value=1000.0))
def test_scale_invariance(xs: list[float], k: float) -> None:
    # Relative figures do not depend on the unit: ms or s give the same CV and CI width.
    a, b = stats.summarize(xs), stats.summarize([x * k for x in xs])
    assert b.median_s == pytest.approx(a.median_s * k, rel=1e-9)
    if math.isfinite(a.ci95_rel):
        assert b.ci95_rel == pytest.approx(a.ci95_rel, rel=1e-6, abs=1e-12)
    assert stats.enough_samples(xs) == stats.enough_samples([x * k for x in xs]) or math.isclose(
        a.ci95_rel, stats.DEFAULT_REL_PRECISION, rel_tol=1e-6
    )
