"""Who the students are and the routes they take (issue 9): intake by gender and parents'
education, track choice by grade points, omvalg, påbygg, 'fullført, ikke bestått' with
private-candidate retakes, the county's limited læreplass supply, and the equity outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dropout_sim import ConfigError, compose_config, run_simulation
from dropout_sim.calendar import DECEMBER, JUNE
from dropout_sim.model import progression
from dropout_sim.model.intake import draw_cohort
from dropout_sim.model.metrics import STUDENT_COLUMNS, student_table, summary
from dropout_sim.model.students import (COMPLETED, IN_SCHOOL, NO_MONTH, OUTSIDE, VG1, VG3, Students)
from dropout_sim.rng import Streams
from dropout_sim.schema import EDUCATION_LEVELS


def cohort(cfg, n=20000, seed=3):
    return draw_cohort(cfg.cohort, Streams(seed, 0).generator("cohort.0"), n, cfg.population)


def students_from(cfg, n=4000) -> Students:
    st = Students()
    st.resize(slice(None), n)
    st.fill_cohort(slice(0, n), cohort(cfg, n), 0, 0, np.arange(n))
    return st


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("override, key", [
    ("population.parents_education_shares.compulsory=0.5", "population.parents_education_shares sums to"),
    ("population.gender_shares.male=0.9", "population.gender_shares sums to"),
    ("+population.parents_education_shares.phd=0", "population.parents_education_shares.phd is not a known group"),
    ("+population.grade_points_by_parents_education.phd=40",
     "population.grade_points_by_parents_education.phd is not a known group"),
    ("population.parents_education_shares.unknown=-0.1", "population.parents_education_shares.unknown"),
    ("laereplass.contracts_per_1000=-5", "laereplass.contracts_per_1000"),
    ("routes.switch_prob=1.5", "routes.switch_prob"),
    ("population.grade_points_gender_gap=30", "population.grade_points_gender_gap"),
])
def test_bad_population_and_route_input_is_refused_in_one_line(override, key):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    message = str(err.value)
    assert message.startswith(key) and "allowed" in message and "\n" not in message


def test_cli_refuses_shares_not_summing_to_one_with_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    proc = subprocess.run([sys.executable, "-m", "dropout_sim", "population.gender_shares.female=0.6",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "population.gender_shares" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_county_can_omit_a_level_by_giving_it_no_share():
    cfg = compose_config(["population.parents_education_shares.unknown=0",
                          "population.parents_education_shares.upper_secondary=0.39"])
    c = cohort(cfg, 5000)
    assert not np.any(c["parents_education"] == EDUCATION_LEVELS.index("unknown"))


# ---------------------------------------------------------------------------- intake
def test_intake_follows_the_county_shares_and_grade_point_means():
    cfg = compose_config([])
    pop = cfg.population
    c = cohort(cfg)
    male = c["gender"] == 1
    assert abs(male.mean() - pop.gender_shares["male"]) < 0.015
    for code, level in enumerate(EDUCATION_LEVELS):
        sel = c["parents_education"] == code
        assert abs(sel.mean() - pop.parents_education_shares[level]) < 0.012
        # the level's mean on the 10-60 scale (the location is set so truncation keeps it)
        assert abs(c["grade_points"][sel].mean() - pop.grade_points_by_parents_education[level]) < 0.4
    gap = c["grade_points"][~male].mean() - c["grade_points"][male].mean()
    assert abs(gap - pop.grade_points_gender_gap) < 0.4
    assert 41.5 < c["grade_points"].mean() < 44.0                       # SSB 2020: 43.2


def test_track_is_chosen_by_grade_points_at_the_configured_share():
    cfg = compose_config(["cohort.vocational_share=0.45"])
    c = cohort(cfg)
    voc = c["track"] == 1
    assert abs(voc.mean() - 0.45) < 0.015
    gp = c["grade_points"]
    assert gp[~voc].mean() - gp[voc].mean() > 6                         # vocational entrants score lower
    assert voc[gp < 35].mean() > voc[gp > 50].mean() + 0.4
    assert voc[c["gender"] == 1].mean() > voc[c["gender"] == 0].mean()  # boys choose yrkesfag more often
    flat = cohort(compose_config(["population.track_grade_points_slope=0", "population.track_male_logit=0"]))
    gp_flat, voc_flat = flat["grade_points"], flat["track"] == 1
    # without the slope the tracks differ only by sampling: within 4 standard errors of 0 (about 0.6)
    se = gp_flat.std() * np.sqrt(1 / voc_flat.sum() + 1 / (~voc_flat).sum())
    assert abs(gp_flat[~voc_flat].mean() - gp_flat[voc_flat].mean()) < 4 * se


# ---------------------------------------------------------------------------- routes
def test_omvalg_restarts_vg1_in_a_new_programme():
    cfg = compose_config([])
    st = students_from(cfg)
    cfg.routes.switch_prob = 1.0 - 1e-12
    cfg.routes.switch_other_track_share = 0.5
    before = st.track.copy()
    out = progression.june_decisions(st, JUNE, cfg.progression, Streams(1, 0), cfg.routes, cfg.laereplass,
                                     progression.ContractPool())
    assert out["switched"].size == st.n and st.switched_programme.all()
    assert np.all(st.level == VG1) and np.all(st.status == IN_SCHOOL) and np.all(st.level_started)
    assert 0.45 < (st.track != before).mean() < 0.55
    assert not st.repeats.any()                                          # a switch is not a repeat


def test_failers_move_up_with_a_missing_grade_that_must_be_cleared_for_the_diploma():
    cfg = compose_config(["routes.move_up_with_fail_prob=1", "routes.switch_prob=0"])
    st = students_from(cfg, 2000)
    st.mastery[:] = 0.2                                                  # nearly all fail Vg1
    progression.june_decisions(st, JUNE, cfg.progression, Streams(1, 0), cfg.routes, cfg.laereplass)
    assert (st.level == 2).mean() > 0.99 and not st.repeats.any() and (st.missing_grades == 1).mean() > 0.9
    st.level[:] = VG3
    st.mastery[:] = 0.9                                                  # pass Vg3, but the old grade?
    cfg.progression.pass_slope = 4.0
    out = progression.june_decisions(st, 12 + JUNE, cfg.progression, Streams(1, 0), cfg.routes, cfg.laereplass)
    owing = st.private_candidate
    assert out["completed"].size > 0 and owing.any()                     # some clear it, some are FIB
    assert np.all(st.status[owing] == OUTSIDE) and np.all(st.first_dropout_month[owing] == NO_MONTH)


def test_vocational_programmes_pass_at_a_lower_mastery_but_not_on_pabygg():
    """progression.vocational_pass_offset lowers the 50/50 mastery of vocational students in school
    (not on påbygg, which leads to the academic diploma); 0 treats the tracks alike."""
    cfg = compose_config([])
    st = students_from(cfg, 6)
    st.mastery[:] = cfg.progression.pass_threshold
    st.track[:] = [0, 0, 1, 1, 1, 1]
    st.on_pabygg[:] = [False, True, False, False, True, True]
    cfg.progression.vocational_pass_offset = 0.1
    p = progression.pass_probability(st, np.arange(6), cfg.progression)
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(0.5)          # academic: on the threshold
    assert p[2] == p[3] == pytest.approx(1 / (1 + np.exp(-cfg.progression.pass_slope * 0.1)))
    assert p[4] == pytest.approx(0.5) and p[5] == pytest.approx(0.5)          # påbygg: the academic bar
    assert progression.pass_probability(st, np.arange(6), cfg.progression, gain=-0.1)[2] == pytest.approx(0.5)
    cfg.progression.vocational_pass_offset = 0.0
    assert np.allclose(progression.pass_probability(st, np.arange(6), cfg.progression), 0.5)


def test_final_year_failers_become_private_candidates_and_some_pass_later():
    cfg = compose_config([])
    st = students_from(cfg, 2000)
    st.level[:] = VG3
    st.mastery[:] = 0.3                                                  # most fail in June
    cfg.progression.pass_threshold = 0.45
    cfg.routes.fib_share = 1.0
    cfg.routes.private_retake_prob = 1.0
    out = progression.june_decisions(st, JUNE, cfg.progression, Streams(1, 0), cfg.routes, cfg.laereplass)
    fib = out["fib"]
    assert fib.size > 0.6 * st.n and np.all(st.status[fib] == OUTSIDE)
    assert np.all(st.first_dropout_month[fib] == NO_MONTH)              # not a dropout
    assert st.private_candidate[fib].all() and not st.repeats[fib].any()
    assert progression.private_candidates(st, JUNE + 1, cfg.progression, cfg.routes, Streams(1, 0)).size == 0
    st.mastery[fib] = 0.6
    done = progression.private_candidates(st, 12 + DECEMBER, cfg.progression, cfg.routes, Streams(1, 0))
    assert done.size > 0.6 * fib.size and np.all(st.status[done] == COMPLETED)
    late = 12 * 10
    rest = fib[st.status[fib] == OUTSIDE]
    assert progression.private_candidates(st, late + JUNE, cfg.progression, cfg.routes, Streams(1, 0)).size == 0
    assert np.all(st.fib_month[rest] == NO_MONTH)                      # past the window: stopped trying


def test_contracts_go_to_the_highest_mastery_and_the_rest_take_pabygg_vg3_or_leave():
    cfg = compose_config([])
    st = students_from(cfg, 3000)
    st.level[:] = 2
    st.track[:] = 1
    st.mastery[:] = np.linspace(0.55, 1.0, st.n)
    routes, lp = cfg.routes, cfg.laereplass
    routes.switch_prob = routes.pabygg_voluntary_prob = 0.0
    lp.mastery_noise_sd = 0.0
    pool = progression.ContractPool()
    pool.open_year(1000)
    out = progression.june_decisions(st, JUNE, cfg.progression, Streams(1, 0), routes, lp, pool)
    got = out["contract"]
    assert got.size == 1000 and pool.left == 0
    passed_without = np.setdiff1d(np.flatnonzero(st.level_started | (st.status == OUTSIDE)), got)
    assert st.mastery[got].min() >= st.mastery[passed_without].max() - 1e-12   # strictly by mastery
    pabygg = np.flatnonzero(st.took_pabygg)
    assert pabygg.size > 0 and np.all(st.level[pabygg] == VG3)
    assert np.all(st.status[out["no_contract"]] == OUTSIDE)


def run_small(*overrides):
    cfg = compose_config(["cohort.size=600", "county.warmup_years=2", "horizon_months=60", *overrides])
    return run_simulation(cfg)


def test_a_bad_year_for_employers_means_fewer_apprentices_and_fewer_vocational_completers():
    normal = summary(run_small().model)
    bad = summary(run_small("laereplass.contracts_per_1000=0").model)
    assert bad["routes"]["contract_share_of_vocational"] == 0.0
    assert normal["routes"]["contract_share_of_vocational"] > 0.4
    assert bad["completion_5y_by_track"]["vocational"] < normal["completion_5y_by_track"]["vocational"] - 0.1


def test_students_csv_and_summary_carry_the_groups_and_routes():
    result = run_small()
    table = student_table(result.model)
    for column in ("gender", "parents_education", "switched_programme", "took_pabygg", "private_candidate",
                   "contract_month"):
        assert column in STUDENT_COLUMNS and column in table
    assert set(np.unique(table["gender"])) <= {"female", "male"}
    assert set(np.unique(table["parents_education"])) <= set(EDUCATION_LEVELS)
    appr = table["contract_month"] != NO_MONTH
    assert appr.any() and np.all(table["track"][appr] == "vocational")
    s = result.summary
    assert set(s["completion_5y_by_gender"]) == {"female", "male"}
    assert set(s["completion_5y_by_parents_education"]) == set(EDUCATION_LEVELS)
    assert list(s["completion_5y_by_grade_points"]) == ["<25", "25-30", "30-35", "35-40", "40-45", "45-50",
                                                        "50-55", "55+"]
    assert 0 < s["completion_on_time"] <= s["completion_5y"]
    assert set(s["progression_rates"]) == {"academic_vg1", "academic_vg2", "vocational_vg1", "vocational_vg2"}
