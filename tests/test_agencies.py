"""Agency and regime mechanisms one by one: capacity, referral delay, consent, sequencing,
handoffs, joint assessment, coordination, practice variation, OT, screening."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import DropoutModel, compose_config, run_simulation
from dropout_sim.model.students import NO_MONTH, OUTSIDE


def model_for(*overrides, size=2000):
    return DropoutModel(compose_config([f"cohort.size={size}", *overrides]))


def no_cases(model):
    return np.zeros((model.students.n, len(model.agency_list)), dtype=bool)


def test_agency_at_capacity_queues_new_cases_and_never_exceeds_hours():
    model = model_for("agencies.school.posts_per_1000=0.05", size=2000)  # 0.05*2*70 = 7 h/month
    school = model.school
    assert school.capacity == pytest.approx(7.0)
    ids = np.arange(50)
    school.enqueue(ids, 0)
    helped, _ = school.serve(0, no_cases(model))
    per_case = school.cfg.hours_per_case_month + school.cfg.assessment_hours  # 4 h for a new case
    assert school.ledger.admitted + school.ledger.declined <= int(7.0 // per_case)
    assert school.ledger.hours_used <= 7.0 + 1e-9
    assert school.ledger.queue >= 48
    # next month: open cases are served before anyone new is admitted
    open_before = set(np.flatnonzero(school.case_left > 0))
    helped, _ = school.serve(1, no_cases(model))
    assert open_before <= set(helped)
    assert school.ledger.hours_used <= 7.0 + 1e-9
    # the queue is first come, first served
    school.enqueue(np.arange(1000, 1010), 1)
    still = np.flatnonzero(school.queued_since != NO_MONTH)
    assert school.queued_since[still].min() == 0


@pytest.mark.parametrize("target", ["ppt", "health", "nav", "ot"])
def test_colocated_referral_arrives_sooner_than_siloed(target):
    delays = {}
    for regime in ("siloed", "colocated"):
        model = model_for(f"regime={regime}", size=4000)
        agency = model.agency_by_name[target]
        ids = np.arange(4000)
        mean = model.regime.referral_delay[model.school.index, agency.index]
        agency.refer(ids, 10, mean, f"delay.{target}")
        delays[regime] = (agency.pending_arrival[ids] - 10).mean()
    assert delays["colocated"] < 0.3
    assert delays["siloed"] > delays["colocated"] + 0.05
    if target in ("ppt", "ot"):
        assert delays["siloed"] > 2.0   # months, as the brief says


def set_wants(model, names, ids):
    """The clarification meeting found that ``ids`` need these agencies (and the needs are real)."""
    for name in names:
        agency = model.agency_by_name[name]
        model.wants[ids, agency.index] = True
        model.students.needs[np.ix_(ids, np.flatnonzero(agency.need_mask))] = True


def referred(model, name, ids):
    return model.agency_by_name[name].pending_arrival[ids] != NO_MONTH


def test_consent_gates_referrals_across_sectors_only():
    ids = np.arange(3000)
    shares = {}
    for regime in ("siloed", "colocated"):
        model = model_for(f"regime={regime}", "regime.consent_prob_siloed=0.6", size=3000)
        set_wants(model, ["health"], ids)
        model.route_referrals(5)
        shares[regime] = referred(model, "health", ids).mean()
        if regime == "siloed":
            refused = ~referred(model, "health", ids)
            assert np.all(model.consent_refusals[refused] == 1)
            assert not model.wants[refused, model.agency_by_name["health"].index].any()
    assert shares["siloed"] == pytest.approx(0.6, abs=0.03)
    assert shares["colocated"] == 1.0


def test_information_on_strain_reaches_the_school_only_when_shared():
    flagged = {}
    for regime in ("siloed", "colocated"):
        model = model_for(f"regime={regime}", "intervention.risk_threshold=0.3", size=1000)
        st = model.students
        st.engagement[:], st.mastery[:] = 0.9, 0.8
        st.strain[:] = np.where(np.arange(1000) < 500, 0.95, 0.1)   # only strain differs
        assert model.school_sees_strain() is (regime == "colocated")
        observed = model.risk_score(model.school_sees_mastery(6), model.school_sees_strain())
        flagged[regime] = model.school.screen(6, observed).size
    assert flagged["siloed"] == 0 and flagged["colocated"] == 500


def test_sequential_help_when_siloed_concurrent_when_colocated():
    ids = np.arange(1000)
    for regime, expect_nav in (("siloed", False), ("colocated", True)):
        model = model_for(f"regime={regime}", "regime.consent_prob_siloed=1", size=1000)
        set_wants(model, ["health", "nav"], ids)
        model.route_referrals(5)
        assert referred(model, "health", ids).all()
        assert referred(model, "nav", ids).all() == expect_nav
        assert referred(model, "nav", ids).any() == expect_nav


def test_concurrent_help_reaches_multi_need_students_sooner():
    """Every student needs health and NAV; the second service comes sooner when co-located."""
    waits = {}
    for regime in ("siloed", "colocated"):
        result = run_simulation(compose_config([
            "cohort.size=3000", f"regime={regime}", "horizon_months=36",
            "cohort.psychosocial_prevalence=1", "cohort.financial_prevalence=1",
            "agencies.health.self_referral_prob=0", "agencies.nav.self_referral_prob=0",
            "regime.consent_prob_siloed=1", "regime.handoff_drop_siloed=0",
            "agencies.nav.posts_per_1000=20", "agencies.health.posts_per_1000=20",
            "agencies.school.posts_per_1000=20", "regime.resource_team_hours_per_1000=0",
        ]))
        m = result.model
        first_nav = m.first_help_by_agency[:, m.agency_by_name["nav"].index]
        got_nav = first_nav != NO_MONTH
        assert got_nav.sum() > 300
        waits[regime] = (first_nav[got_nav] - m.first_help_month[got_nav]).mean()
    assert waits["colocated"] < waits["siloed"] - 1.0   # months


def test_dropped_handoff_loses_the_next_referral_and_trust():
    model = model_for("regime=siloed", "regime.handoff_drop_siloed=1", size=500)
    ids = np.arange(200)
    health = model.agency_by_name["health"]
    set_wants(model, ["nav"], ids)
    trust_before = model.students.trust[ids].copy()
    model.handoff(12, health, ids)
    assert not model.wants[ids, model.agency_by_name["nav"].index].any()
    assert np.all(model.dropped_handoffs[ids] == 1)
    assert np.all(model.students.trust[ids] <= trust_before)
    colocated = model_for("regime=colocated", size=500)
    set_wants(colocated, ["nav"], ids)
    colocated.handoff(12, colocated.agency_by_name["health"], ids)
    assert colocated.wants[ids, colocated.agency_by_name["nav"].index].all()   # nobody lets go
    # the school refers while it teaches: the end of its case never drops a waiting referral
    set_wants(model, ["nav"], ids)
    model.handoff(12, model.school, ids)
    assert model.wants[ids, model.agency_by_name["nav"].index].all()


def test_joint_assessment_inside_the_elevtjeneste_duplicate_outside():
    for regime, joint_expected in (("siloed", False), ("colocated", True)):
        model = model_for(f"regime={regime}", "dynamics.acceptance_base=1",
                          "agencies.health.posts_per_1000=50", size=500)
        ids = np.arange(100)
        model.school.case_left[ids] = 3                 # the school holds an open case
        health = model.agency_by_name["health"]
        health.enqueue(ids, 4)
        health.serve(4, np.stack([a.case_left > 0 for a in model.agency_list], axis=1))
        assessment = health.ledger.hours_assessment
        full = 100 * health.cfg.assessment_hours
        if joint_expected:
            assert np.all(model.joint_assessments[ids] == 1) and np.all(model.duplicate_assessments[ids] == 0)
            assert assessment == pytest.approx(full * model.cfg.regime.joint_assessment_share)
            assert np.all(model.meetings[ids] == 0)
        else:
            assert np.all(model.duplicate_assessments[ids] == 1) and np.all(model.meetings[ids] == 1)
            assert assessment == pytest.approx(full)


def test_coordination_hours_grow_steeply_with_agencies_when_siloed():
    for regime in ("siloed", "colocated"):
        model = model_for(f"regime={regime}", size=100)
        k_agencies = len(model.agency_list)
        totals = []
        for k in range(1, k_agencies + 1):
            involved = np.zeros((1, k_agencies), dtype=bool)
            involved[0, :k] = True
            totals.append(model.regime.coordination(involved).sum())
        totals = np.array(totals)
        assert totals[0] == 0 and np.all(np.diff(totals) > 0)
        per_pair = (model.cfg.regime.coordination_hours_siloed if regime == "siloed"
                    else model.cfg.regime.coordination_hours_colocated)
        assert totals[2] == pytest.approx(per_pair * 3 * 2)  # 3 agencies: 6 directed pairs
        if regime == "siloed":
            siloed_totals = totals
    assert np.all(totals[1:] < siloed_totals[1:])


def test_practice_variation_between_caseworkers_narrows_when_colocated():
    spread = {}
    for regime in ("siloed", "nav_pilot"):
        model = model_for(f"regime={regime}", "agencies.nav.approval_probability=0.5", size=20000)
        nav = model.agency_by_name["nav"]
        ids = np.arange(20000)
        approved = nav.approve(3, ids)
        caseworker = nav.caseworker_effect(ids)
        again = nav.approve(4, ids)   # same caseworker next month: outcomes correlate
        assert np.corrcoef(approved, again)[0, 1] > (0.15 if regime == "siloed" else 0.0)
        spread[regime] = approved[caseworker > 1].mean() - approved[caseworker < -1].mean()
        assert approved.mean() == pytest.approx(0.5, abs=0.02)
    assert spread["siloed"] > 0.35
    assert spread["nav_pilot"] < 0.5 * spread["siloed"]


def test_ot_follow_up_raises_reentry():
    shares = {}
    for reentry in (0.0, 0.2):
        s = run_simulation(compose_config(["cohort.size=3000", f"agencies.ot.reentry_prob={reentry}"])).summary
        shares[reentry] = s["reentered_share_of_dropouts"]
        assert s["ot_contact_share_of_dropouts"] > 0.5
    assert shares[0.2] > shares[0.0] + 0.1


def test_no_school_screening_before_the_start_month():
    model = model_for("intervention.screening_start_month=12", "agencies.health.self_referral_prob=0",
                      "agencies.nav.self_referral_prob=0", size=1500)
    model.run(12)
    assert (model.school.case_start == NO_MONTH).all()
    model.run(2)
    assert (model.school.case_start >= 12).any()


def test_outside_students_leave_school_queues():
    model = model_for(size=300)
    model.school.enqueue(np.arange(10), 0)
    model.students.leave(np.arange(10), 0)
    model.school.serve(1, no_cases(model))
    assert (model.school.queued_since[:10] == NO_MONTH).all()
    assert (model.students.status[:10] == OUTSIDE).all()


def test_joint_intake_does_not_refer_a_student_back_to_the_agency_holding_the_case():
    model = model_for("regime=colocated", size=300)
    ids = np.arange(50)
    health, nav = model.agency_by_name["health"], model.agency_by_name["nav"]
    health.case_left[ids] = 3
    model.students.needs[ids] = False
    model.students.needs[np.ix_(ids, [0, 1, 2])] = True   # academic, psychosocial, financial
    model.clarify_needs(ids)
    assert not model.wants[ids, health.index].any()
    assert model.wants[ids, nav.index].all()
    model.students.needs[ids, 2] = False                  # the financial need went away
    model.route_referrals(3)
    assert not referred(model, "nav", ids).any() and not model.wants[ids, nav.index].any()


def test_seeing_strain_sharpens_detection_instead_of_diluting_it():
    model = model_for("regime=colocated", size=20000)
    model.run(5)
    blind = model.risk_score(True, False) >= model.cfg.intervention.risk_threshold
    seeing = model.risk_score(True, True) >= model.cfg.intervention.risk_threshold
    active = model.students.active()
    blind, seeing = blind & active, seeing & active
    assert 0.8 < seeing.sum() / blind.sum() < 1.25
    assert model.students.strain[seeing].mean() > model.students.strain[blind].mean() + 0.03


def test_declined_cases_free_their_hours_for_the_next_in_the_queue():
    model = model_for("agencies.school.posts_per_1000=0.2", "dynamics.acceptance_base=0", size=2000)
    model.students.trust[:] = 0.0                         # everyone declines after the assessment
    school = model.school
    school.enqueue(np.arange(500), 0)
    school.serve(0, no_cases(model))
    assert school.ledger.admitted == 0 and school.ledger.declined > 0
    # the whole capacity (28 h) goes to assessments (2 h each), not just the first batch's
    assert school.ledger.hours_assessment >= school.capacity - school.cfg.assessment_hours
    assert school.ledger.hours_used <= school.capacity + 1e-9


def test_ot_spends_no_coordination_hours_on_students_other_services_have_closed():
    result = run_simulation(compose_config(["cohort.size=3000", "regime=siloed"]))
    assert result.summary["agency_hours"]["ot"]["coordination_hours"] == 0.0
    assert result.summary["agency_hours"]["ot"]["hours_used"] > 0


@pytest.mark.parametrize("start, interval, expected", [
    (11, 12, [12, 24, 36]),           # a July review is held in August
    (5, 6, [5, 12, 17, 24, 29, 36]),  # January, then the July one in August
    (4, 3, [4, 7, 10, 13, 16]),       # no review falls in July: nothing moves
])
def test_reviews_that_fall_in_july_are_held_in_august(start, interval, expected):
    model = model_for(f"intervention.screening_start_month={start}",
                      f"intervention.review_interval_months={interval}", size=100)
    due = [t for t in range(expected[-1] + 1) if model.school.screening_due(t)]
    assert due == expected


def test_triage_queue_admits_the_highest_risk_first():
    admitted_risk = {}
    for order in ("fifo", "risk"):
        model = model_for("agencies.school.posts_per_1000=0.2", "dynamics.acceptance_base=1",
                          f"intervention.queue_order={order}", size=2000)
        st = model.students
        rng = np.random.default_rng(0)
        st.engagement[:] = rng.uniform(0.2, 1.0, st.n)
        observed = model.risk_score(True, False)
        flagged = model.school.screen(4, observed)
        assert flagged.size > 50
        model.school.serve(4, no_cases(model))
        new = np.flatnonzero(model.school.case_start == 4)
        admitted_risk[order] = observed[new].mean()
        assert new.size < flagged.size                    # capacity binds
    assert admitted_risk["risk"] > admitted_risk["fifo"] + 0.05
