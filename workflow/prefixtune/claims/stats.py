"""Intervals over replicates: Student t for a mean (of paired per-replicate effects), F for a variance ratio.

scipy gives the quantiles when installed; without it a small table of two-sided 95 % t quantiles serves (other
confidences then need scipy) and the variance ratio has no interval."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from prefixtune.claims.verdict import Interval

# two-sided 95 % Student t quantiles t_{0.975, df}
T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t_quantile(df: int, confidence: float) -> float | None:
    try:
        from scipy import stats
    except ImportError:
        if abs(confidence - 0.95) > 1e-9:
            return None
        known = [d for d in sorted(T975) if d <= df]
        return T975[known[-1]] if known else None  # conservative: the next smaller tabulated df
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def t_interval(values: Sequence[float], confidence: float) -> Interval:
    """Mean of per-replicate effects with its t-interval; n = the replicates."""
    n = len(values)
    mean = statistics.fmean(values) if values else math.nan
    if n < 2:
        return Interval(mean, None, None, n, "no interval: one replicate")
    q = t_quantile(n - 1, confidence)
    if q is None:
        return Interval(mean, None, None, n, f"no interval: no t quantile for {confidence:g} without scipy")
    half = q * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t over replicates")


def variance_ratio_interval(
    a: Sequence[float], b_groups: Sequence[Sequence[float]], confidence: float
) -> Interval:
    """var(a) / pooled var(b groups) with its F interval (normal replicates assumed); n = replicates of a."""
    df_a = len(a) - 1
    df_b = sum(len(g) - 1 for g in b_groups)
    if df_a < 1 or df_b < 1:
        return Interval(math.nan, None, None, len(a), "no interval: fewer than two replicates")
    var_a = statistics.variance(a)
    var_b = sum(statistics.variance(g) * (len(g) - 1) for g in b_groups if len(g) > 1) / df_b
    if var_b == 0:
        return Interval(math.inf, None, None, len(a), "no interval: no spread between b's replicates")
    ratio = var_a / var_b
    try:
        from scipy import stats
    except ImportError:
        return Interval(ratio, None, None, len(a), "no interval: the F quantiles need scipy")
    alpha = 1 - confidence
    low = ratio / float(stats.f.ppf(1 - alpha / 2, df_a, df_b))
    high = ratio / float(stats.f.ppf(alpha / 2, df_a, df_b))
    return Interval(ratio, low, high, len(a), "F interval over replicates")
