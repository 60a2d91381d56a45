"""The Mesa model: a cohort, the agencies and the documented monthly step.

Month ``t = 0`` is the first day of Vg1 (August). Each call of :meth:`DropoutModel.step`
simulates one month in this fixed order (order is a modelling decision, not an accident of
activation):

1. **Calendar** - August: students who moved up start the harder level; at a term start
   (August, January) youths who decided to return re-enter (those who lacked a læreplass
   try again for a contract, else take Vg3 in school).
2. **Events** - stress events and new psychosocial/financial needs; the academic need follows
   mastery.
3. **Risk signals** - the true risk score of every active student; the first month it reaches
   the threshold is the student's first risk signal (whether anyone sees it or not).
4. **Detection** - on review months from ``screening_start_month`` (a July review is held in
   August) the school screens the *observed* risk (absence always; grades once known or
   transferred; strain only when the school shares information with health; an unobserved
   indicator counts at the cohort mean); agencies with an own route take self-referrals.
5. **Referral routing** - needs found at the school's clarification meeting (or, inside the
   elevtjeneste, at any co-located agency's joint intake) become referrals to the agencies
   serving them. Per pair (school, agency): consent gates the referral and the
   delay is siloed or co-located; per pair of services: referrals wait for a running case
   unless both are co-located (sequential versus concurrent help).
6. **Agencies act**: first every agency takes in arrived referrals and drops students it no
   longer serves; then, in config order, open cases and then the queue are served within
   capacity (hours per month; hours left by declined cases go to the next in the queue);
   new cases are assessed (jointly when a co-located partner holds the case), accepted
   (x trust) and approved (NAV practice variation: a caseworker effect fixed per student).
7. **Handoffs** - when a service's case ends and a service it made wait (a siloed pair)
   should take over, the baton may be dropped; trust falls.
8. **Meetings and trust** - meetings held this month; trust falls per extra meeting and rises
   with continuity of help.
9. **Student update** - mastery, strain, belonging, attendance, trust with this month's help.
10. **Exits and returns** - the dropout hazard (extra risk in the August a level starts); OT is
    notified of each dropout; outside youths decide to return (OT follow-up raises the chance).
11. **Progression** - June: pass/repeat, diplomas, vocational Vg2 -> læreplass or Vg3 in school
    or outside; apprentices count months and sit the fagprøve.
12. **Record** - the month's status counts, agency hours, queues and caseloads.
"""

from __future__ import annotations

import mesa
import numpy as np

from .. import calendar
from .agencies import AGENCY_CLASSES, Agency
from .metrics import MonthlyRecorder
from .regimes import Regime
from ..rng import Streams
from ..schema import Config, agency_configs, validate
from .students import IN_SCHOOL, NO_MONTH, HelpReceived, Students


class DropoutModel(mesa.Model):
    """Upper-secondary cohort with five (or more) agencies under a co-location regime.

    Build it from a validated :class:`~dropout_sim.schema.Config`; call :meth:`run` (or
    :meth:`step` month by month); read ``students``, ``agencies`` and ``recorder``.
    """

    def __init__(self, cfg: Config):
        validate(cfg)
        self.streams = Streams(cfg.seed, cfg.replicate)
        super().__init__(rng=self.streams.generator("mesa"))
        self.cfg = cfg
        self.month = 0
        self.students = Students(cfg.cohort, self.streams)
        self.help = HelpReceived(self.students.n)
        n = self.students.n
        self.intensity = cfg.intervention.support_intensity
        self.resource_team_hours = cfg.regime.resource_team_hours_per_1000 * n / 1000.0

        self.agency_list: list[Agency] = []
        agency_cfgs = agency_configs(cfg)
        for index, (name, acfg) in enumerate(agency_cfgs.items()):
            self.agency_list.append(AGENCY_CLASSES[acfg.kind](self, name, acfg, index))
        self.agency_by_name = {a.name: a for a in self.agency_list}
        self.school = next((a for a in self.agency_list if a.cfg.kind == "school"), None)
        self.school_name = self.school.name if self.school else None
        self.ot = next((a for a in self.agency_list if a.cfg.kind == "ot"), None)
        self.regime = Regime(cfg.regime, list(agency_cfgs),
                             [a.siloed_delay_months for a in agency_cfgs.values()])
        k = len(self.agency_list)

        # Per-student bookkeeping of the services (units: months, counts).
        self.wants = np.zeros((n, k), dtype=bool)
        """wants[s, a]: the school's clarification meeting found that s needs agency a."""
        self.assessments = np.zeros(n, dtype=np.int16)
        self.joint_assessments = np.zeros(n, dtype=np.int16)
        self.duplicate_assessments = np.zeros(n, dtype=np.int16)
        self.meetings = np.zeros(n, dtype=np.int32)
        self.hours_received = np.zeros(n)
        """hours_received[s]: agency hours spent on s (assessments, case work, coordination);
        resource-team overhead is not attributed to students."""
        self.help_months = np.zeros(n, dtype=np.int32)
        """help_months[s]: agency-months of help received (a month helped by two agencies counts 2);
        meetings / help_months is the meeting load per unit of help (joint meetings share it)."""
        self.dropped_handoffs = np.zeros(n, dtype=np.int16)
        self.consent_refusals = np.zeros(n, dtype=np.int16)
        self.first_help_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.first_help_by_agency = np.full((n, k), NO_MONTH, dtype=np.int32)
        self.ot_contact_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.ot_wait_months = np.full(n, NO_MONTH, dtype=np.int32)
        self._helped_now = np.zeros((n, k), dtype=bool)
        self.recorder = MonthlyRecorder(self)

    # ------------------------------------------------------------------ callbacks from agencies
    def mark_helped(self, ids: np.ndarray, t: int, agency_index: int, in_school: bool) -> None:
        self._helped_now[ids, agency_index] = True
        col = self.first_help_by_agency[:, agency_index]
        col[ids[col[ids] == NO_MONTH]] = t
        if in_school:
            first = ids[self.first_help_month[ids] == NO_MONTH]
            self.first_help_month[first] = t

    def mark_ot_contact(self, ids: np.ndarray, t: int) -> None:
        new = ids[self.ot_contact_month[ids] == NO_MONTH]
        self.ot_contact_month[new] = t
        self.ot_wait_months[new] = t - self.students.last_dropout_month[new]

    def record_assessments(self, ids: np.ndarray, joint: np.ndarray, parallel: np.ndarray) -> None:
        """Intake assessments: a separate one is a meeting for the student, a joint one is not.
        A separate intake while another agency holds an open case is a *duplicate* assessment
        (work a joint plan would have shared). ``ids`` are unique within one call."""
        self.assessments[ids[~joint]] += 1
        self.joint_assessments[ids[joint]] += 1
        self.duplicate_assessments[ids[~joint & parallel]] += 1
        self.meetings[ids[~joint]] += 1

    @property
    def agencies_involved(self) -> np.ndarray:
        """(n, K) bool: agency k has helped student s at least once."""
        return self.first_help_by_agency != NO_MONTH

    # ------------------------------------------------------------------ risk
    def risk_score(self, observe_mastery: bool = True, observe_strain: bool = True) -> np.ndarray:
        """Weighted risk score in [0, 1] from absence, low mastery and strain (fixed weights).

        An indicator the school cannot observe enters at its mean over active students (what
        the school may assume of anyone), so seeing more only moves students whose value
        differs from the typical one: it sharpens detection rather than diluting the score.
        """
        st, iv = self.students, self.cfg.intervention
        total = iv.attendance_weight + iv.mastery_weight + iv.strain_weight
        active = st.active()

        def seen(values: np.ndarray, observed: bool) -> np.ndarray | float:
            if observed:
                return values
            return float(values[active].mean()) if active.any() else 0.0

        return (iv.attendance_weight * (1.0 - st.engagement)
                + iv.mastery_weight * seen(1.0 - st.mastery, observe_mastery)
                + iv.strain_weight * seen(st.strain, observe_strain)) / total

    def school_sees_mastery(self, t: int) -> bool:
        iv = self.cfg.intervention
        return iv.info_transfer or t >= iv.first_grades_month

    def school_sees_strain(self) -> bool:
        """Information from health reaches the school only when both are co-located (consent at intake)."""
        health = [a for a in self.agency_list if a.cfg.kind == "health"]
        return self.school is not None and any(self.regime.colocated(self.school_name, h.name) for h in health)

    # ------------------------------------------------------------------ the monthly step
    def step(self) -> None:
        """Advance one month (see the module docstring for the order)."""
        t, st, cfg = self.month, self.students, self.cfg
        self.help.reset()
        self._helped_now[:] = False

        # 1. calendar
        if calendar.is_august(t):
            st.start_school_year(t, cfg.dynamics)
        st.reenter(t, cfg.dynamics, cfg.progression, self.streams)

        # 2. events
        st.stress_events(t, cfg.dynamics, self.streams)
        st.refresh_academic_need(cfg.dynamics.low_mastery_threshold)

        # 3. risk signals (the truth, whether detected or not)
        active = st.active()
        at_risk = active & (self.risk_score() >= cfg.intervention.risk_threshold)
        st.first_risk_month[at_risk & (st.first_risk_month == NO_MONTH)] = t

        # 4. detection
        if self.school is not None and self.school.screening_due(t):
            observed = self.risk_score(self.school_sees_mastery(t), self.school_sees_strain())
            self.school.screen(t, observed)
        for agency in self.agency_list:
            agency.self_referrals(t)

        # 5. referral routing
        self.route_referrals(t)

        # 6. agencies act
        for agency in self.agency_list:
            agency.begin_month(t)
        involved = np.stack([a.case_left > 0 for a in self.agency_list], axis=1)
        ended_by_agency = []
        for agency in self.agency_list:
            helped, ended = agency.serve(t, involved)
            ended_by_agency.append(ended)
            if agency is self.school or self.in_elevtjeneste(agency):
                self.clarify_needs(helped[agency.case_start[helped] == t])

        # 7. handoffs
        for agency, ended in zip(self.agency_list, ended_by_agency):
            self.handoff(t, agency, ended)

        # 8. meetings and trust
        helped_any = self._helped_now.any(axis=1)
        ids = np.flatnonzero(helped_any)
        meetings = self.regime.meetings(self._helped_now[ids])
        self.meetings[ids] += meetings
        self.help_months[ids] += self._helped_now[ids].sum(axis=1)
        rc = cfg.regime
        self.help.trust[ids] += rc.trust_gain_continuity - rc.trust_loss_per_meeting * np.maximum(0, meetings - 1)

        # 9. student update
        st.update_state(t, cfg.dynamics, self.help)

        # 10. exits and returns
        left = st.dropouts_this_month(t, cfg.dynamics, self.streams)
        self.notify_ot(t, left)
        st.decide_reentry(t, self.help.reentry, cfg.dynamics, self.streams)

        # 11. progression
        if calendar.is_june(t):
            outcome = st.june_decisions(t, cfg.progression, self.streams)
            self.notify_ot(t, outcome["no_contract"])
        st.apprenticeship_month(t, cfg.progression, self.streams)

        # 12. record
        self.recorder.record(t)
        self.month += 1

    def in_elevtjeneste(self, agency: Agency) -> bool:
        """True if the agency shares the school's intake ("one door in"): a new case there gets
        the joint plan, so needs other services serve are found too. A siloed agency knows
        only its own part."""
        return self.school is not None and self.regime.colocated(self.school_name, agency.name)

    def clarify_needs(self, ids: np.ndarray) -> None:
        """The clarification meeting / joint plan finds each new case's needs and who serves them."""
        if ids.size == 0:
            return
        needs = self.students.needs[ids]
        for agency in self.agency_list:
            if agency is self.school or agency.cfg.kind == "ot":
                continue
            new = (needs & agency.need_mask).any(axis=1) & ~agency.engaged()[ids]
            self.wants[ids[new], agency.index] = True

    def route_referrals(self, t: int) -> None:
        """Turn wanted referrals into referrals: consent-gated, sequential unless co-located."""
        if self.school is None:
            return
        st, reg, s = self.students, self.regime, self.school.index
        engaged = np.stack([a.engaged() for a in self.agency_list], axis=1)
        in_school = st.status == IN_SCHOOL
        self.wants[~st.active()] = False
        for agency in self.agency_list:
            b = agency.index
            if b == s or agency.cfg.kind == "ot":
                continue
            cand = self.wants[:, b] & ~engaged[:, b] & in_school
            resolved = self.wants[:, b] & ~agency.has_served_need()
            self.wants[resolved, b] = False  # the need went away while the referral waited
            cand &= ~resolved
            # Sequential help: another service's running involvement blocks b unless the pair is co-located.
            blockers = ~reg.concurrent[:, b]
            blockers[[s, b]] = False
            cand &= ~(engaged[:, blockers].any(axis=1))
            ids = np.flatnonzero(cand)
            if ids.size == 0:
                continue
            consent = self.streams.bernoulli(f"consent.{agency.name}", t, ids, reg.consent_prob[s, b])
            refused = ids[~consent]
            self.consent_refusals[refused] += 1
            self.wants[refused, b] = False
            go = ids[consent]
            self.wants[go, b] = False
            agency.refer(go, t, reg.referral_delay[s, b], f"delay.{agency.name}")
            engaged[go, b] = True

    def handoff(self, t: int, agency: Agency, ended: np.ndarray) -> None:
        """A case ended: services still waiting on it (siloed pairs) may drop the baton."""
        if ended.size == 0 or agency is self.school:
            return  # the school refers while it teaches: its case never holds the baton
        a = agency.index
        for nxt in self.agency_list:
            b = nxt.index
            p = self.regime.handoff_drop[a, b]
            if b == a or p <= 0 or self.regime.concurrent[a, b]:
                continue  # only a service that made b wait (sequential help) can drop the baton
            waiting = ended[self.wants[ended, b]]
            drop = waiting[self.streams.bernoulli(f"handoff.{agency.name}.{nxt.name}", t, waiting, p)]
            self.wants[drop, b] = False
            self.dropped_handoffs[drop] += 1
            st = self.students
            st.trust[drop] = np.maximum(0.0, st.trust[drop] - self.cfg.regime.trust_loss_dropped_handoff)

    def notify_ot(self, t: int, ids: np.ndarray) -> None:
        """The school tells OT who left; OT learns late when the pair is siloed."""
        if self.ot is None or ids.size == 0:
            return
        self.wants[ids] = False
        s = self.school.index if self.school is not None else self.ot.index
        self.ot.refer(ids, t, self.regime.referral_delay[s, self.ot.index], "delay.ot")

    # ------------------------------------------------------------------ running
    def run(self, months: int | None = None) -> "DropoutModel":
        """Run ``months`` (default: the horizon) months and return self."""
        for _ in range(self.cfg.horizon_months if months is None else months):
            self.step()
        return self
