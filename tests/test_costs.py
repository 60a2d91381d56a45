"""NOK per extra completer (brief section 10): the paired ratio, its Fieller interval, break-even."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropout_sim.analysis.intervals import mean_ci, ratio_ci
from dropout_sim.analysis.report import cost_ratio


def test_ratio_interval_with_a_fixed_denominator_is_the_numerators_interval_scaled():
    rng = np.random.default_rng(1)
    num = rng.normal(1e6, 1e5, 20)
    den = np.full(20, 4.0)
    r, lo, hi, n = ratio_ci(num, den)
    m, mlo, mhi, _ = mean_ci(num)
    assert n == 20 and r == pytest.approx(m / 4)
    assert (lo, hi) == pytest.approx((mlo / 4, mhi / 4))


def test_ratio_interval_is_unbounded_when_the_gain_may_be_nil():
    num = np.full(10, 1e6)
    den = np.array([3.0, -2.0, 4.0, -3.0, 1.0, 0.5, -1.0, 2.0, -2.5, 0.0])
    r, lo, hi, _ = ratio_ci(num, den)
    assert math.isfinite(r) and math.isnan(lo) and math.isnan(hi)


def test_ratio_interval_widens_with_noisier_gains():
    rng = np.random.default_rng(2)
    num = rng.normal(2e6, 1e5, 30)
    tight = ratio_ci(num, 10 + rng.normal(0, 0.5, 30))
    loose = ratio_ci(num, 10 + rng.normal(0, 3.0, 30))
    assert tight[2] - tight[1] < loose[2] - loose[1]
    assert loose[1] < loose[0] < loose[2]


def test_cost_ratio_break_even_and_benefit_cost_ratio():
    extra_nok = np.array([2.0e6, 2.2e6, 1.8e6, 2.0e6])
    extra_done = np.array([10.0, 12.0, 8.0, 10.0])
    out = cost_ratio(extra_nok, extra_done)
    assert out["nok_per_extra_completer"] == pytest.approx(2.0e5)
    assert out["break_even_nok"] == pytest.approx(2.0e5)
    assert out["nok_per_extra_completer_ci_low"] < 2.0e5 < out["nok_per_extra_completer_ci_high"]
    assert math.isnan(out["benefit_cost_ratio"]), "no ratio unless a value per completer is set"
    assert cost_ratio(extra_nok, extra_done, 7e6)["benefit_cost_ratio"] == pytest.approx(7e6 * 10 / 2e6)


def test_cost_ratio_of_a_cheaper_better_scenario_breaks_even_at_zero_and_of_no_gain_is_undefined():
    cheaper = cost_ratio(np.array([-1e5, -2e5, -1e5]), np.array([5.0, 6.0, 4.0]))
    assert cheaper["nok_per_extra_completer"] < 0 and cheaper["break_even_nok"] == 0
    nothing = cost_ratio(np.array([1e6, 1e6, 1e6]), np.array([-1.0, 0.0, -2.0]), 7e6)
    assert math.isnan(nothing["nok_per_extra_completer"]) and math.isnan(nothing["break_even_nok"])
    assert math.isnan(nothing["benefit_cost_ratio"])


def test_report_takes_the_value_per_completer_from_the_runs_and_pairs_by_replicate():
    import pandas as pd

    from dropout_sim.analysis.report import cost_per_extra_completer

    ok = pd.DataFrame({"scenario": ["base"] * 3 + ["new"] * 3, "seed": 42, "replicate": [0, 1, 2, 2, 0, 1],
                       "costs.nok_per_year": [1e6, 1e6, 1e6, 1.5e6, 1.5e6, 1.5e6],
                       "completed_5y_per_cohort": [100.0, 110.0, 90.0, 92.0, 102.0, 112.0],
                       "costs.value_per_completer_nok": [7e6] * 6})
    out = cost_per_extra_completer(ok, "new", "base")
    assert out["extra_completers_per_cohort"] == pytest.approx(2.0), "paired by replicate, not by row order"
    assert out["nok_per_extra_completer"] == pytest.approx(5e5 / 2)
    assert out["benefit_cost_ratio"] == pytest.approx(7e6 * 2 / 5e5)
    # a value of null in the runs (the default) gives no ratio
    out = cost_per_extra_completer(ok.assign(**{"costs.value_per_completer_nok": math.nan}), "new", "base")
    assert math.isnan(out["benefit_cost_ratio"]) and out["break_even_nok"] == pytest.approx(2.5e5)
