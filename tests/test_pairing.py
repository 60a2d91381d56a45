"""Paired replicates (common random numbers): what the sweep report's paired differences rely on.

Replicate r of every scenario must share its synthetic cohort and every student-level draw,
so scenario differences come from mechanisms only; changing one agency must not reshuffle
the draws of students it never touches; and on the same runs the paired interval of a
difference must be narrower than the unpaired one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dropout_sim import DropoutModel, compose_config, run_simulation
from dropout_sim.model.metrics import Focal, student_table
from dropout_sim.analysis.intervals import mean_ci, welch_ci
from dropout_sim.analysis.report import paired_differences

HISTORY = ("completion_month", "first_dropout_month", "status_at_end", "first_risk_month", "repeats")
SCENARIOS = {
    "siloed": ["regime=siloed"],
    "nav_pilot": ["regime=nav_pilot"],
    "colocated": ["regime=colocated"],
    "early": ["intervention=early"],
    "more_ppt": ["agencies.ppt.posts_per_1000=3"],
    "later_reform": ["regime=colocated", "regime.start_month=12"],
    "lead_worker": ["regime=lead_worker"],
}


COUNTY = ["county.warmup_years=2"]


def _intake(model: DropoutModel) -> dict[str, np.ndarray]:
    """The focal cohort as it enters (the model is run to its first month)."""
    model.run(model.warmup_months + 1 - model.month)
    st, rows = model.students, model.focal_rows()
    return {"track": st.track[rows], "grade_points": st.grade_points[rows], "trust0": st.trust0[rows],
            "climate": st.climate[rows], "needs_at_intake": st.needs_at_intake[rows]}


def _run(*overrides: str, size: int = 1500) -> tuple[Focal, dict]:
    model = DropoutModel(compose_config([f"cohort.size={size}", *COUNTY, *overrides]))
    model.run()
    return Focal(model), student_table(model)


def test_replicate_r_of_every_scenario_starts_from_the_same_cohort():
    base = _intake(DropoutModel(compose_config(["cohort.size=1000", "replicate=3", *COUNTY])))
    for name, overrides in SCENARIOS.items():
        other = _intake(DropoutModel(compose_config(["cohort.size=1000", "replicate=3", *COUNTY, *overrides])))
        for key, values in base.items():
            np.testing.assert_array_equal(other[key], values, err_msg=f"{name}: intake {key} differs")
    # ... and a different replicate is a different cohort (the check above can fail)
    next_rep = _intake(DropoutModel(compose_config(["cohort.size=1000", "replicate=4", *COUNTY])))
    assert not np.array_equal(next_rep["grade_points"], base["grade_points"])


@pytest.mark.parametrize("change", [["regime=colocated"], ["agencies.nav.approval_probability=0.2"],
                                    ["agencies.ppt.posts_per_1000=0.2"]])
def test_changing_agencies_does_not_reshuffle_untouched_students(change):
    """Students no agency ever helped, in either run, live exactly the same life: their draws are
    indexed by (stream, month, student id), not by how many draws other rules made before."""
    # The county's apprenticeship contracts go to the highest mastery: a helped student can take an
    # untouched student's contract, a real interaction, not a reshuffle. Ample supply removes it.
    ample = "laereplass.contracts_per_1000=1000"
    a, ta = _run(ample)
    b, tb = _run(ample, *change)
    untouched = ~a.agencies_involved.any(axis=1) & ~b.agencies_involved.any(axis=1)
    assert untouched.sum() > 300, "too few untouched students for the check to mean anything"
    for col in HISTORY:
        np.testing.assert_array_equal(np.asarray(tb[col])[untouched], np.asarray(ta[col])[untouched],
                                      err_msg=f"{change}: {col} of untouched students changed")
    # the change did do something to the students it reached
    touched = ~untouched
    assert not np.array_equal(np.asarray(tb["completion_month"])[touched], np.asarray(ta["completion_month"])[touched])


def test_untouched_students_differ_between_replicates():
    """Control for the test above: without common random numbers the same students diverge."""
    a, ta = _run("replicate=0")
    b, tb = _run("replicate=1")
    untouched = ~a.agencies_involved.any(axis=1) & ~b.agencies_involved.any(axis=1)
    same = np.ones(untouched.sum(), bool)
    for col in HISTORY:
        same &= np.asarray(ta[col])[untouched] == np.asarray(tb[col])[untouched]
    assert same.mean() < 0.8


@pytest.fixture(scope="module")
def paired_runs() -> pd.DataFrame:
    """Siloed and co-located, 10 paired replicates of 500 students (one row per run)."""
    rows = []
    for regime in ("siloed", "colocated"):
        for rep in range(10):
            cfg = compose_config([f"regime={regime}", f"replicate={rep}", "cohort.size=500", "horizon_months=60",
                                  *COUNTY])
            s = run_simulation(cfg).summary
            rows.append({"scenario": regime, "seed": cfg.seed, "replicate": rep,
                         "completion_5y": s["completion_5y"], "total_agency_hours": s["total_agency_hours"]})
    return pd.DataFrame(rows)


def test_paired_interval_is_narrower_than_unpaired_on_the_same_runs(paired_runs):
    diff = paired_differences(paired_runs, "completion_5y", "siloed").set_index("scenario").loc["colocated"]
    assert diff["pairs"] == 10
    paired = diff["diff_ci_high"] - diff["diff_ci_low"]
    unpaired = diff["unpaired_ci_high"] - diff["unpaired_ci_low"]
    assert np.isfinite(paired) and np.isfinite(unpaired)
    assert paired < 0.6 * unpaired, f"paired width {paired:.4f} vs unpaired {unpaired:.4f}"

    # the numbers are the textbook ones, computed here independently
    wide = paired_runs.pivot(index="replicate", columns="scenario", values="completion_5y")
    d = (wide["colocated"] - wide["siloed"]).to_numpy()
    m, lo, hi, n = mean_ci(d)
    assert diff["diff"] == pytest.approx(d.mean()) == pytest.approx(m)
    assert (diff["diff_ci_low"], diff["diff_ci_high"]) == pytest.approx((lo, hi))
    _, ulo, uhi = welch_ci(wide["colocated"], wide["siloed"])
    assert (diff["unpaired_ci_low"], diff["unpaired_ci_high"]) == pytest.approx((ulo, uhi))
    # why: replicate r's outcomes are strongly correlated across regimes
    assert np.corrcoef(wide["colocated"], wide["siloed"])[0, 1] > 0.5


def test_broken_pairing_loses_the_advantage(paired_runs):
    """Control: pair replicate r with replicate r+1 and the paired interval is no longer narrow."""
    shifted = paired_runs.copy()
    coloc = shifted["scenario"] == "colocated"
    shifted.loc[coloc, "replicate"] = (shifted.loc[coloc, "replicate"] + 1) % 10
    good = paired_differences(paired_runs, "completion_5y", "siloed").iloc[0]
    bad = paired_differences(shifted, "completion_5y", "siloed").iloc[0]
    assert (bad["diff_ci_high"] - bad["diff_ci_low"]) > 1.5 * (good["diff_ci_high"] - good["diff_ci_low"])


def test_mean_ci_and_welch_edge_cases():
    m, lo, hi, n = mean_ci([0.5])
    assert (m, n) == (0.5, 1) and np.isnan(lo) and np.isnan(hi)
    m, lo, hi, n = mean_ci([1.0, 2.0, 3.0, np.nan])
    assert n == 3 and m == 2.0 and lo < 2.0 < hi
    assert mean_ci([])[3] == 0
    d, lo, hi = welch_ci([1.0, 1.0], [1.0, 1.0])
    assert d == lo == hi == 0.0
