"""Referral mechanisms: needs clarification, consent with trust, sequencing, handoffs, the dropout notice."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import DropoutModel, compose_config, run_simulation
from dropout_sim.model.students import NEED_BIT, NO_MONTH


def started(*overrides, size=2000, months=13) -> DropoutModel:
    """A county after ``months``: the first cohort in school, collaboration given a year to build."""
    model = DropoutModel(compose_config([f"cohort.size={size}", "county.warmup_years=2", *overrides]))
    model.run(months)
    return model


def want(model: DropoutModel, names, ids, fresh_consent: bool = True):
    """The clarification meeting found that ``ids`` (with no case, queue or referral anywhere,
    and no consent given yet unless ``fresh_consent`` is off) need these agencies; the needs are real."""
    for agency in model.agency_list:
        agency.pending_arrival[ids] = NO_MONTH
        agency.queued_since[ids] = NO_MONTH
        agency.case_left[ids] = 0
    model.referrals.wants[ids] = False
    if fresh_consent:
        model.referrals.consent_given[ids] = False
    for name in names:
        agency = model.agency_by_name[name]
        model.referrals.wants[ids, agency.index] = True
        model.students.needs[ids] |= agency.need_bits


def referred(model, name, ids):
    return model.agency_by_name[name].pending_arrival[ids] != NO_MONTH


def route(model, t=None):
    t = model.month if t is None else t
    n = model.students.n
    model.referrals.route(t, model.students, model.regime, model.streams, np.zeros(n, dtype=bool),
                          model.cfg.regime.sharing_trust_cost)


def in_school_ids(model, k):
    return np.flatnonzero(model.students.status == 0)[:k]


def test_consent_rises_with_trust_and_is_signed_once_inside_the_elevtjeneste():
    model = started("regime=siloed", "regime.consent_prob_siloed=0.6", size=4000)
    ids = in_school_ids(model, 3000)
    st = model.students
    st.trust[ids] = np.where(np.arange(ids.size) % 2 == 0, 0.9, 0.3)
    want(model, ["health"], ids)
    refusals = model.referrals.consent_refusals[ids].copy()
    route(model)
    got = referred(model, "health", ids)
    high, low = got[::2].mean(), got[1::2].mean()
    assert high > low + 0.3                                  # consent is easy when relations are good
    assert np.array_equal(model.referrals.consent_refusals[ids] - refusals, (~got).astype(int))
    refused = ids[~got]
    assert not model.referrals.wants[refused, model.agency_by_name["health"].index].any()

    colo = started("regime=colocated", size=4000)
    ids = in_school_ids(colo, 3000)
    colo.students.trust[ids] = 0.7
    want(colo, ["health"], ids)
    route(colo)
    first = referred(colo, "health", ids)
    assert first.mean() > model.cfg.regime.consent_prob_siloed + 0.1   # at the same trust (0.7)
    assert colo.referrals.consent_given[ids[first]].all()   # signed at the joint intake
    want(colo, ["nav"], ids[first], fresh_consent=False)
    route(colo)
    assert referred(colo, "nav", ids[first]).all()           # no second question: seamless


def test_sharing_costs_trust_more_when_everyone_at_the_table_is_told():
    losses = {}
    for regime in ("siloed", "colocated"):
        model = started(f"regime={regime}", "regime.sharing_trust_cost=0.05", "regime.consent_prob_siloed=1",
                        "regime.consent_prob_colocated=1", size=1000)
        ids = in_school_ids(model, 500)
        want(model, ["health"], ids)
        model.students.trust[ids] = 0.7
        before = model.students.trust[ids].copy()
        route(model)
        losses[regime] = (before - model.students.trust[ids]).mean()
    assert losses["siloed"] == pytest.approx(0.05)
    assert losses["colocated"] == pytest.approx(0.05 * 4)    # the other four co-located services


def test_sequential_help_when_siloed_concurrent_when_colocated():
    for regime, expect_nav in (("siloed", False), ("colocated", True)):
        model = started(f"regime={regime}", "regime.consent_prob_siloed=1", "regime.consent_prob_colocated=1",
                        size=1000)
        ids = in_school_ids(model, 600)
        want(model, ["health", "nav"], ids)
        route(model)
        assert referred(model, "health", ids).all()
        assert referred(model, "nav", ids).all() == expect_nav
        assert referred(model, "nav", ids).any() == expect_nav


def test_concurrent_help_reaches_multi_need_students_sooner():
    """Every student needs health and NAV; the second service comes sooner when co-located."""
    waits = {}
    for regime in ("siloed", "colocated"):
        model = run_simulation(compose_config([
            "cohort.size=2500", "county.warmup_years=2", f"regime={regime}", "horizon_months=36",
            "cohort.psychosocial_prevalence=1", "cohort.financial_prevalence=1",
            "agencies.health.self_referral_prob=0", "agencies.nav.self_referral_prob=0",
            "regime.consent_prob_siloed=1", "regime.consent_prob_colocated=1", "regime.handoff_drop_siloed=0",
            "agencies.nav.posts_per_1000=20", "agencies.health.posts_per_1000=20",
            "agencies.school.posts_per_1000=20", "regime.resource_team_hours_per_1000=0",
        ])).model
        from dropout_sim.model.metrics import Focal

        f = Focal(model)
        nav, health = (model.agency_by_name[a].index for a in ("nav", "health"))
        both = (f.first_help_by_agency[:, nav] != NO_MONTH) & (f.first_help_by_agency[:, health] != NO_MONTH)
        assert both.sum() > 200
        waits[regime] = np.abs(f.first_help_by_agency[both, nav] - f.first_help_by_agency[both, health]).mean()
    assert waits["colocated"] < waits["siloed"] - 1.0   # months


def test_dropped_handoff_loses_the_next_referral_and_trust():
    model = started("regime=siloed", "regime.handoff_drop_siloed=1", size=500)
    ids = in_school_ids(model, 200)
    health, nav = model.agency_by_name["health"], model.agency_by_name["nav"]
    want(model, ["nav"], ids)
    before = model.students.trust[ids].copy()
    dropped = model.referrals.dropped_handoffs[ids].copy()
    lead = np.zeros(model.students.n, dtype=bool)
    model.referrals.handoff(12, model.students, health, ids, model.regime, model.streams, lead, 0.12)
    assert not model.referrals.wants[ids, nav.index].any()
    assert np.all(model.referrals.dropped_handoffs[ids] - dropped == 1)
    assert np.all(model.students.trust[ids] <= before)
    # a lead worker holds the baton
    want(model, ["nav"], ids)
    model.referrals.handoff(12, model.students, health, ids, model.regime, model.streams,
                            np.ones(model.students.n, dtype=bool), 0.12)
    assert model.referrals.wants[ids, nav.index].all() or not model.regime.lead_on["handoff"]
    # the school refers while it teaches: the end of its case never drops a waiting referral
    want(model, ["nav"], ids)
    model.referrals.handoff(12, model.students, model.agency_by_name["school"], ids, model.regime,
                            model.streams, lead, 0.12)
    assert model.referrals.wants[ids, nav.index].all()


def test_colocated_handoffs_can_still_be_dropped_when_help_is_not_concurrent():
    """regime.handoff_drop_colocated acts: co-located pairs whose concurrent help is switched off
    (the decomposition experiment) hand over at the co-located drop rate."""
    model = started("regime=colocated", "regime.mechanisms=[handoff,resource_team]", "regime.handoff_drop_colocated=1",
                    "regime.collaboration_build_per_year=100", "regime.turnover_per_year=0", size=500)
    assert not model.regime.concurrent[1, 3] and model.regime.handoff_drop[1, 3] > 0.9
    ids = in_school_ids(model, 100)
    want(model, ["nav"], ids)
    dropped = model.referrals.dropped_handoffs[ids].copy()
    model.referrals.handoff(12, model.students, model.agency_by_name["health"], ids, model.regime, model.streams,
                            np.zeros(model.students.n, dtype=bool), 0.12)
    assert (model.referrals.dropped_handoffs[ids] - dropped).mean() > 0.9


def test_the_dropout_notice_to_ot_is_lost_between_siloed_services():
    lost = {}
    for regime in ("siloed", "colocated"):
        model = started(f"regime={regime}", size=3000)
        ids = in_school_ids(model, 2000)
        model.students.leave(ids, model.month)
        lead = np.zeros(model.students.n, dtype=bool)
        ot = model.agency_by_name["ot"]
        ot.pending_arrival[ids] = NO_MONTH
        before = model.referrals.lost_notices[ids].copy()
        model.referrals.notify_dropouts(model.month, model.students, ids, model.regime, model.streams, lead)
        was_lost = model.referrals.lost_notices[ids] > before
        lost[regime] = was_lost.mean()
        assert np.all(referred(model, "ot", ids) == ~was_lost)
    assert lost["siloed"] == pytest.approx(model.cfg.regime.dropout_notice_loss_siloed, abs=0.03)
    assert lost["colocated"] < 0.5 * lost["siloed"]


def test_needs_transferred_from_lower_secondary_reach_the_clarification_meeting_at_intake():
    plain = DropoutModel(compose_config(["cohort.size=2000", "county.warmup_years=2"]))
    needs = DropoutModel(compose_config(["cohort.size=2000", "county.warmup_years=2",
                                         "intervention.info_transfer=needs"]))
    plain.run(1)
    needs.run(1)
    hub_plain, hub_needs = plain.agency_by_name["school"], needs.agency_by_name["school"]
    assert (hub_plain.case_start == 0).sum() == 0              # no screening before December
    known = (hub_needs.case_start == 0) | (hub_needs.queued_since == 0)
    assert known.sum() > 100
    served = NEED_BIT["psychosocial"] | NEED_BIT["financial"] | NEED_BIT["learning_difficulty"] | NEED_BIT["practical"]
    assert np.all(needs.students.needs_at_intake[known] & served)
