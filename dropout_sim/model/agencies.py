"""Agencies: school, PPT, health, NAV, OT (and any plain referral service) as Mesa agents.

An agency has staff capacity in hours per month, a queue of referred students and a
caseload. Its per-student bookkeeping is held in arrays (length = cohort size) so a month
is processed with vectorised operations:

* ``pending_arrival``: month a referral in transit reaches the queue (``NO_MONTH`` if none);
* ``queued_since``: month the student joined the queue (``NO_MONTH`` if not queued);
* ``case_left``: months left of an open case (0 = no case).

Each month (:meth:`Agency.serve`) the agency spends its hours in a fixed priority order:
open cases first (oldest first), then the queue first-come first-served, admitting a queued
student only while the assessment and the first month of help still fit in the hours left.
Hours are never exceeded, so waiting times emerge from demand. Behaviour differs by
``kind``: the school screens for risk and is the referral hub, OT works with those who left,
every other kind (PPT, health, NAV, a sixth service) is the generic :class:`Agency`, whose
detection route (referral, self-referral) and effects come from its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from .. import calendar
from ..schema import NEEDS, AgencyConfig, agency_setting
from .students import APPRENTICE, IN_SCHOOL, NEED_INDEX, NO_MONTH, OUTSIDE

if TYPE_CHECKING:  # pragma: no cover
    from .model import DropoutModel


@dataclass
class MonthLedger:
    """Hours and flows of one agency in one month (hours per month, counts of students)."""

    capacity: float = 0.0
    hours_case: float = 0.0
    hours_assessment: float = 0.0
    hours_coordination: float = 0.0
    hours_overhead: float = 0.0
    queue: int = 0
    caseload: int = 0
    admitted: int = 0
    declined: int = 0
    not_approved: int = 0

    @property
    def hours_used(self) -> float:
        return self.hours_case + self.hours_assessment + self.hours_coordination + self.hours_overhead


class Agency(mesa.Agent):
    """A service with capacity (hours/month), a FIFO queue and a caseload.

    Generic behaviour: students reach it by referral (or, if ``self_referral_prob > 0``, on
    their own when they have a need it serves); each month of help shifts mastery, strain,
    belonging and attendance by the configured effects.
    """

    eligible_status = (IN_SCHOOL, APPRENTICE)
    help_in_school = True
    """Whether this agency's help counts as in-school help (first_help_month, never-helped share)."""

    def __init__(self, model: "DropoutModel", name: str, cfg: AgencyConfig, index: int):
        super().__init__(model)
        self.name = name
        self.cfg = cfg
        self.index = index
        n = model.students.n
        scale = agency_setting(model.cfg, "staffing_scale")
        self.capacity = cfg.posts_per_1000 * scale * n / 1000.0 * cfg.casework_hours_per_post
        """Hours per month available for this cohort's cases."""
        self.need_mask = np.array([need in cfg.needs for need in NEEDS], dtype=bool)
        self._eligible_lut = np.zeros(4, dtype=bool)
        self._eligible_lut[list(self.eligible_status)] = True
        self.pending_arrival = np.full(n, NO_MONTH, dtype=np.int32)
        self.queued_since = np.full(n, NO_MONTH, dtype=np.int32)
        self.case_left = np.zeros(n, dtype=np.int16)
        self.case_start = np.full(n, NO_MONTH, dtype=np.int32)
        self.ledger = MonthLedger(capacity=self.capacity)

    # ------------------------------------------------------------------ routes in
    def engaged(self) -> np.ndarray:
        """Mask: referral in transit, queued or open case."""
        return (self.pending_arrival != NO_MONTH) | (self.queued_since != NO_MONTH) | (self.case_left > 0)

    def refer(self, ids: np.ndarray, t: int, delay_mean: float, stream: str) -> None:
        """Send a referral; it reaches the queue after an exponential delay with mean
        ``delay_mean`` months, rounded stochastically to whole months (so the mean is kept)."""
        ids = ids[~self.engaged()[ids]]
        if ids.size == 0:
            return
        streams = self.model.streams
        delay = streams.exponential(stream, t, ids, delay_mean)
        whole = np.floor(delay)
        whole += streams.uniform(stream + ".round", t, ids) < delay - whole
        self.pending_arrival[ids] = t + whole.astype(np.int32)

    def enqueue(self, ids: np.ndarray, t: int) -> None:
        """A student comes directly (own route): joins the queue now."""
        ids = ids[~self.engaged()[ids]]
        self.queued_since[ids] = t

    def eligible(self) -> np.ndarray:
        """Mask of students whose status this agency serves (in school/apprentice; OT: outside)."""
        return self._eligible_lut[self.model.students.status]

    def has_served_need(self) -> np.ndarray:
        """Mask of students with at least one need this agency serves."""
        return (self.model.students.needs & self.need_mask).any(axis=1)

    def self_referrals(self, t: int) -> np.ndarray:
        """Own detection route: students with a served need come on their own (x trust)."""
        p = self.cfg.self_referral_prob
        if p <= 0.0:
            return np.empty(0, dtype=np.int64)
        st = self.model.students
        ids = np.flatnonzero(self.eligible() & self.has_served_need() & ~self.engaged())
        come = ids[self.model.streams.bernoulli(f"self_referral.{self.name}", t, ids, p * st.trust[ids])]
        self.enqueue(come, t)
        return come

    # ------------------------------------------------------------------ the month
    def close_ineligible(self) -> None:
        """Students who left (or came back, for OT) leave this agency's queue and caseload."""
        gone = ~self.eligible()
        self.pending_arrival[gone] = NO_MONTH
        self.queued_since[gone] = NO_MONTH
        self.case_left[gone] = 0

    def begin_month(self, t: int) -> None:
        """Referrals whose delay has passed join the queue; students no longer served leave.
        Run for every agency before any agency serves (so partners' cases are current)."""
        arrived = (self.pending_arrival != NO_MONTH) & (self.pending_arrival <= t)
        self.queued_since[arrived] = self.pending_arrival[arrived]
        self.pending_arrival[arrived] = NO_MONTH
        self.close_ineligible()

    def serve(self, t: int, involved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spend this month's hours (after :meth:`begin_month`). Returns (ids helped this month,
        ids whose case ended).

        Open cases are served first (oldest first); then queued students are admitted first
        come, first served while assessment + first month of help fit in the hours left.
        Hours set aside for students who then decline or are not approved go back to the
        queue in another admission round, until the hours or the queue run out.
        ``involved`` is the (n, K) matrix of open cases at the start of the month; it sets
        coordination hours and fragmentation (properties of agency pairs in the regime).
        """
        model, st, cfg = self.model, self.model.students, self.cfg
        led = self.ledger = MonthLedger(capacity=self.capacity)
        available = self.capacity
        if model.regime.is_colocated[self.index]:
            led.hours_overhead = min(available, model.resource_team_hours)
            available -= led.hours_overhead
        case_hours = cfg.hours_per_case_month * model.intensity

        def coordination(ids: np.ndarray) -> np.ndarray:
            return model.regime.coordination(self.with_self(involved, ids))[:, self.index]

        def fitting(cost: np.ndarray) -> int:
            return int(np.searchsorted(np.cumsum(cost), available * (1 + 1e-12), side="right"))

        open_ids = np.flatnonzero(self.case_left > 0)
        open_ids = open_ids[np.lexsort((open_ids, self.case_start[open_ids]))]
        coord_open = coordination(open_ids)
        n_open = fitting(case_hours + coord_open)
        helped_parts, cost_parts, coord_parts = [open_ids[:n_open]], [], [coord_open[:n_open]]
        cost_parts.append(case_hours + coord_open[:n_open])
        available -= float(cost_parts[0].sum())

        queued = np.flatnonzero(self.queued_since != NO_MONTH)
        tie = model.streams.uniform(f"queue.{self.name}", t, queued)
        queued = queued[np.lexsort((tie, self.queued_since[queued], *self.queue_priority(queued)))]
        if n_open < open_ids.size:  # open cases come first: nobody new while they wait
            queued = queued[:0]
        share = model.regime.cfg.joint_assessment_share
        base = model.cfg.dynamics.acceptance_base
        while queued.size:
            joint = self.joint_assessment(queued)
            assess = np.where(joint, cfg.assessment_hours * share, cfg.assessment_hours)
            coord = coordination(queued)
            n = fitting(assess + case_hours + coord)
            if n == 0:
                break
            batch, joint, assess, coord = queued[:n], joint[:n], assess[:n], coord[:n]
            queued = queued[n:]
            # Admission: the assessment happens; the student may decline, the case may not be approved.
            self.queued_since[batch] = NO_MONTH
            accept = model.streams.bernoulli(f"accept.{self.name}", t, batch, base + (1 - base) * st.trust[batch])
            approved = self.approve(t, batch)
            ok = accept & approved
            led.admitted += int(ok.sum())
            led.declined += int((~accept).sum())
            led.not_approved += int((accept & ~approved).sum())
            led.hours_assessment += float(assess.sum())
            model.record_assessments(batch, joint, self.partner_holds_case(batch))
            model.hours_received[batch] += assess
            new_cases = batch[ok]
            self.case_left[new_cases] = cfg.case_months
            self.case_start[new_cases] = t
            helped_parts.append(new_cases)
            cost_parts.append(case_hours + coord[ok])
            coord_parts.append(coord[ok])
            available -= float(assess.sum() + cost_parts[-1].sum())
        led.queue = int(queued.size)

        helped = np.concatenate(helped_parts)
        cost_helped = np.concatenate(cost_parts)
        led.hours_coordination = float(np.concatenate(coord_parts).sum())
        led.hours_case = float(cost_helped.sum()) - led.hours_coordination
        led.caseload = int((self.case_left > 0).sum())
        model.hours_received[helped] += cost_helped
        self.apply_help(t, helped, involved)
        self.case_left[helped] -= 1
        ended = helped[self.case_left[helped] == 0]
        return helped, ended

    def queue_priority(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Extra sort keys (most significant last) put before arrival order; none: FIFO."""
        return ()

    def with_self(self, involved: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of an (n, K) involvement matrix with this agency marked as involved."""
        inv = involved[ids].copy()
        inv[:, self.index] = True
        return inv

    def partner_holds_case(self, ids: np.ndarray, colocated_only: bool = False) -> np.ndarray:
        """True where another agency (only co-located partners if asked) holds an open case
        now, including cases opened earlier this month."""
        held = np.zeros(ids.size, dtype=bool)
        for other in self.model.agency_list:
            if other is self or (colocated_only and not self.model.regime.colocated_pair[self.index, other.index]):
                continue
            held |= other.case_left[ids] > 0
        return held

    def joint_assessment(self, ids: np.ndarray) -> np.ndarray:
        """True where a co-located partner holds an open case: the student is on the joint
        plan, so no separate intake is needed."""
        if not self.model.regime.is_colocated[self.index]:
            return np.zeros(ids.size, dtype=bool)
        return self.partner_holds_case(ids, colocated_only=True)

    def approve(self, t: int, ids: np.ndarray) -> np.ndarray:
        """Approval of an assessed case; caseworkers differ (practice variation) unless co-located."""
        p = self.cfg.approval_probability
        if p >= 1.0:
            return np.ones(ids.size, dtype=bool)
        sd = self.model.regime.practice_sd(self.model.school_name, self.name)
        p_case = np.clip(p + sd * self.caseworker_effect(ids), 0.0, 1.0)
        return self.model.streams.bernoulli(f"approve.{self.name}", t, ids, p_case)

    def caseworker_effect(self, ids: np.ndarray) -> np.ndarray:
        """Standard-normal strictness of the caseworker/office a student meets: drawn once per
        student (not per month), so the same student keeps meeting the same practice."""
        return self.model.streams.normal(f"practice.{self.name}", NO_MONTH, ids)

    def effect_scale(self, ids: np.ndarray, involved: np.ndarray) -> np.ndarray:
        """Effect multiplier: intensity x trust x fragmentation among the agencies on the case."""
        st = self.model.students
        frag = self.model.regime.effectiveness(self.with_self(involved, ids))[:, self.index]
        return self.model.intensity * frag * (0.3 + 0.7 * st.trust[ids])

    def apply_help(self, t: int, ids: np.ndarray, involved: np.ndarray) -> None:
        """One month of help: effects on state, learning support, needs resolved."""
        if ids.size == 0:
            return
        cfg, help_ = self.cfg, self.model.help
        scale = self.effect_scale(ids, involved)
        help_.mastery[ids] += cfg.mastery_effect * scale
        help_.strain[ids] += cfg.strain_effect * scale
        help_.belonging[ids] += cfg.belonging_effect * scale
        help_.engagement[ids] += cfg.engagement_effect * scale
        if self.need_mask[NEED_INDEX["learning_difficulty"]]:
            help_.learning_support[ids] = True
        if cfg.need_resolution_prob > 0:
            needs = self.model.students.needs
            resolvable = self.need_mask.copy()
            resolvable[NEED_INDEX["academic"]] = False  # follows mastery, not a case decision
            resolved = self.model.streams.bernoulli(f"resolve.{self.name}", t, ids,
                                                    np.minimum(1.0, cfg.need_resolution_prob * scale))
            needs[np.ix_(ids[resolved], resolvable)] = False
        self.model.mark_helped(ids, t, self.index, self.help_in_school)


class School(Agency):
    """School (contact teacher, counsellor): screens absence and grades, runs the clarification
    meeting (avklaringsmøte) that uncovers needs, gives adapted/practical teaching and is the
    referral hub to the other services."""

    eligible_status = (IN_SCHOOL,)

    def __init__(self, model: "DropoutModel", name: str, cfg: AgencyConfig, index: int):
        super().__init__(model, name, cfg, index)
        self.flagged_risk = np.zeros(model.students.n)
        """Observed risk score at the student's last screening flag (0 if never flagged)."""

    def screening_due(self, t: int) -> bool:
        """Review months from ``screening_start_month`` every ``review_interval_months``; a
        review that falls in July (no school) is held in August instead."""
        if calendar.is_summer(t):
            return False
        return self._review_month(t) or (calendar.is_august(t) and t > 0 and self._review_month(t - 1))

    def _review_month(self, t: int) -> bool:
        iv = self.model.cfg.intervention
        return t >= iv.screening_start_month and (t - iv.screening_start_month) % iv.review_interval_months == 0

    def screen(self, t: int, observed_risk: np.ndarray) -> np.ndarray:
        """Flag students whose observed risk score reaches the threshold; they join the queue."""
        st = self.model.students
        flagged = np.flatnonzero((st.status == IN_SCHOOL) & (observed_risk >= self.model.cfg.intervention.risk_threshold)
                                 & ~self.engaged())
        self.enqueue(flagged, t)
        self.flagged_risk[flagged] = observed_risk[flagged]
        return flagged

    def queue_priority(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """With ``intervention.queue_order=risk`` (triage) the highest risk seen at screening
        goes first; otherwise first come, first served."""
        if self.model.cfg.intervention.queue_order == "risk":
            return (-self.flagged_risk[ids],)
        return ()


class FollowUpService(Agency):
    """OT (Oppfølgingstjenesten): responsible for youth not in school or work. Learns of a
    dropout from the school (late when siloed), then follows the youth up; each month of
    follow-up raises the chance of re-entry (alternative paths, praksisbrev, private exams)."""

    eligible_status = (OUTSIDE,)
    help_in_school = False

    def eligible(self) -> np.ndarray:
        """Youths outside school who have not yet decided to return."""
        st = self.model.students
        return self._eligible_lut[st.status] & ~st.reentry_pending

    def apply_help(self, t: int, ids: np.ndarray, involved: np.ndarray) -> None:
        super().apply_help(t, ids, involved)
        p = np.minimum(1.0, self.cfg.reentry_prob * self.effect_scale(ids, involved))
        help_ = self.model.help
        help_.reentry[ids] = 1.0 - (1.0 - help_.reentry[ids]) * (1.0 - p)
        self.model.mark_ot_contact(ids, t)


AGENCY_CLASSES: dict[str, type[Agency]] = {
    "school": School,
    "ppt": Agency,
    "health": Agency,
    "nav": Agency,
    "ot": FollowUpService,
    "service": Agency,
}
"""Behaviour by ``kind``. A new service (e.g. child welfare) is one config entry of kind 'service'."""
