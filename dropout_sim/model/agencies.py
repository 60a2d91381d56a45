"""Agencies: school, PPT, health, NAV, OT (and any other service) as Mesa agents.

An agency has staff capacity in hours per month (its posts, set each August from the county's
enrolment or, for OT, its target group), a queue of referred students and a caseload. What it
does comes from its config's capabilities, not its name (:class:`~dropout_sim.schema.AgencyConfig`):
``screens`` (the school's risk screening), ``hub`` (the clarification meeting that refers on),
``serves`` (which statuses: OT serves youths outside school), ``notified_of_dropouts``,
``shares`` (information it passes to the school with consent), ``offices`` (practice and staff
turnover by office), ``register_month`` (OT's list of youths not enrolled), and its effects.

Agencies act on what the model gives them each month (a :class:`MonthContext`: the students,
who holds which case, the regime's matrices, random streams) and return what they did as a
:class:`ServiceOutcome`; the model applies it. The only state an agency changes itself is its
own queue and caseload (per-student arrays, :class:`~dropout_sim.model.columns.PerStudent`):

* ``pending_arrival``: county month a referral in transit reaches the queue (``NO_MONTH`` if none);
* ``queued_since``: month the student joined the queue; ``priority``: observed risk when flagged;
* ``case_left``: months left of an open case (0 = none); ``case_start``: month of the latest case;
* ``informed``: whether the referral came with the referring agency's information.

Each month (:meth:`Agency.serve`) the agency spends its hours in a fixed priority order:
meeting overhead first, open cases (oldest first), then the queue, admitting a queued student
only while the assessment and the first month of help still fit in the hours left. Hours are
never exceeded, so waiting times emerge from demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mesa
import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import AgencyConfig
from .columns import PerStudent
from .students import APPRENTICE, IN_SCHOOL, NEED_BIT, NO_MONTH, OUTSIDE, Students, serve_in_order

if TYPE_CHECKING:  # pragma: no cover
    from .regimes import Regime

STATUS_CODES = {"in_school": IN_SCHOOL, "apprentice": APPRENTICE, "outside": OUTSIDE}
HOURS_KINDS = ("help", "assessment", "coordination", "meetings")
"""How an agency's hours are used: case work, intake assessments, coordination with partners,
meetings (the elevtjeneste's resource team, teaching new partners' caseworkers)."""


@dataclass
class MonthLedger:
    """Hours and flows of one agency in one month (hours per month, counts of students)."""

    hours_paid: float = 0.0
    posts: float = 0.0
    hours_help: float = 0.0
    hours_assessment: float = 0.0
    hours_coordination: float = 0.0
    hours_meetings: float = 0.0
    queue: float = 0.0
    caseload: float = 0.0
    admitted: float = 0.0
    declined: float = 0.0
    not_approved: float = 0.0
    assessed: float = 0.0
    """Students taken from the queue and assessed this month (admitted, declined or not approved).
    Counts are of the students the rows stand for (``Students.weight``), as are the hours."""
    wait_months: float = 0.0
    """Sum over the students assessed this month of months spent in the queue (the monthly table
    and the summary divide it by ``assessed``: the mean wait for an assessment)."""

    @property
    def hours_used(self) -> float:
        return self.hours_help + self.hours_assessment + self.hours_coordination + self.hours_meetings


@dataclass
class MonthContext:
    """What the model gives the agencies for one month (read-only for them)."""

    t: int
    students: Students
    streams: Streams
    regime: "Regime"
    open_cases: np.ndarray
    """(rows, K) bool: who holds an open case now (updated by the model as each agency serves)."""
    involved: np.ndarray
    """(rows, K) bool: open cases at the start of the month (coordination, fragmentation)."""
    lead_held: np.ndarray
    """(rows,) bool: the student has a lead worker."""
    intensity: float
    acceptance_base: float
    queue_by_risk: bool
    _eligible: dict = field(default_factory=dict)

    def eligible(self, agency: "Agency") -> np.ndarray:
        """Who ``agency`` serves this month (statuses do not change while agencies act)."""
        mask = self._eligible.get(agency.index)
        if mask is None:
            mask = self._eligible[agency.index] = agency.eligible(self.students, self.t)
        return mask


@dataclass
class ServiceOutcome:
    """What one agency did in one month; the model applies it (rows are student rows)."""

    agency: int
    helped: np.ndarray
    """Rows helped this month (open cases served and new cases)."""
    ended: np.ndarray
    """Rows whose case ended this month."""
    assessed: np.ndarray
    """Rows given an intake assessment this month (admitted or not)."""
    joint: np.ndarray
    """Per assessed row: the joint plan covered it (no separate intake, not a meeting)."""
    parallel: np.ndarray
    """Per assessed row: another agency held an open case (a separate intake is then duplicate work)."""
    admitted: np.ndarray
    hours_rows: np.ndarray
    hours: np.ndarray
    """Agency hours spent on each of ``hours_rows`` (assessment, case work, coordination)."""
    effects: dict[str, np.ndarray] = field(default_factory=dict)
    """Per helped row: ``mastery``, ``strain``, ``belonging``, ``engagement`` and ``reentry`` terms."""
    learning_support: bool = False
    """Its help supports a learning difficulty this month."""
    resolved: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Rows whose served needs were resolved."""


class Agency(mesa.Agent, PerStudent):
    """A service with capacity (hours/month), a queue and a caseload, configured by capabilities."""

    COLUMNS = {"pending_arrival": (np.int32, NO_MONTH), "queued_since": (np.int32, NO_MONTH),
               "case_left": (np.int16, 0), "case_start": (np.int32, NO_MONTH), "informed": (bool, True),
               "priority": (np.float32, 0.0)}

    def __init__(self, model: mesa.Model, name: str, cfg: AgencyConfig, index: int, streams: Streams):
        super().__init__(model)
        self.name = name
        self.cfg = cfg
        self.index = index
        self.allocate(0)
        self.need_bits = np.uint8(sum(int(NEED_BIT[need]) for need in set(cfg.needs)))
        """The needs it serves, as a bit set of ``Students.needs``."""
        self.resolvable = self.need_bits & ~NEED_BIT["academic"]  # academic follows mastery, not a case decision
        self._serves = np.zeros(4, dtype=bool)
        self._serves[[STATUS_CODES[s] for s in cfg.serves]] = True
        self.serves_outside = bool(self._serves[OUTSIDE])
        self.capacity = 0.0
        """Hours per month paid (posts x case-work hours), set each August by :meth:`set_capacity`."""
        self.posts = 0.0
        self.practice = streams.normal(f"practice.{name}", NO_MONTH, np.arange(cfg.offices))
        """Strictness of each office's current caseworkers (standard normal; redrawn on turnover)."""
        self.overhead = 0.0
        """Meeting hours this month taken before any case (resource team, onboarding partners)."""
        self.ledger = MonthLedger()

    # ------------------------------------------------------------------ capacity and routes in
    def set_capacity(self, basis: float, staffing_scale: float) -> None:
        """Posts for ``basis`` enrolled students (or target-group youths), scaled by the planner's knob."""
        self.posts = self.cfg.posts_per_1000 * staffing_scale * basis / 1000.0
        self.capacity = self.posts * self.cfg.casework_hours_per_post

    def capacity_basis(self, st: Students, t: int) -> float:
        """The county's count this agency is staffed per 1,000 of (students the rows stand for)."""
        if self.cfg.capacity_basis == "target_group":
            return st.count(self.eligible(st, t))
        return st.count(st.active())

    def eligible(self, st: Students, t: int) -> np.ndarray:
        """Mask of students this agency serves now (status, age; outside youths who have not
        already decided to return)."""
        ok = self._serves[st.status]
        if self.cfg.max_months_since_entry:
            ok &= st.months_in(t) < self.cfg.max_months_since_entry
        if self.serves_outside:
            ok &= ~st.reentry_pending
        return ok

    def engaged(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Mask (of ``rows``): referral in transit, queued or open case."""
        return (self.pending_arrival[rows] != NO_MONTH) | (self.queued_since[rows] != NO_MONTH) | (self.case_left[rows] > 0)

    def has_served_need(self, st: Students, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Mask (of ``rows``) of students with at least one need this agency serves."""
        return st.has_any(self.need_bits, rows)

    def refer(self, rows: np.ndarray, gids: np.ndarray, t: int, delay_mean, stream: str,
              streams: Streams, informed: bool | np.ndarray = True) -> np.ndarray:
        """Send referrals; each reaches the queue after an exponential delay (mean ``delay_mean``
        months, scalar or per row), rounded stochastically to whole months (the mean is kept).
        Returns the rows actually referred (not already engaged)."""
        new = ~self.engaged(rows)
        rows, gids = rows[new], gids[new]
        if rows.size == 0:
            return rows
        mean = delay_mean[new] if np.ndim(delay_mean) else delay_mean
        delay = streams.exponential(stream, t, gids, mean)
        whole = np.floor(delay)
        whole += streams.uniform(stream + ".round", t, gids) < delay - whole
        self.pending_arrival[rows] = t + whole.astype(np.int32)
        self.informed[rows] = informed if np.ndim(informed) == 0 else np.asarray(informed)[new]
        return rows

    def enqueue(self, rows: np.ndarray, t: int, priority: np.ndarray | None = None,
                informed: bool = True) -> np.ndarray:
        """Students come directly (own route, screening, register): they join the queue now."""
        new = ~self.engaged(rows)
        rows = rows[new]
        self.queued_since[rows] = t
        self.informed[rows] = informed
        if priority is not None:
            self.priority[rows] = np.asarray(priority)[new]
        return rows

    def self_referrals(self, ctx: MonthContext) -> np.ndarray:
        """Own route: students with a served need come on their own (x trust)."""
        p = self.cfg.self_referral_prob
        if p <= 0.0:
            return np.empty(0, dtype=np.int64)
        st = ctx.students
        ids = np.flatnonzero(self.has_served_need(st))
        ids = ids[ctx.eligible(self)[ids] & ~self.engaged(ids)]
        come = ids[ctx.streams.bernoulli(f"self_referral.{self.name}", ctx.t, st.gid[ids], p * st.trust[ids])]
        return self.enqueue(come, ctx.t)

    def register_check(self, ctx: MonthContext) -> np.ndarray:
        """In its register month the agency gets the list of everyone eligible and finds those it
        does not know yet (no case since their latest exit): a contact without the referring
        agency's information (OT's October list of youths not enrolled)."""
        if self.cfg.register_month < 0 or calendar.month_of_school_year(ctx.t) != self.cfg.register_month:
            return np.empty(0, dtype=np.int64)
        st = ctx.students
        known = self.case_start >= st.last_dropout_month
        ids = np.flatnonzero(ctx.eligible(self) & ~self.engaged() & ~known)
        return self.enqueue(ids, ctx.t, informed=False)

    # ------------------------------------------------------------------ the month
    def begin_month(self, ctx: MonthContext) -> None:
        """Referrals whose delay has passed join the queue; students no longer served leave it
        and the caseload. Run for every agency before any agency serves."""
        pending = np.flatnonzero(self.pending_arrival != NO_MONTH)
        arrived = pending[self.pending_arrival[pending] <= ctx.t]
        self.queued_since[arrived] = self.pending_arrival[arrived]
        self.pending_arrival[arrived] = NO_MONTH
        gone = ~ctx.eligible(self)
        self.pending_arrival[gone] = NO_MONTH
        self.queued_since[gone] = NO_MONTH
        self.case_left[gone] = 0

    def serve(self, ctx: MonthContext) -> ServiceOutcome:
        """Spend this month's hours (after :meth:`begin_month`) and say what was done.

        Meeting overhead comes first; open cases are served oldest first; then queued students
        are admitted (first come first served, or by observed risk) while assessment + first
        month of help fit in the hours left. Hours set aside for students who then decline or
        are not approved go back to the queue in another admission round.

        A row standing for several students (``Students.weight`` w > 1, a thinned non-focal
        cohort) costs w students' hours and counts as w students. When it is the first row that
        does not fit and the hours left would cover k of its w students, it is served with
        chance k / w and then charged the hours left (:meth:`fit`): admissions stay unbiased
        instead of wasting up to a whole row's hours, and hours are never exceeded.
        """
        st, cfg, t = ctx.students, self.cfg, ctx.t
        w = st.weight
        led = self.ledger = MonthLedger(hours_paid=self.capacity, posts=self.posts)
        available = self.capacity
        led.hours_meetings = min(available, self.overhead)
        available -= led.hours_meetings
        case_hours = cfg.hours_per_case_month * ctx.intensity

        def coordination(ids: np.ndarray) -> np.ndarray:
            return self.coordination_hours(ctx, ids)

        open_ids = np.flatnonzero(self.case_left > 0)
        open_ids = open_ids[np.lexsort((open_ids, self.case_start[open_ids]))]
        coord_open = coordination(open_ids)
        n_open, charge = self.fit(ctx, open_ids, case_hours + coord_open, available)
        helped_parts, cost_parts, coord_parts = [open_ids[:n_open]], [case_hours + coord_open[:n_open]], [coord_open[:n_open]]
        weight_parts = [charge]
        available -= float((cost_parts[0] * weight_parts[0]).sum())

        queued = np.flatnonzero(self.queued_since != NO_MONTH)
        tie = ctx.streams.uniform(f"queue.{self.name}", t, st.gid[queued])
        keys = (tie, self.queued_since[queued]) + ((-self.priority[queued],) if ctx.queue_by_risk else ())
        queued = queued[np.lexsort(keys)]
        if n_open < open_ids.size:  # open cases come first: nobody new while they wait
            queued = queued[:0]
        share = ctx.regime.cfg.joint_assessment_share
        assessed_parts, joint_parts, parallel_parts, assess_parts, admitted_parts = [], [], [], [], []
        while queued.size:
            joint = self.joint_assessment(ctx, queued)
            assess = np.where(joint, cfg.assessment_hours * share, cfg.assessment_hours)
            coord = coordination(queued)
            n, cb = self.fit(ctx, queued, assess + case_hours + coord, available)
            if n == 0:
                break
            batch, joint, assess, coord, wb = queued[:n], joint[:n], assess[:n], coord[:n], w[queued[:n]]
            queued = queued[n:]
            # Admission: the assessment happens; the student may decline, the case may not be approved.
            led.wait_months += float(((t - self.queued_since[batch]) * wb).sum())
            led.assessed += float(wb.sum())
            self.queued_since[batch] = NO_MONTH
            accept_p = ctx.acceptance_base + (1 - ctx.acceptance_base) * st.trust[batch]
            accept = ctx.streams.bernoulli(f"accept.{self.name}", t, st.gid[batch], accept_p)
            approved = self.approve(ctx, batch)
            ok = accept & approved
            led.admitted += float(wb[ok].sum())
            led.declined += float(wb[~accept].sum())
            led.not_approved += float(wb[accept & ~approved].sum())
            led.hours_assessment += float((assess * cb).sum())
            new_cases = batch[ok]
            self.case_left[new_cases] = cfg.case_months
            self.case_start[new_cases] = t
            assessed_parts.append(batch)
            joint_parts.append(joint)
            parallel_parts.append(self.partner_holds_case(ctx, batch))
            assess_parts.append(assess)
            admitted_parts.append(new_cases)
            helped_parts.append(new_cases)
            cost_parts.append(case_hours + coord[ok])
            coord_parts.append(coord[ok])
            weight_parts.append(cb[ok])
            available -= float((assess * cb).sum() + (cost_parts[-1] * weight_parts[-1]).sum())
        led.queue = float(w[queued].sum())

        helped = np.concatenate(helped_parts)
        cost_helped = np.concatenate(cost_parts)
        w_helped = np.concatenate(weight_parts)
        led.hours_coordination = float((np.concatenate(coord_parts) * w_helped).sum())
        led.hours_help = float((cost_helped * w_helped).sum()) - led.hours_coordination
        led.caseload = float(w[self.case_left > 0].sum())
        assessed = np.concatenate(assessed_parts) if assessed_parts else np.empty(0, dtype=np.int64)
        assess_hours = np.concatenate(assess_parts) if assess_parts else np.empty(0)
        outcome = ServiceOutcome(
            agency=self.index, helped=helped, ended=np.empty(0, dtype=np.int64), assessed=assessed,
            joint=np.concatenate(joint_parts) if joint_parts else np.empty(0, dtype=bool),
            parallel=np.concatenate(parallel_parts) if parallel_parts else np.empty(0, dtype=bool),
            admitted=np.concatenate(admitted_parts) if admitted_parts else np.empty(0, dtype=np.int64),
            hours_rows=np.concatenate([assessed, helped]), hours=np.concatenate([assess_hours, cost_helped]))
        self.help(ctx, helped, outcome)
        self.case_left[helped] -= 1
        outcome.ended = helped[self.case_left[helped] == 0]
        return outcome

    def fit(self, ctx: MonthContext, ids: np.ndarray, unit_hours: np.ndarray, available: float
            ) -> tuple[int, np.ndarray]:
        """How many of ``ids`` (in order; ``unit_hours`` per student) this month's ``available``
        hours serve, and the weight each served row is charged at (its ``Students.weight``, or
        less for a thinned row at the boundary served with chance k / w; see :meth:`serve`)."""
        # One draw per row and month, reused if the row is at the boundary again in a later
        # admission round (k only grows): its chance over the month is then k_final / w.
        def draw(i: int) -> float:
            return ctx.streams.uniform(f"fit.{self.name}", ctx.t, ctx.students.gid[ids[i:i + 1]])[0]

        return serve_in_order(unit_hours, ctx.students.weight[ids], available, draw)

    def coordination_hours(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        """Coordination hours this agency spends per case-month on rows ``ids`` (one per partner on the case)."""
        return ctx.regime.coordination(self.index, ctx.involved[ids], ctx.lead_held[ids])

    def fragmentation(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        """Effect multiplier from responsibility fragmenting over the agencies on the case."""
        return ctx.regime.effectiveness(self.index, ctx.involved[ids], ctx.lead_held[ids])

    def partner_holds_case(self, ctx: MonthContext, ids: np.ndarray, colocated_only: bool = False) -> np.ndarray:
        """True where another agency (only co-located partners if asked) holds an open case now,
        including cases opened earlier this month."""
        others = np.ones(ctx.open_cases.shape[1], dtype=bool)
        others[self.index] = False
        if colocated_only:
            others &= ctx.regime.joint_assessment[self.index]
        return (ctx.open_cases[ids] & others).any(axis=1) if others.any() else np.zeros(ids.size, dtype=bool)

    def joint_assessment(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        """True where a co-located partner holds an open case: the student is on the joint
        plan, so no separate intake is needed."""
        return self.partner_holds_case(ctx, ids, colocated_only=True)

    def office_of(self, gids: np.ndarray, streams: Streams) -> np.ndarray:
        """The office serving each student (by home municipality: fixed per student)."""
        if self.cfg.offices == 1:
            return np.zeros(gids.size, dtype=np.int64)
        u = streams.uniform(f"office.{self.name}", NO_MONTH, gids)
        return np.minimum((u * self.cfg.offices).astype(np.int64), self.cfg.offices - 1)

    def approve(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        """Approval of an assessed case: the office's practice moves the chance (rules interpreted
        differently between offices and caseworkers), less so when co-located with the school."""
        p = self.cfg.approval_probability
        if p >= 1.0:
            return np.ones(ids.size, dtype=bool)
        gids = ctx.students.gid[ids]
        sd = ctx.regime.practice_sd(self.index)
        p_case = np.clip(p + sd * self.practice[self.office_of(gids, ctx.streams)], 0.0, 1.0)
        return ctx.streams.bernoulli(f"approve.{self.name}", ctx.t, gids, p_case)

    def turnover(self, t: int, rate_per_year: float, streams: Streams) -> np.ndarray:
        """An office's practice changes with its caseworkers (each office with chance rate/12 a month):
        a new caseworker interprets the rules anew. Returns the offices that changed."""
        if rate_per_year <= 0 or self.cfg.approval_probability >= 1.0:
            return np.empty(0, dtype=np.int64)
        offices = np.arange(self.cfg.offices)
        changed = offices[streams.bernoulli(f"turnover.{self.name}", t, offices, min(1.0, rate_per_year / 12.0))]
        if changed.size:
            self.practice[changed] = streams.normal(f"practice.{self.name}", t, changed)
        return changed

    def effect_scale(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        """Effect multiplier: intensity x trust x fragmentation among the agencies on the case,
        x lateness (exit to this case's start) and information for agencies that declare it."""
        st, cfg = ctx.students, self.cfg
        scale = ctx.intensity * self.fragmentation(ctx, ids) * (0.3 + 0.7 * st.trust[ids])
        if cfg.effect_halflife_months > 0:
            exited = st.last_dropout_month[ids]
            late = np.where(exited != NO_MONTH, np.maximum(0, self.case_start[ids] - exited), 0)
            scale = scale * 0.5 ** (late / cfg.effect_halflife_months)
        if cfg.uninformed_effect < 1.0:
            scale = scale * np.where(self.informed[ids], 1.0, cfg.uninformed_effect)
        return scale

    def help(self, ctx: MonthContext, ids: np.ndarray, outcome: ServiceOutcome) -> None:
        """One month of help for rows ``ids``: its effects and resolved needs, into ``outcome``."""
        cfg = self.cfg
        scale = self.effect_scale(ctx, ids)
        outcome.effects = {"mastery": cfg.mastery_effect * scale, "strain": cfg.strain_effect * scale,
                           "belonging": cfg.belonging_effect * scale, "engagement": cfg.engagement_effect * scale}
        if cfg.reentry_prob > 0:
            outcome.effects["reentry"] = np.minimum(1.0, cfg.reentry_prob * scale)
        outcome.learning_support = bool(self.need_bits & NEED_BIT["learning_difficulty"])
        if cfg.need_resolution_prob > 0 and self.resolvable:
            p = np.minimum(1.0, cfg.need_resolution_prob * scale)
            outcome.resolved = ids[ctx.streams.bernoulli(f"resolve.{self.name}", ctx.t, ctx.students.gid[ids], p)]


def screening_due(t_own: np.ndarray, t: int, start: int, interval: int) -> np.ndarray:
    """Per student (own months ``t_own``): is this a review month? Reviews run from the student's
    month ``start`` every ``interval`` months; a review that falls in July (no school) is held in
    August instead."""
    if calendar.is_summer(t):
        return np.zeros(t_own.shape, dtype=bool)
    due = (t_own >= start) & ((t_own - start) % interval == 0)
    if calendar.is_august(t):
        prev = t_own - 1
        due |= (prev >= start) & ((prev - start) % interval == 0) & (t_own > 0)
    return due



class LeadWorkers(Agency):
    """Lead workers (koordinator): one contact person per student referred on to other services.

    Not one of the co-located agencies (it has no place in the regime's pair matrices): its
    cases cost its own hours, and a student it holds gets the co-located value of the
    mechanisms in ``regime.lead_worker.mechanisms`` (see :class:`~dropout_sim.model.regimes.Regime`)."""

    def coordination_hours(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        return np.zeros(ids.size)

    def fragmentation(self, ctx: MonthContext, ids: np.ndarray) -> np.ndarray:
        return np.ones(ids.size)

    def partner_holds_case(self, ctx: MonthContext, ids: np.ndarray, colocated_only: bool = False) -> np.ndarray:
        return np.zeros(ids.size, dtype=bool)
