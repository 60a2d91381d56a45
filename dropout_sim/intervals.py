"""Student-t confidence intervals over replicates (one formula for reports, figures, validation)."""

from __future__ import annotations

import numpy as np

LEVEL = 0.95
"""Two-sided confidence level used throughout."""


def t_half_width(se, df, level: float = LEVEL):
    """Half-width of a two-sided t interval: t quantile (``df`` degrees of freedom) x standard
    error ``se`` (scalars or arrays)."""
    from scipy import stats

    return stats.t.ppf(0.5 + level / 2, df) * np.asarray(se, dtype=float)
