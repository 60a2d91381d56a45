"""The Mesa model: a county's upper-secondary students, the agencies and the documented monthly step.

**The county.** A new Vg1 cohort of ``cohort.size`` students starts every August, so several
year groups are in school, in apprenticeships and outside (OT's target group) at once, and the
agencies serve all of them. The first ``county.warmup_years`` cohorts fill the year groups and
let queues, caseloads and collaboration settle; outcomes are reported for the
``county.focal_cohorts`` entry cohorts that follow, each followed ``horizon_months`` from its
first day of Vg1. County month ``t = 0`` is the first warm-up cohort's first day of Vg1; the
first focal cohort starts at ``t = 12 x warmup_years`` (its month 0, as in every output).
Entry cohorts are numbered from the first focal one (0, 1, ...; warm-up cohorts are negative),
and a student's random draws are keyed by (entry cohort, position): the same student of the
same entry cohort draws the same intake in every scenario, whatever the warm-up, and the same
monthly numbers in every scenario with the same ``county.warmup_years`` (monthly draws are keyed by
the county month, which the warm-up shifts): compare scenarios at equal warm-up.

Each call of :meth:`DropoutModel.step` simulates one month in this fixed order (order is a
modelling decision, not an accident of activation):

0. **County** - August: students who left the county (a non-focal cohort six years after entry,
   or a non-focal student who completed) are dropped, the new cohort is drawn, and every agency's
   posts are set from the county's enrolment (OT: its target group). Every month: the regime's
   pair matrices for this month (reform start, collaboration), staff changes per office (a new
   caseworker's practice; co-located partners spend hours teaching them),
   meeting time (resource team) reserved from each co-located agency's hours.
1. **Calendar** - August: students who moved up start the harder level; at a term start (August,
   January) youths who decided to return re-enter.
2. **Events** - stress events and new psychosocial/financial needs; the academic need follows mastery.
3. **Risk signals** - every active student's true risk score; the first month it reaches the
   fixed measurement threshold (``output.risk_measure_threshold``) is their first risk signal.
4. **Detection** - on each student's review months from ``screening_start_month`` the screening
   agency (school) sees the *observed* risk (absence always; grades once known or transferred;
   strain only from a co-located agency that shares it, for students it knows who consented; an
   unseen indicator counts at the mean) and queues those at its action threshold; with
   ``info_transfer=needs`` students with documented needs join the school's queue at intake (their
   needs are clarified when the school admits them); agencies
   take self-referrals; OT works through its register in October.
5. **Referral routing** - wanted referrals become consent-gated, delayed referrals, sequential
   unless the pair is concurrent (:mod:`.referrals`).
6. **Agencies act** - arrivals join queues, students no longer served leave; then each agency in
   config order (a Mesa AgentSet) serves within its hours and returns a
   :class:`~dropout_sim.model.agencies.ServiceOutcome`, which the model applies before the next
   agency serves: bookkeeping, help effects, and the clarification meeting for new cases at the
   hub or inside the elevtjeneste (students referred on get a lead worker when the regime has them).
   Lead workers serve last.
7. **Handoffs** - when a case ends and a service it made wait should take over, the baton may be dropped.
8. **Meetings and trust** - meetings held this month; trust falls per extra meeting and rises with
   continuity of help.
9. **Student update** - mastery, strain, belonging, attendance, trust with this month's help.
10. **Exits and returns** - the dropout hazard; the school's notice to OT (which may be lost);
    outside youths decide to return (OT follow-up raises the chance).
11. **Progression** - June: the county's contract supply for the year is offered; omvalg (Vg1
    students changing programme start Vg1 again); pass/repeat ('fullført, ikke bestått' for most
    final-year failers); diplomas; vocational Vg2 passers get a contract by mastery rank while
    the supply lasts, else påbygg, Vg3 in school or outside; December and June: private candidates
    retake exams; apprentices count months and sit the fagprøve.
12. **Collaboration** - co-located pairs' working relationships grow with the cases they held jointly
    and decay with staff turnover on both sides.
13. **Record** - the month's county and focal stocks, agency hours, queues and waits.
"""

from __future__ import annotations

import mesa
from mesa.agent import AgentSet
import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import AgencyConfig, Config, agency_configs, agency_setting, run_months, validate
from . import progression
from .agencies import Agency, LeadWorkers, MonthContext, ServiceOutcome, screening_due
from .columns import PerStudent
from .intake import draw_cohort
from .metrics import MonthlyRecorder
from .referrals import Referrals
from .regimes import Regime
from .students import COMPLETED, IN_SCHOOL, NO_MONTH, HelpReceived, Students

COUNTY_YEARS = 6
"""School years a non-focal cohort stays in the county (Vg1-Vg3, apprenticeship, delays;
OT's target group ends at about 21, five years after Vg1)."""


class ServiceLog(PerStudent):
    """Per-student record of the services received (counts, hours, months; county months)."""

    COLUMNS = {"assessments": (np.int16, 0), "joint_assessments": (np.int16, 0),
               "duplicate_assessments": (np.int16, 0), "meetings": (np.int32, 0),
               "hours_received": (np.float64, 0.0), "help_months": (np.int32, 0),
               "first_help_month": (np.int32, NO_MONTH), "first_help_by_agency": (np.int32, NO_MONTH),
               "ot_contact_month": (np.int32, NO_MONTH), "ot_wait_months": (np.int32, NO_MONTH),
               "lead_worker_month": (np.int32, NO_MONTH)}
    WIDE = ("first_help_by_agency",)
    """``hours_received``: agency hours spent on the student (assessments, case work, coordination);
    meeting overhead is not attributed to students. ``help_months``: agency-months of help (a
    month helped by two agencies counts 2). ``ot_*``: first contact by a service for youths
    outside school after the student's exit, and the months it took."""


class DropoutModel(mesa.Model):
    """A county's upper-secondary students with five (or more) agencies under a co-location regime.

    Build it from a validated :class:`~dropout_sim.schema.Config`; call :meth:`run` (or
    :meth:`step` month by month); read ``students``, ``agency_list``, ``log``, ``referrals`` and
    ``recorder``; :meth:`focal_rows` are the students whose outcomes are reported.
    """

    def __init__(self, cfg: Config):
        validate(cfg)
        self.streams = Streams(cfg.seed, cfg.replicate)
        super().__init__(rng=self.streams.generator("mesa"))
        self.cfg = cfg
        self.month = 0
        """County month about to be simulated (0 = the first warm-up cohort's first day of Vg1)."""
        self.warmup_months = 12 * cfg.county.warmup_years
        self.months = run_months(cfg)
        self.cohort_size = int(cfg.cohort.size)
        self.staffing_scale = agency_setting(cfg, "staffing_scale")
        self.intensity = cfg.intervention.support_intensity

        self.students = Students()
        agency_cfgs = agency_configs(cfg)
        self.agency_list: list[Agency] = [Agency(self, name, acfg, i, self.streams)
                                          for i, (name, acfg) in enumerate(agency_cfgs.items())]
        self.services = AgentSet(self.agency_list, random=self.random)
        """The agencies as a Mesa AgentSet, iterated in config order (the documented activation order)."""
        self.agency_by_name = {a.name: a for a in self.agency_list}
        self.hub = next((a for a in self.agency_list if a.cfg.hub), None)
        self.screener = next((a for a in self.agency_list if a.cfg.screens), None)
        start = cfg.regime.start_month
        self.regime = Regime(cfg.regime, agency_cfgs, self.hub.index if self.hub else None,
                             0 if start is None else self.warmup_months + start)
        self.contracts = progression.ContractPool()
        """The county's apprenticeship contracts still on offer this contract year (opened each June)."""
        self.referrals = Referrals(self.agency_list, self.hub)
        self.log = ServiceLog()
        self.log.allocate(0, len(self.agency_list))
        lw = cfg.regime.lead_worker
        self.lead_workers = None
        if lw.enabled:
            self.lead_workers = LeadWorkers(self, "lead_worker", AgencyConfig(
                posts_per_1000=lw.posts_per_1000, casework_hours_per_post=lw.casework_hours_per_post,
                hours_per_case_month=lw.hours_per_case_month, assessment_hours=lw.assessment_hours,
                case_months=lw.case_months, serves=["in_school", "apprentice"],
                nok_per_post_year=lw.nok_per_post_year), len(self.agency_list), self.streams)
        self.help = HelpReceived(0)
        self.new_rows = slice(0, 0)
        """Rows of the cohort that started this month (empty outside August)."""
        self.county_completed = {}
        """Completers already dropped from the rows, by entry cohort (for the county's stocks)."""
        self.recorder = MonthlyRecorder(self)

    # ------------------------------------------------------------------ the county
    @property
    def per_student(self) -> list[PerStudent]:
        """Every component holding per-student rows (resized together)."""
        parts = [self.students, self.referrals, self.log, *self.agency_list]
        return parts + ([self.lead_workers] if self.lead_workers is not None else [])

    @property
    def first_focal_month(self) -> int:
        return self.warmup_months

    def focal_rows(self) -> np.ndarray:
        """Rows of the focal cohorts' students (never dropped from the county's rows)."""
        return np.flatnonzero(self.is_focal())

    def is_focal(self) -> np.ndarray:
        c = self.students.cohort
        return (c >= 0) & (c < self.cfg.county.focal_cohorts)

    def county_year(self, t: int) -> None:
        """August: drop who left the county, draw the new cohort, set every agency's posts."""
        st = self.students
        focal = self.is_focal()
        gone_cohort = st.months_in(t) >= 12 * COUNTY_YEARS
        completed = st.status == COMPLETED
        drop = ~focal & (gone_cohort | completed)
        left_completed = drop & completed & ~gone_cohort
        for c in np.unique(st.cohort[left_completed]):
            k = st.count(left_completed & (st.cohort == c))
            self.county_completed[int(c)] = self.county_completed.get(int(c), 0) + k
        oldest = (t - 12 * (COUNTY_YEARS - 1)) // 12 - self.cfg.county.warmup_years
        self.county_completed = {c: k for c, k in self.county_completed.items() if c >= oldest}
        cohort = t // 12 - self.cfg.county.warmup_years
        if t < self.months:
            intake = draw_cohort(self.cfg.cohort, self.streams.generator(f"cohort.{cohort}"), self.cohort_size,
                                 self.cfg.population)
            positions, weight = self.simulated_positions(cohort)
            intake = {k: v[positions] for k, v in intake.items()} if positions.size < self.cohort_size else intake
        else:
            positions, weight = np.empty(0, dtype=np.int64), 1.0
        size = positions.size
        keep = np.flatnonzero(~drop)
        for part in self.per_student:
            part.resize(keep, size)
        start = len(keep)
        self.new_rows = slice(start, start + size)
        if size:
            st.fill_cohort(self.new_rows, intake, cohort, t, cohort * self.cohort_size + positions, weight)
        for agency in self.staffed():
            agency.set_capacity(agency.capacity_basis(st, t), self.staffing_scale)

    def simulated_positions(self, cohort: int) -> tuple[np.ndarray, float]:
        """Positions (0 .. cohort size - 1) of an entry cohort's students that are simulated, and
        the number of students each stands for: everyone in a focal cohort; in a non-focal one an
        independent ``county.nonfocal_share`` of them (a fixed draw per student, the same in every
        scenario), each counting cohort size / sample size (about ``1 / nonfocal_share``: the
        sample then stands for exactly the whole cohort) wherever the county's numbers set scarcity."""
        everyone = np.arange(self.cohort_size, dtype=np.int64)
        share = self.cfg.county.nonfocal_share
        if 0 <= cohort < self.cfg.county.focal_cohorts or share >= 1.0:
            return everyone, 1.0
        kept = everyone[self.streams.uniform("nonfocal_sample", NO_MONTH, cohort * self.cohort_size + everyone) < share]
        return kept, (self.cohort_size / kept.size if kept.size else 1.0)

    def staffed(self) -> list[Agency]:
        """The agencies and, when the regime has them, the lead workers."""
        return self.agency_list + ([self.lead_workers] if self.lead_workers is not None else [])

    def staff_changes(self, t: int) -> None:
        """Meeting time reserved before any case this month: the resource team's meetings and
        teaching co-located partners' new staff (``turnover_per_year`` of their posts a year; both
        only where the ``resource_team`` mechanism is on);
        and each office's practice, which changes with its caseworkers."""
        rc, reg = self.regime.cfg, self.regime
        enrolled_k = self.students.count(self.students.active()) / 1000.0
        new_staff = np.array([a.posts for a in self.agency_list]) * rc.turnover_per_year / 12.0
        for agency in self.agency_list:
            k = agency.index
            agency.overhead = rc.resource_team_hours_per_1000 * enrolled_k if reg.resource_team[k] else 0.0
            if reg.resource_team[k]:  # the resource team teaches its partners' new staff
                partners = reg.is_colocated.copy()
                partners[k] = False
                agency.overhead += rc.onboarding_hours * float(new_staff[partners].sum())
            agency.turnover(t, rc.turnover_per_year, self.streams)

    # ------------------------------------------------------------------ risk
    def risk_score(self, rows: np.ndarray, observe_mastery: np.ndarray | bool = True,
                   observe_strain: np.ndarray | bool = True) -> np.ndarray:
        """Weighted risk score in [0, 1] from absence, low mastery and strain (fixed weights).

        An indicator the school cannot observe enters at its mean over active students (what
        the school may assume of anyone), so seeing more only moves students whose value
        differs from the typical one: it sharpens detection rather than diluting the score.
        """
        st, iv = self.students, self.cfg.intervention
        total = iv.attendance_weight + iv.mastery_weight + iv.strain_weight
        low_mastery, strain = 1.0 - st.mastery[rows], st.strain[rows]
        active = st.active()
        if not np.all(observe_mastery):
            low_mastery = np.where(observe_mastery, low_mastery, 1.0 - self.county_mean(st.mastery, active))
        if not np.all(observe_strain):
            strain = np.where(observe_strain, strain, self.county_mean(st.strain, active))
        return (iv.attendance_weight * (1.0 - st.engagement[rows]) + iv.mastery_weight * low_mastery
                + iv.strain_weight * strain) / total

    def county_mean(self, values: np.ndarray, mask: np.ndarray) -> float:
        """Mean of ``values`` over the county's students in ``mask`` (weighted by whom each row stands for)."""
        if self.cfg.county.nonfocal_share >= 1.0:
            return float(values[mask].mean())
        w = self.students.weight[mask]
        return float(values[mask] @ w / w.sum())

    def sees_mastery(self, t: int, rows: np.ndarray) -> np.ndarray:
        """Grades are known from December of Vg1 (``first_grades_month``), or from intake when
        transferred from lower secondary."""
        iv = self.cfg.intervention
        if iv.info_transfer != "none":
            return np.ones(rows.size, dtype=bool)
        return self.students.months_in(t, rows) >= iv.first_grades_month

    def sees_strain(self, rows: np.ndarray) -> np.ndarray:
        """Strain reaches the screening agency only from an agency that shares it with it (co-located,
        information sharing on), for students that agency knows and who consented at the elevtjeneste."""
        seen = np.zeros(rows.size, dtype=bool)
        if self.screener is None:
            return seen
        for agency in self.agency_list:
            if "strain" in agency.cfg.shares and self.regime.shares_information[self.screener.index, agency.index]:
                seen |= self.log.first_help_by_agency[rows, agency.index] != NO_MONTH
        return seen & self.referrals.consent_given[rows]

    # ------------------------------------------------------------------ the monthly step
    def step(self) -> None:
        """Advance one month (see the module docstring for the order)."""
        t, st, cfg, streams = self.month, self.students, self.cfg, self.streams
        dyn = cfg.dynamics

        # 0. county
        self.new_rows = slice(0, 0)
        if calendar.is_august(t):
            self.county_year(t)
        self.regime.refresh(t)
        self.staff_changes(t)
        n = st.n
        self.help.reset(n)

        # 1. calendar
        if calendar.is_august(t):
            st.start_school_year(dyn)
        progression.reenter(st, t, dyn, cfg.progression, streams, cfg.laereplass, self.contracts)
        ctx = self.month_context(t)
        lead_held = ctx.lead_held

        # 2. events
        active = np.flatnonzero(st.active())
        st.stress_events(t, active, dyn, streams)
        st.refresh_academic_need(dyn.low_mastery_threshold)

        # 3. risk signals (measured with a fixed threshold, whether anyone sees them or not)
        risky = active[self.risk_score(active) >= cfg.output.risk_measure_threshold]
        st.first_risk_month[risky[st.first_risk_month[risky] == NO_MONTH]] = t

        # 4. detection
        self.detect(ctx, t)

        # 5. referral routing
        self.referrals.route(t, st, self.regime, streams, lead_held, cfg.regime.sharing_trust_cost)

        # 6. agencies act
        for agency in self.staffed():
            agency.begin_month(ctx)
        # who holds a case now that leavers' cases are closed: sets coordination and fragmentation
        ctx.involved = np.stack([a.case_left > 0 for a in self.agency_list], axis=1)
        ctx.open_cases = ctx.involved.copy()
        helped_now = np.zeros((n, len(self.agency_list)), dtype=bool)
        outcomes = []
        for agency in self.services:
            outcome = agency.serve(ctx)
            ctx.open_cases[:, agency.index] = agency.case_left > 0
            self.apply(ctx, agency, outcome)
            helped_now[outcome.helped, agency.index] = True
            outcomes.append((agency, outcome))
        if self.lead_workers is not None:
            self.apply_lead_workers(ctx, self.lead_workers.serve(ctx))

        # 7. handoffs
        for agency, outcome in outcomes:
            self.referrals.handoff(t, st, agency, outcome.ended, self.regime, streams, lead_held,
                                   cfg.regime.trust_loss_dropped_handoff)

        # 8. meetings and trust
        ids = np.unique(np.concatenate([o.helped for _, o in outcomes] + [np.empty(0, dtype=np.int64)]))
        meetings = self.regime.meetings(helped_now[ids], lead_held[ids])
        self.log.meetings[ids] += meetings
        self.log.help_months[ids] += helped_now[ids].sum(axis=1)
        rc = cfg.regime
        self.help.trust[ids] += rc.trust_gain_continuity - rc.trust_loss_per_meeting * np.maximum(0, meetings - 1)

        # 9. student update
        st.update_state(t, np.flatnonzero(st.active()), dyn, self.help)

        # 10. exits and returns
        left = st.dropouts_this_month(t, np.flatnonzero(st.active()), dyn, streams)
        self.referrals.notify_dropouts(t, st, left, self.regime, streams, lead_held)
        st.decide_reentry(t, self.help.reentry, dyn, streams)

        # 11. progression
        progression.private_candidates(st, t, cfg.progression, cfg.routes, streams)
        if calendar.is_june(t):
            self.contracts.open_year(progression.yearly_contracts(cfg.laereplass, self.cohort_size))
            outcome = progression.june_decisions(st, t, cfg.progression, streams, cfg.routes, cfg.laereplass,
                                                 self.contracts)
            self.referrals.notify_dropouts(t, st, outcome["no_contract"], self.regime, streams, lead_held)
        progression.apprenticeship_month(st, t, cfg.progression, streams)

        # 12. collaboration
        helped_ids = helped_now[ids].astype(np.float64)
        both = helped_ids.T @ (helped_ids * st.weight[ids, None])  # symmetric: each student once per pair
        joint = both + self.referrals.sent + self.referrals.sent.T  # referrals and notices either way
        self.regime.build_collaboration(joint, st.count(st.active()))
        self.referrals.sent[:] = 0

        # 13. record
        self.recorder.record(t)
        self.month += 1

    def month_context(self, t: int) -> MonthContext:
        """What the agencies are given this month: students, open cases, lead workers, regime, streams."""
        n = self.students.n
        lead_held = (self.lead_workers.case_left > 0) if self.lead_workers is not None else np.zeros(n, dtype=bool)
        open_cases = np.stack([a.case_left > 0 for a in self.agency_list], axis=1)
        iv = self.cfg.intervention
        return MonthContext(t=t, students=self.students, streams=self.streams, regime=self.regime,
                            open_cases=open_cases, involved=open_cases, lead_held=lead_held,
                            intensity=self.intensity, acceptance_base=self.cfg.dynamics.acceptance_base,
                            queue_by_risk=iv.queue_order == "risk")

    def detect(self, ctx: MonthContext, t: int) -> None:
        """Phase 4: screening, documented needs at intake, self-referrals, registers."""
        st, iv = self.students, self.cfg.intervention
        if self.screener is not None:
            school = np.flatnonzero(st.status == IN_SCHOOL)
            due = school[screening_due(st.months_in(t, school), t, iv.screening_start_month,
                                       iv.review_interval_months)]
            if due.size:
                observed = self.risk_score(due, self.sees_mastery(t, due), self.sees_strain(due))
                flag = observed >= iv.risk_threshold
                self.screener.enqueue(due[flag], t, priority=observed[flag])
        if iv.info_transfer == "needs" and self.hub is not None and self.new_rows.stop > self.new_rows.start:
            rows = np.arange(self.new_rows.start, self.new_rows.stop)
            known = self.referrals.transfer_needs(st, rows, iv.needs_transfer_share, self.streams, t)
            self.hub.enqueue(known, t, priority=np.ones(known.size))
        for agency in self.agency_list:
            agency.self_referrals(ctx)
            agency.register_check(ctx)

    def apply(self, ctx: MonthContext, agency: Agency, outcome: ServiceOutcome) -> None:
        """Apply one agency's month: bookkeeping, help, needs resolved, and the clarification
        meeting for new cases at the hub or inside the elevtjeneste."""
        t, st, log, k = ctx.t, self.students, self.log, agency.index
        separate = ~outcome.joint
        alone = outcome.assessed[separate]  # rows are unique: an agency assesses a student once a month
        log.assessments[alone] += 1
        log.joint_assessments[outcome.assessed[outcome.joint]] += 1
        log.duplicate_assessments[outcome.assessed[separate & outcome.parallel]] += 1
        log.meetings[alone] += 1
        np.add.at(log.hours_received, outcome.hours_rows, outcome.hours)
        helped = outcome.helped
        help_ = self.help
        for name, values in outcome.effects.items():
            if name == "reentry":
                help_.reentry[helped] = 1.0 - (1.0 - help_.reentry[helped]) * (1.0 - values)
            else:
                getattr(help_, name)[helped] += values
        if outcome.learning_support:
            help_.learning_support[helped] = True
        if outcome.resolved.size:
            st.needs[outcome.resolved] &= ~agency.resolvable
        col = log.first_help_by_agency[:, k]
        col[helped[col[helped] == NO_MONTH]] = t
        if agency.serves_outside:
            exited = st.last_dropout_month[helped]
            new = helped[(log.ot_contact_month[helped] == NO_MONTH) & (exited != NO_MONTH)]
            log.ot_contact_month[new] = t
            log.ot_wait_months[new] = t - st.last_dropout_month[new]
        else:
            first = helped[log.first_help_month[helped] == NO_MONTH]
            log.first_help_month[first] = t
        if agency is self.hub or (self.hub is not None and self.regime.shares_information[self.hub.index, k]):
            new_cases = outcome.admitted
            self.referrals.clarify(st, new_cases, np.stack([a.engaged(new_cases) for a in self.agency_list], axis=1))
            if self.lead_workers is not None:
                referred_on = new_cases[self.referrals.wants[new_cases].any(axis=1)]
                self.lead_workers.enqueue(referred_on, t)

    def apply_lead_workers(self, ctx: MonthContext, outcome: ServiceOutcome) -> None:
        """Lead workers' month: their hours go to the students they hold."""
        log = self.log
        np.add.at(log.hours_received, outcome.hours_rows, outcome.hours)
        first = outcome.admitted[log.lead_worker_month[outcome.admitted] == NO_MONTH]
        log.lead_worker_month[first] = ctx.t

    @property
    def agencies_involved(self) -> np.ndarray:
        """(rows, K) bool: agency k has helped the student at least once."""
        return self.log.first_help_by_agency != NO_MONTH

    # ------------------------------------------------------------------ running
    def run(self, months: int | None = None) -> "DropoutModel":
        """Run ``months`` months (default: to the end of the last focal cohort's horizon)."""
        for _ in range(self.months - self.month if months is None else months):
            self.step()
        return self
