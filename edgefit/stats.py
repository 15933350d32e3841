"""Statistics of raw latency samples: pure functions, no I/O.

Raw samples are the record (STYLE.md 4); everything here derives from them, so any report can be recomputed
without re-running a device. All functions take an iterable of floats (seconds, by convention) and raise
``ValueError`` on an empty input: an empty sample set is a programming error, not user input (the store
refuses measurements without samples).

The confidence interval of the median is distribution-free: for sorted samples x(1) <= ... <= x(n), the
interval [x(j), x(n-j+1)] covers the true median with probability 1 - 2 P(B < j), B ~ Binomial(n, 1/2),
whatever the distribution (latencies are skewed and often bimodal, so a normal-theory interval would lie).
j is the largest rank that keeps that coverage >= 95 %. Below n = 6 no such rank exists (even
[min, max] covers only 1 - 2/2^n = 93.75 % at n = 5); ``median_ci95`` then returns [min, max] and
``enough_samples`` says no.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# The bench stops repeating once the 95 % interval of the median is within +-2 % of it (DESIGN.md, issue 3).
DEFAULT_REL_PRECISION = 0.02
# Smallest n whose order-statistic interval reaches 95 % coverage (1 - 2/2^6 = 96.9 %).
MIN_SAMPLES_FOR_CI95 = 6
# Exact integer binomial sums up to this n; above it, log-space floats (same ranks in every case checked,
# see tests/test_stats.py) so that a few thousand decode samples stay cheap to re-check after every sample.
_EXACT_BINOMIAL_MAX_N = 2000


def _sorted(samples: Iterable[float], what: str) -> list[float]:
    xs = sorted(float(x) for x in samples)
    if not xs:
        raise ValueError(f"{what} needs at least one sample, found none")
    return xs


def _percentile_sorted(xs: list[float], q: float) -> float:
    # Linear interpolation between closest ranks (numpy's default "linear", Hyndman & Fan type 7).
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100), linear interpolation between closest ranks (numpy's default)."""
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile q must be within [0, 100], found {q!r}")
    return _percentile_sorted(_sorted(samples, "percentile"), q)


def median(samples: Iterable[float]) -> float:
    return _percentile_sorted(_sorted(samples, "median"), 50.0)


def mean(samples: Iterable[float]) -> float:
    xs = _sorted(samples, "mean")  # sorted: summing small to large loses less precision
    return math.fsum(xs) / len(xs)


def stdev(samples: Iterable[float]) -> float:
    """Sample standard deviation (n - 1 denominator); 0.0 for a single sample."""
    xs = _sorted(samples, "stdev")
    if len(xs) < 2:
        return 0.0
    m = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def cv(samples: Iterable[float]) -> float:
    """Coefficient of variation, stdev / mean. ``nan`` when the mean is 0."""
    xs = _sorted(samples, "cv")
    m = math.fsum(xs) / len(xs)
    if m == 0.0:
        return math.nan
    return stdev(xs) / abs(m)


def iqr(samples: Iterable[float]) -> float:
    """Interquartile range, p75 - p25."""
    xs = _sorted(samples, "iqr")
    return _percentile_sorted(xs, 75.0) - _percentile_sorted(xs, 25.0)


def mad(samples: Iterable[float]) -> float:
    """Median absolute deviation from the median (raw; multiply by 1.4826 for a normal-consistent sigma)."""
    xs = _sorted(samples, "mad")
    m = _percentile_sorted(xs, 50.0)
    return _percentile_sorted(sorted(abs(x - m) for x in xs), 50.0)


@lru_cache(maxsize=4096)
def median_ci_rank(n: int, confidence: float = 0.95) -> int:
    """Largest 1-based rank j with P(B < j) <= (1 - confidence) / 2, B ~ Binomial(n, 1/2); 0 if none.

    The interval [x(j), x(n-j+1)] then covers the median with probability >= ``confidence``.
    """
    if n < 1:
        raise ValueError(f"median_ci_rank needs n >= 1, found {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), found {confidence!r}")
    alpha_half = (1.0 - confidence) / 2.0
    j = 0
    if n <= _EXACT_BINOMIAL_MAX_N:
        # Exact: P(B < j) = sum_{k<j} C(n, k) / 2^n, compared in integers (alpha as a fraction of 10^9).
        scale = 10**9
        limit = round(alpha_half * scale) * 2**n
        cum = 0
        c = 1  # C(n, 0)
        for k in range(n // 2 + 1):
            cum += c
            if cum * scale > limit:
                break
            j = k + 1
            c = c * (n - k) // (k + 1)
        return j
    log_half_n = n * math.log(0.5)
    cum_f = 0.0
    for k in range(n // 2 + 1):
        cum_f += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if cum_f > alpha_half:
            break
        j = k + 1
    return j


def _median_ci95_sorted(xs: list[float]) -> tuple[float, float]:
    j = median_ci_rank(len(xs))
    if j == 0:
        return xs[0], xs[-1]
    return xs[j - 1], xs[len(xs) - j]


def _ci95_rel_sorted(xs: list[float]) -> float:
    if len(xs) < MIN_SAMPLES_FOR_CI95:
        return math.inf
    m = _percentile_sorted(xs, 50.0)
    if m == 0.0:
        return math.inf
    lo, hi = _median_ci95_sorted(xs)
    return max(m - lo, hi - m) / abs(m)


def median_ci95(samples: Iterable[float]) -> tuple[float, float]:
    """Distribution-free 95 % confidence interval of the median (order statistics, exact binomial).

    With fewer than 6 samples no pair of order statistics reaches 95 %: returns (min, max), which covers less.
    """
    return _median_ci95_sorted(_sorted(samples, "median_ci95"))


def median_ci95_rel(samples: Iterable[float]) -> float:
    """Relative half-width of the median's 95 % interval, taking the wider side: max(m - lo, hi - m) / m.

    ``inf`` when the median is 0 or there are too few samples for a 95 % interval.
    """
    return _ci95_rel_sorted(_sorted(samples, "median_ci95_rel"))


def enough_samples(samples: Iterable[float], rel_precision: float = DEFAULT_REL_PRECISION) -> bool:
    """True when the 95 % interval of the median lies within +-``rel_precision`` of the median.

    The bench calls this while it samples, to stop repeating; it never says yes below 6 samples.
    """
    if rel_precision <= 0.0:
        raise ValueError(f"rel_precision must be > 0, found {rel_precision!r}")
    xs = sorted(samples)
    if len(xs) < MIN_SAMPLES_FOR_CI95:
        return False
    return _ci95_rel_sorted(xs) <= rel_precision


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of one sample set, all in the samples' unit (seconds for latencies)."""

    n: int
    median_s: float
    mean_s: float
    min_s: float
    max_s: float
    stdev_s: float
    iqr_s: float
    mad_s: float
    p5_s: float
    p95_s: float
    cv: float
    ci95_low_s: float
    ci95_high_s: float
    ci95_rel: float  # max(median - low, high - median) / median; inf below 6 samples

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"Summary.n must be >= 1, found {self.n}")

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-able; non-finite floats (cv of a zero mean, ci95_rel below 6 samples) become None."""
        out: dict[str, float | int | None] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


def summarize(samples: Iterable[float]) -> Summary:
    xs = _sorted(samples, "summarize")
    lo, hi = _median_ci95_sorted(xs)
    m = math.fsum(xs) / len(xs)
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    med = _percentile_sorted(xs, 50.0)
    return Summary(
        n=len(xs),
        median_s=med,
        mean_s=m,
        min_s=xs[0],
        max_s=xs[-1],
        stdev_s=sd,
        iqr_s=_percentile_sorted(xs, 75.0) - _percentile_sorted(xs, 25.0),
        mad_s=_percentile_sorted(sorted(abs(x - med) for x in xs), 50.0),
        p5_s=_percentile_sorted(xs, 5.0),
        p95_s=_percentile_sorted(xs, 95.0),
        cv=sd / abs(m) if m != 0.0 else math.nan,
        ci95_low_s=lo,
        ci95_high_s=hi,
        ci95_rel=_ci95_rel_sorted(xs),
    )
