"""Student mechanisms one by one: avoidance circle, hazard, calendar, progression, re-entry."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import compose_config
from dropout_sim.calendar import JUNE, is_term_start
from dropout_sim.rng import Streams
from dropout_sim.model import progression
from dropout_sim.model.intake import draw_cohort
from dropout_sim.model.students import (APPRENTICE, COMPLETED, IN_APPRENTICESHIP, IN_SCHOOL, OUTSIDE,
                                        HelpReceived, Students)


@pytest.fixture
def cfg():
    return compose_config(["cohort.size=2000"])


def new_students(cfg, seed: int = 1) -> Students:
    """One cohort of ``cohort.size`` students starting at month 0 (as the county adds one)."""
    st = Students()
    n = cfg.cohort.size
    st.resize(slice(None), n)
    st.fill_cohort(slice(0, n), draw_cohort(cfg.cohort, Streams(seed, 0).generator("cohort.0"), n), 0, 0, np.arange(n))
    return st


@pytest.fixture
def students(cfg):
    return new_students(cfg)


def test_cohort_matches_config(cfg, students):
    assert students.n == 2000
    assert abs(students.track.mean() - cfg.cohort.vocational_share) < 0.04
    gp = students.grade_points
    assert gp.min() >= 10 and gp.max() <= 60
    assert gp[students.track == 1].mean() < gp[students.track == 0].mean() - 4
    # initial mastery follows grade points
    assert np.corrcoef(gp, students.mastery)[0, 1] > 0.8
    ld = students.need("learning_difficulty")
    assert abs(ld.mean() - cfg.cohort.learning_difficulty_prevalence) < 0.025
    assert gp[ld].mean() < gp[~ld].mean()


def test_low_mastery_lowers_attendance_and_mastery_then_falls_further(cfg, students):
    """The vicious circle: low mastery -> avoidance -> absence -> lower mastery."""
    n = students.n
    students.mastery[:] = np.where(np.arange(n) < n // 2, 0.2, 0.8)
    students.strain[:] = 0.3
    students.belonging[:] = 0.6
    students.climate[:] = 0.6
    students.engagement[:] = 0.85
    students.needs[:] = 0
    low, high = np.arange(n) < n // 2, np.arange(n) >= n // 2
    for t in range(1, 6):
        students.update_state(t, np.arange(n), cfg.dynamics, HelpReceived(n))
    assert students.engagement[low].mean() < students.engagement[high].mean() - 0.1
    assert students.mastery[low].mean() < 0.2          # fell further
    assert students.strain[low].mean() > students.strain[high].mean()


def test_help_terms_move_state_in_their_direction(cfg, students):
    n = students.n
    help_ = HelpReceived(n)
    helped = np.arange(n) % 2 == 0
    help_.mastery[helped] = 0.02
    help_.strain[helped] = -0.05
    help_.engagement[helped] = 1.0
    before = students.mastery.copy()
    students.update_state(1, np.arange(n), cfg.dynamics, help_)
    gain = students.mastery - before
    assert gain[helped].mean() > gain[~helped].mean() + 0.015
    other = new_students(cfg)
    other.update_state(1, np.arange(n), cfg.dynamics, HelpReceived(n))
    assert students.strain[helped].mean() < other.strain[helped].mean()
    assert students.engagement[helped].mean() > other.engagement[helped].mean()


def test_dropout_hazard_rises_with_strain_absence_low_mastery_and_transition(cfg, students):
    ids = np.arange(students.n)
    dyn = cfg.dynamics
    students.strain[:], students.engagement[:], students.mastery[:] = 0.2, 0.9, 0.7
    base = students.dropout_hazard(3, ids, dyn)
    for state, value in (("strain", 0.8), ("engagement", 0.4), ("mastery", 0.2)):
        saved = getattr(students, state).copy()
        getattr(students, state)[:] = value
        assert np.all(students.dropout_hazard(3, ids, dyn) > base), state
        getattr(students, state)[:] = saved
    students.level_started[:] = True
    assert np.allclose(students.dropout_hazard(12, ids, dyn), base * dyn.transition_hazard_multiplier)
    assert np.allclose(students.dropout_hazard(13, ids, dyn), base)  # only in the August


def test_failing_subjects_add_a_step_to_the_hazard_below_the_failing_mastery(cfg, students):
    """dynamics.dropout_failing is a step in the logit at dynamics.failing_mastery, not a slope."""
    ids = np.arange(4)
    dyn = cfg.dynamics
    dyn.failing_mastery = 0.5
    students.strain[ids], students.engagement[ids], students.track[ids] = 0.2, 0.9, 0
    students.mastery[ids] = [0.30, 0.49, 0.51, 0.70]
    dyn.dropout_failing = 0.0
    without = students.dropout_hazard(3, ids, dyn)
    dyn.dropout_failing = 1.2
    with_step = students.dropout_hazard(3, ids, dyn)
    logit = lambda h: np.log(h / (1 - h))   # noqa: E731
    assert np.allclose(logit(with_step) - logit(without), [1.2, 1.2, 0.0, 0.0])
    assert np.array_equal(with_step[2:], without[2:])          # above the line: bit for bit unchanged
    assert with_step[1] / with_step[2] > np.exp(1.0)           # the step dwarfs the slope over 0.02 mastery


def test_june_pass_repeat_diploma_and_laereplass(cfg, students):
    streams = Streams(1, 0)
    prog = cfg.progression
    n = students.n
    q = n // 4
    students.mastery[:] = 0.95
    students.mastery[:q] = 0.0                       # these fail and repeat
    students.track[:] = np.repeat([0, 0, 1, 1], q)   # academic, academic, vocational, vocational
    students.level[:] = np.repeat([1, 3, 2, 2], q)
    prog.pass_slope, prog.pass_threshold = 100.0, 0.35  # pass chance ~1e-15 at mastery 0, ~1 at 0.95
    routes, lp = cfg.routes, cfg.laereplass
    routes.switch_prob = 0.0
    routes.move_up_with_fail_prob = 0.0                # failers repeat (moving up: tests/test_population.py)
    routes.pabygg_voluntary_prob = routes.pabygg_prob = 0.0
    lp.school_vg3_prob = 0.0
    pool = progression.ContractPool()
    pool.open_year(q)                                              # contracts for half the vocational passers
    out = progression.june_decisions(students, JUNE, prog, streams, routes, lp, pool)
    repeated = students.repeats[:q] == 1
    assert repeated.all() and np.all(students.level[:q] == 1)   # every one of them repeats Vg1
    assert np.all(students.status[q:2 * q] == COMPLETED)        # academic Vg3 pass -> diploma
    assert set(out["completed"]) == set(range(q, 2 * q))
    voc = np.arange(2 * q, n)
    appr = students.status[voc] == APPRENTICE
    assert appr.sum() == q and pool.left == 0                     # contracts are scarce: the supply, no more
    assert np.all(students.contract_month[voc[appr]] == JUNE)
    assert np.all(students.level[voc[appr]] == IN_APPRENTICESHIP)
    assert np.all(students.status[voc[~appr]] == OUTSIDE)        # no contract, no school Vg3
    assert np.all(students.no_laereplass[voc[~appr]])
    assert set(out["no_contract"]) == set(voc[~appr])


def test_fagprove_after_the_apprenticeship(cfg, students):
    """A contract signed in June (t=22) starts in August (t=24): the fagprøve comes after
    ``apprenticeship_months`` months counted from August."""
    streams, prog = Streams(1, 0), cfg.progression
    students.level[:] = 2
    students.track[:] = 1
    students.mastery[:] = 0.9
    cfg.routes.switch_prob = cfg.routes.pabygg_voluntary_prob = 0.0
    prog.pass_slope, prog.pass_threshold = 14.0, 0.35
    pool = progression.ContractPool()
    pool.open_year(students.n)
    progression.june_decisions(students, 22, prog, streams, cfg.routes, cfg.laereplass, pool)
    appr = students.status == APPRENTICE
    assert appr.mean() > 0.99                                   # nearly all pass Vg2 and sign
    done_at = {}
    for t in range(22, 24 + prog.apprenticeship_months + 3):
        if t == 24:
            assert np.all(students.apprentice_months[appr] == 0)   # nothing counted before August
        for i in progression.apprenticeship_month(students, t, prog, streams):
            done_at[int(i)] = t
    assert len(done_at) > 0.95 * students.n
    assert set(done_at.values()) == {24 + prog.apprenticeship_months - 1}


def test_reentry_only_at_term_start(cfg, students):
    dyn = cfg.dynamics
    students.leave(np.arange(100), 2)
    assert np.all(students.status[:100] == OUTSIDE) and np.all(students.first_dropout_month[:100] == 2)
    students.reentry_pending[:100] = True
    for t in range(3, 12):
        back = progression.reenter(students, t, dyn, cfg.progression, Streams(1, 0))
        if is_term_start(t):
            assert t == 5 and back.size == 100                      # January
        else:
            assert back.size == 0
    assert np.all(students.status[:100] == IN_SCHOOL) and np.all(students.reentered[:100])


def test_returners_without_a_contract_try_again_or_take_vg3_in_school(cfg, students):
    prog = cfg.progression
    ids = np.arange(1000)
    students.track[ids] = 1
    students.level[ids] = 2
    students.mastery[ids] = 0.5
    students.leave(ids, 22)
    students.no_laereplass[ids] = True
    students.reentry_pending[ids] = True
    pool = progression.ContractPool()
    pool.open_year(400)
    pool.left = 300                                                  # some went to June's applicants
    back = progression.reenter(students, 24, cfg.dynamics, prog, Streams(1, 0), cfg.laereplass, pool)
    assert back.size == 1000
    appr = students.status[ids] == APPRENTICE
    assert appr.sum() == 300 and pool.left == 0                      # what is left of this year's supply
    assert np.all(students.level[ids[appr]] == IN_APPRENTICESHIP)
    assert np.all((students.status[ids[~appr]] == IN_SCHOOL) & (students.level[ids[~appr]] == 3))
    assert not students.no_laereplass[ids].any()
