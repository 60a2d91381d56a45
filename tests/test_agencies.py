"""Agency mechanisms one by one: capacity and queues, outcome records, joint assessment,
practice by office, OT's register and lateness, screening, triage, capabilities from config."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import DropoutModel, compose_config, run_simulation
from dropout_sim.model.agencies import screening_due
from dropout_sim.model.metrics import Focal
from dropout_sim.model.students import NO_MONTH, OUTSIDE


def started(*overrides, size=2000, months=1) -> DropoutModel:
    """A county model after its first month(s): one cohort of ``size`` students in its rows
    (every student simulated: ``county.nonfocal_share=1``)."""
    model = DropoutModel(compose_config([f"cohort.size={size}", "county.warmup_years=2", "county.nonfocal_share=1",
                                         *overrides]))
    model.run(months)
    return model


def test_agency_at_capacity_queues_new_cases_and_never_exceeds_hours():
    model = started("agencies.school.posts_per_1000=0.05", "dynamics.acceptance_base=1", size=2000)  # 7 h/month
    school = model.agency_by_name["school"]
    assert school.capacity == pytest.approx(7.0)
    school.queued_since[:] = NO_MONTH
    school.case_left[:] = 0
    ids = np.arange(50)
    school.enqueue(ids, 1)
    school.serve(model.month_context(1))
    per_case = school.cfg.hours_per_case_month + school.cfg.assessment_hours  # 4 h for a new case
    assert school.ledger.admitted == int(7.0 // per_case) == 1
    assert school.ledger.hours_used <= 7.0 + 1e-9
    assert school.ledger.queue >= 48
    open_before = set(np.flatnonzero(school.case_left > 0))
    outcome = school.serve(model.month_context(2))
    assert open_before <= set(outcome.helped)                   # open cases come first
    assert school.ledger.hours_used <= 7.0 + 1e-9
    school.enqueue(np.arange(1000, 1010), 2)
    still = np.flatnonzero(school.queued_since != NO_MONTH)
    assert school.queued_since[still].min() == 1                # first come, first served


def test_serve_returns_an_outcome_record_and_changes_only_its_own_arrays():
    model = started("dynamics.acceptance_base=1", size=1000)
    health = model.agency_by_name["health"]
    st = model.students
    before = {name: getattr(st, name).copy() for name in ("mastery", "strain", "trust", "needs", "status")}
    health.queued_since[:] = NO_MONTH
    health.enqueue(np.arange(40), 1)
    outcome = health.serve(model.month_context(1))
    for name, values in before.items():
        np.testing.assert_array_equal(getattr(st, name), values, err_msg=name)  # the model applies effects
    assert set(outcome.admitted) <= set(range(40)) and outcome.admitted.size > 0
    assert outcome.effects["strain"].shape == outcome.helped.shape and np.all(outcome.effects["strain"] < 0)
    assert outcome.hours.sum() == pytest.approx(health.ledger.hours_help + health.ledger.hours_assessment
                                                + health.ledger.hours_coordination)


def test_joint_assessment_inside_the_elevtjeneste_duplicate_outside():
    for regime, joint_expected in (("siloed", False), ("colocated", True)):
        model = started(f"regime={regime}", "dynamics.acceptance_base=1", "agencies.health.posts_per_1000=50", size=500)
        ids = np.arange(100)
        school, health = model.agency_by_name["school"], model.agency_by_name["health"]
        school.case_left[ids] = 3                           # the school holds an open case
        health.queued_since[:] = NO_MONTH
        health.case_left[:] = 0
        health.enqueue(ids, 1)
        outcome = health.serve(model.month_context(1))
        full = 100 * health.cfg.assessment_hours
        assert np.all(outcome.joint == joint_expected) and np.all(outcome.parallel)
        expected = full * (model.cfg.regime.joint_assessment_share if joint_expected else 1.0)
        assert health.ledger.hours_assessment == pytest.approx(expected)


def test_practice_varies_between_nav_offices_and_narrows_when_colocated_with_the_school():
    spread = {}
    for regime in ("siloed", "nav_pilot"):
        model = started(f"regime={regime}", "agencies.nav.approval_probability=0.5", "agencies.nav.offices=4",
                        size=20000, months=13)   # collaboration has had a year to build
        nav = model.agency_by_name["nav"]
        ids = np.arange(20000)
        ctx = model.month_context(model.month)
        approved = nav.approve(ctx, ids)
        office = nav.office_of(model.students.gid[ids], model.streams)
        assert set(np.unique(office)) == {0, 1, 2, 3}
        rates = np.array([approved[office == o].mean() for o in range(4)])
        spread[regime] = rates.max() - rates.min()
    assert spread["siloed"] > 0.2                     # offices interpret the rules differently
    assert spread["nav_pilot"] < 0.7 * spread["siloed"]


def test_a_new_caseworker_brings_a_new_practice():
    model = started("agencies.nav.offices=4", size=200)
    nav = model.agency_by_name["nav"]
    before = nav.practice.copy()
    changed = nav.turnover(5, 12.0, model.streams)       # a change in every office this month
    assert changed.size == 4 and not np.array_equal(before, nav.practice)
    assert model.agency_by_name["school"].turnover(5, 12.0, model.streams).size == 0  # approves everyone


def test_ot_register_finds_youths_whose_notice_was_lost_without_the_schools_information():
    model = started(size=500, months=2)   # county month 2 = October: OT's register month
    ot = model.agency_by_name["ot"]
    st = model.students
    ids = np.arange(30)
    st.leave(ids, 1)
    ot.pending_arrival[:] = NO_MONTH
    ot.queued_since[:] = NO_MONTH
    found = ot.register_check(model.month_context(2))
    assert set(ids) <= set(found)
    assert not ot.informed[ids].any()                 # the school's information did not come with them
    assert ot.register_check(model.month_context(3)).size == 0   # only in the register month


def test_late_and_uninformed_ot_contacts_are_less_effective():
    model = started(size=400, months=1)
    ot = model.agency_by_name["ot"]
    st = model.students
    ids = np.arange(4)
    st.leave(ids, 0)
    ot.case_start[ids] = [0, 6, 0, 6]                 # contact right away, or six months on
    ot.informed[ids] = [True, True, False, False]
    st.trust[ids] = 0.7
    scale = ot.effect_scale(model.month_context(1), ids)
    assert scale[1] == pytest.approx(scale[0] * 0.5 ** (6 / ot.cfg.effect_halflife_months))
    assert scale[2] == pytest.approx(scale[0] * ot.cfg.uninformed_effect)
    assert scale[3] < scale[1] and scale[3] < scale[2]


def test_ot_follow_up_raises_reentry():
    shares = {}
    for reentry in (0.0, 0.2):
        s = run_simulation(compose_config(["cohort.size=2000", "county.warmup_years=2",
                                           f"agencies.ot.reentry_prob={reentry}"])).summary
        shares[reentry] = s["reentered_share_of_dropouts"]
        assert s["ot_contact_share_of_dropouts"] > 0.5
    assert shares[0.2] > shares[0.0] + 0.1


def test_no_school_screening_before_the_start_month():
    model = started("intervention.screening_start_month=12", "agencies.health.self_referral_prob=0",
                    "agencies.nav.self_referral_prob=0", size=1500, months=24)
    school = model.agency_by_name["school"]
    first = model.students.cohort == model.students.cohort.min()
    started_at = school.case_start[first]
    assert started_at[started_at != NO_MONTH].min() >= 12      # the first cohort's own month 12


@pytest.mark.parametrize("start, interval, expected", [
    (11, 12, [12, 24, 36]),           # a July review is held in August
    (5, 6, [5, 12, 17, 24, 29, 36]),  # January, then the July one in August
    (4, 3, [4, 7, 10, 13, 16]),       # no review falls in July: nothing moves
])
def test_reviews_that_fall_in_july_are_held_in_august(start, interval, expected):
    due = [t for t in range(expected[-1] + 1) if screening_due(np.array([t]), t, start, interval)[0]]
    assert due == expected


def test_outside_students_leave_school_queues():
    model = started(size=300)
    school = model.agency_by_name["school"]
    school.enqueue(np.arange(10), 1)
    model.students.leave(np.arange(10), 1)
    school.begin_month(model.month_context(1))
    assert (school.queued_since[:10] == NO_MONTH).all()
    assert (model.students.status[:10] == OUTSIDE).all()


def test_declined_cases_free_their_hours_for_the_next_in_the_queue():
    model = started("agencies.school.posts_per_1000=0.2", "dynamics.acceptance_base=0", size=2000)
    model.students.trust[:] = 0.0                         # everyone declines after the assessment
    school = model.agency_by_name["school"]
    school.case_left[:] = 0
    school.enqueue(np.arange(500), 1)
    school.serve(model.month_context(1))
    assert school.ledger.admitted == 0 and school.ledger.declined > 0
    # the whole capacity (28 h) goes to assessments (2 h each), not just the first batch's
    assert school.ledger.hours_assessment >= school.capacity - school.cfg.assessment_hours
    assert school.ledger.hours_used <= school.capacity + 1e-9


def test_triage_queue_admits_the_highest_risk_first():
    admitted = {}
    for order in ("fifo", "risk"):
        model = started("agencies.school.posts_per_1000=0.2", "dynamics.acceptance_base=1",
                        f"intervention.queue_order={order}", size=2000)
        school = model.agency_by_name["school"]
        school.queued_since[:] = NO_MONTH
        school.case_left[:] = 0
        ids = np.arange(300)
        risk = np.linspace(0.4, 1.0, ids.size)                 # the latest in the queue have the highest risk
        for month, part in ((1, ids[:150]), (2, ids[150:])):
            school.enqueue(part, month, priority=risk[part])
        school.serve(model.month_context(2))
        new = np.flatnonzero(school.case_start == 2)
        assert 0 < new.size < ids.size                         # capacity binds
        admitted[order] = new
    assert admitted["risk"].min() >= 150 > admitted["fifo"].max()  # triage takes the highest risk, FIFO the oldest


def test_a_sixth_service_that_shares_strain_needs_no_code():
    """Capabilities come from the config: child welfare shares what it knows of strain with the
    school exactly like the school nurse does when both sit in the elevtjeneste."""
    model = started("agencies=with_child_welfare", "regime.colocated=[school,child_welfare]",
                    "regime.name=school_cw", size=400)
    cw = model.agency_by_name["child_welfare"]
    ids = np.arange(50)
    model.log.first_help_by_agency[ids, cw.index] = 0      # child welfare knows them
    model.referrals.consent_given[ids] = True
    assert model.sees_strain(ids).all()
    assert not model.sees_strain(np.arange(50, 100)).any()
    other = started("agencies=with_child_welfare", "regime.colocated=[school,ppt]", "regime.name=school_ppt", size=400)
    other.log.first_help_by_agency[ids, other.agency_by_name["child_welfare"].index] = 0
    other.referrals.consent_given[ids] = True
    assert not other.sees_strain(ids).any()                # not co-located: nothing flows


def test_seeing_strain_sharpens_detection_instead_of_diluting_it():
    model = started("regime=colocated", size=20000, months=6)
    active = np.flatnonzero(model.students.active())
    threshold = model.cfg.intervention.risk_threshold
    blind = model.risk_score(active, True, False) >= threshold
    seeing = model.risk_score(active, True, True) >= threshold
    assert 0.8 < seeing.sum() / blind.sum() < 1.25
    st = model.students
    assert st.strain[active[seeing]].mean() > st.strain[active[blind]].mean() + 0.015


def test_ot_spends_no_coordination_hours_on_students_other_services_have_closed():
    s = run_simulation(compose_config(["cohort.size=2000", "county.warmup_years=2", "regime=siloed"])).summary
    assert s["agency_hours"]["ot"]["hours_coordination"] == 0.0
    assert s["agency_hours"]["ot"]["hours_used"] > 0


def test_risk_is_measured_with_a_fixed_threshold_whatever_the_schools_action_threshold():
    """The heat map of early intervention compares the same at-risk population at every threshold."""
    at_risk = []
    for action in (0.25, 0.45):
        f = Focal(run_simulation(compose_config(["cohort.size=2000", "county.warmup_years=2",
                                                 f"intervention.risk_threshold={action}"])).model)
        at_risk.append(f.first_risk_month != NO_MONTH)
    agree = (at_risk[0] == at_risk[1]).mean()
    assert agree > 0.9                                       # the same students, give or take help's effects
    # had risk been measured at the action threshold, the two populations would differ far more
    measured = [(Focal(run_simulation(compose_config(["cohort.size=2000", "county.warmup_years=2",
                                                      f"intervention.risk_threshold={t}",
                                                      f"output.risk_measure_threshold={t}"])).model)
                 .first_risk_month != NO_MONTH).mean() for t in (0.25, 0.45)]
    assert abs(at_risk[0].mean() - at_risk[1].mean()) < 0.2 * abs(measured[0] - measured[1])
