"""Effect size of help: the odds ratio of completion for helped at-risk students against the
same students without help (a paired counterfactual run).

Brief section 9: across dropout-prevention programmes the typical effect is an odds ratio of
about 1.7 on staying in school (Wilson et al. 2011). The model's version is measured on a
*paired* counterfactual: the same config, seed and replicate with help switched off
(``agencies.staffing_scale = 0``: no agency has hours), so every student has the same cohort
draw and the same random numbers in both runs (:mod:`dropout_sim.rng`). Among the focal
students who were at risk *and* helped in the factual run, completion within 60 months is
compared between the two runs:

    OR = [p1 / (1 - p1)] / [p0 / (1 - p0)]

with p1 the factual and p0 the counterfactual completion share of those students (each
count +0.5, so a share of 0 or 1 gives a finite ratio). Students are matched by global id.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COUNTERFACTUAL = {"agencies.staffing_scale": 0.0}
"""Default counterfactual: every agency's posts set to zero (nobody is helped)."""
STATISTIC = "help_odds_ratio"


def outcomes(model: Any) -> dict[str, np.ndarray]:
    """Per focal student: global id, at risk, helped, completed within 60 months."""
    from ..model.metrics import Focal
    from ..model.students import NO_MONTH

    f = Focal(model)
    return {"gid": f.gid.copy(), "at_risk": f.first_risk_month != NO_MONTH,
            "helped": f.first_help_month != NO_MONTH, "done5": f.completed_within()}


def odds_ratio(factual: dict[str, np.ndarray], counterfactual: dict[str, np.ndarray]) -> float:
    """The help odds ratio of :func:`outcomes` of a factual and a paired counterfactual run."""
    sel = factual["at_risk"] & factual["helped"]
    gids = factual["gid"][sel]
    pos = np.searchsorted(counterfactual["gid"], gids)
    pos = np.minimum(pos, max(0, counterfactual["gid"].size - 1))
    found = counterfactual["gid"].size > 0
    matched = (counterfactual["gid"][pos] == gids) if found else np.zeros(gids.size, bool)
    if not matched.any():
        return float("nan")
    n = float(matched.sum())
    a = float(factual["done5"][sel][matched].sum())
    b = float(counterfactual["done5"][pos[matched]].sum())
    return ((a + 0.5) / (n - a + 0.5)) / ((b + 0.5) / (n - b + 0.5))


def set_values(cfg: Any, values: dict[str, float]) -> Any:
    """``cfg`` with dotted numeric keys set (in place; returns cfg)."""
    from .calibrate import set_value

    for key, value in values.items():
        set_value(cfg, key, value)
    return cfg


def help_odds_ratio(cfg: Any, counterfactual: dict[str, float] | None = None) -> tuple[float, dict]:
    """Run ``cfg`` and its paired counterfactual; return (odds ratio, the factual summary)."""
    import copy

    from ..model.metrics import summary
    from ..model.model import DropoutModel
    from ..schema import validate

    fact = DropoutModel(validate(cfg))
    fact.run()
    cf_cfg = set_values(copy.deepcopy(cfg), counterfactual if counterfactual is not None else COUNTERFACTUAL)
    cf = DropoutModel(validate(cf_cfg))
    cf.run()
    a, b = outcomes(fact), outcomes(cf)
    order = np.argsort(b["gid"], kind="stable")
    b = {k: v[order] for k, v in b.items()}
    return odds_ratio(a, b), summary(fact)
