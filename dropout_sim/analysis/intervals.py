"""Student-t confidence intervals over replicates (one formula for reports, figures, validation)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

LEVEL = 0.95
"""Two-sided confidence level used throughout."""


def t_half_width(se, df, level: float = LEVEL):
    """Half-width of a two-sided t interval: t quantile (``df`` degrees of freedom) x standard
    error ``se`` (scalars or arrays)."""
    from scipy import stats

    return stats.t.ppf(0.5 + level / 2, df) * np.asarray(se, dtype=float)


def mean_ci(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float, int]:
    """Mean and ``level`` t-interval over replicates: (mean, low, high, n); NaN bounds if n < 2."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(t_half_width(x.std(ddof=1) / math.sqrt(n), n - 1, level))
    return m, m - half, m + half, n


def welch_ci(a: Iterable[float], b: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Unpaired difference mean(a) - mean(b) with a Welch t-interval: (diff, low, high)."""
    a = np.asarray(list(a), dtype=float)
    b = np.asarray(list(b), dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        d = float(a.mean() - b.mean()) if a.size and b.size else math.nan
        return d, math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    d = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(t_half_width(se, df, level))
    return d, d - half, d + half


def ratio_ci(num: Iterable[float], den: Iterable[float],
             level: float = LEVEL) -> tuple[float, float, float, int]:
    """Ratio of means mean(num) / mean(den) of paired values, with Fieller's ``level`` interval:
    (ratio, low, high, n).

    Used for NOK per extra completer (extra NOK over extra completers, paired by replicate).
    The bounds are NaN when the denominator's mean is not clearly away from zero at ``level``
    (then no finite interval exists: the gain may be nil) or when n < 2; the ratio is NaN
    when mean(den) is 0.
    """
    a = np.asarray(list(num), dtype=float)
    b = np.asarray(list(den), dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    ma, mb = float(a.mean()), float(b.mean())
    ratio = ma / mb if mb != 0 else math.nan
    if n < 2:
        return ratio, math.nan, math.nan, n
    t = float(t_half_width(1.0, n - 1, level))
    saa, sbb = float(a.var(ddof=1)) / n, float(b.var(ddof=1)) / n
    sab = float(np.cov(a, b, ddof=1)[0, 1]) / n
    # (ma - R mb)^2 <= t^2 (saa - 2 R sab + R^2 sbb): A R^2 - 2 B R + C <= 0
    qa = mb * mb - t * t * sbb
    qb = ma * mb - t * t * sab
    qc = ma * ma - t * t * saa
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return ratio, math.nan, math.nan, n
    root = math.sqrt(disc)
    return ratio, (qb - root) / qa, (qb + root) / qa, n
