"""Students: the county's students as numpy arrays and their vectorised monthly mechanisms.

One array per state, one row per student currently in the county (:mod:`.columns`). Every
rule selects the students it applies to with a boolean mask, turns it into row indices and
updates them at once; there are no per-student Python objects. Random draws come from named
streams (:class:`dropout_sim.rng.Streams`) indexed by the student's global id ``gid``
(entry cohort x cohort size + position): the same student of the same entry cohort draws the
same numbers in every scenario (common random numbers).

Months: ``t`` is the county's month (0 = the first warm-up cohort's first day of Vg1, always
an August); ``entry_month`` is the county month a student started Vg1, so ``t - entry_month``
is the student's own month (normert tid: completion before their month 60). The ``*_month``
arrays hold county months (``NO_MONTH`` = never).

States and units:

==================  ================================================================
gender              0 female, 1 male (``GENDER_NAMES``); fixed
parents_education   parents' highest education, index into ``EDUCATION_LEVELS``; fixed
track               0 academic (studieforberedende), 1 vocational (yrkesfag); changes only by omvalg
grade_points        lower-secondary grade points, 10-60; fixed
mastery             academic footing relative to the current level, 0-1
strain              psychosocial load, 0-1
belonging           friends and class environment, 0-1 (``climate``: where it drifts)
engagement          share of school (or work) attended, 0-1
trust               willingness to accept help, 0-1 (``trust0``: at intake)
needs               bit field (uint8): one bit per need (``NEED_BIT``): academic, psychosocial,
                    financial, learning_difficulty, practical
status              IN_SCHOOL, APPRENTICE, OUTSIDE, COMPLETED (exactly one each month)
level               VG1-VG3 = 1-3 in school; IN_APPRENTICESHIP = 4
on_pabygg           in påbygg (Vg3 to the academic diploma after vocational Vg2)
missing_grades      years moved up with a subject not passed (retaken before the diploma)
fib_month           county month of 'fullført, ikke bestått' while a private candidate is
                    still trying (status OUTSIDE, not a dropout); ``NO_MONTH`` otherwise
==================  ================================================================

Routes ever taken (for the outputs): ``switched_programme`` (omvalg), ``took_pabygg``,
``private_candidate`` and ``contract_month`` (first apprenticeship contract).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import EDUCATION_LEVELS, GENDERS, NEEDS, DynamicsConfig
from .columns import PerStudent

IN_SCHOOL, APPRENTICE, OUTSIDE, COMPLETED = 0, 1, 2, 3
STATUS_NAMES = ("in_school", "apprentice", "outside", "completed")
ACADEMIC, VOCATIONAL = 0, 1
TRACK_NAMES = ("academic", "vocational")
FEMALE, MALE = 0, 1
GENDER_NAMES = GENDERS
EDUCATION_NAMES = EDUCATION_LEVELS
VG1, VG2, VG3, IN_APPRENTICESHIP = 1, 2, 3, 4
"""Levels: Vg1-Vg3 in school, or the apprenticeship (status APPRENTICE while under contract)."""
NEED_BIT = {name: np.uint8(1 << i) for i, name in enumerate(NEEDS)}
"""Bit of each need in ``Students.needs`` (a bit field: testing a set of needs is one AND)."""
NO_MONTH = -1
"""Sentinel in the ``*_month`` arrays: the event has not happened."""
INTAKE_STATES = ("gender", "parents_education", "track", "grade_points", "mastery", "strain", "belonging", "climate",
                 "trust", "trust0", "engagement", "needs")
"""What an intake draw (:func:`dropout_sim.model.intake.draw_cohort`) provides per new student."""


def serve_in_order(unit: np.ndarray, weight: np.ndarray, budget: float, draw: Callable[[int], float]
                   ) -> tuple[int, np.ndarray]:
    """How many rows, in order, a budget covers when row i costs ``unit[i]`` per student and
    stands for ``weight[i]`` students (``Students.weight``), and the weight each served row is
    charged at. Rows are served whole while they fit. The first row that does not, if k >= 1 of
    its w > 1 students would, is served with chance k / w (``draw(i)``: its U[0, 1) number) and
    charged what is left: students served stay unbiased against an unsampled county and the
    budget is never exceeded. An agency's hours and the county's contracts (unit 1) both use it."""
    cum = np.cumsum(unit * weight)
    n = int(np.searchsorted(cum, budget * (1 + 1e-12), side="right"))
    charge = weight[:n]
    if n < weight.size and weight[n] > 1.0:
        left = budget - (float(cum[n - 1]) if n else 0.0)
        k = np.floor(left / unit[n] * (1 + 1e-12))
        if k >= 1 and draw(n) < k / weight[n]:
            charge = np.append(charge, left / unit[n])
            n += 1
    return n, charge


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Students(PerStudent):
    """The students in the county: state arrays plus the monthly student mechanisms (no agency logic)."""

    COLUMNS = {
        "gid": (np.int64, -1), "cohort": (np.int16, -1), "entry_month": (np.int32, 0),
        "gender": (np.int8, 0), "parents_education": (np.int8, 0),
        "track": (np.int8, 0), "entry_track": (np.int8, 0), "grade_points": (np.float64, 0.0),
        "mastery": (np.float64, 0.0), "strain": (np.float64, 0.0), "belonging": (np.float64, 0.0),
        "climate": (np.float64, 0.0), "trust": (np.float64, 0.0), "trust0": (np.float64, 0.0),
        "engagement": (np.float64, 0.0), "needs": (np.uint8, 0), "needs_at_intake": (np.uint8, 0),
        "status": (np.int8, IN_SCHOOL), "level": (np.int8, VG1), "apprentice_months": (np.int16, 0),
        "level_started": (bool, False), "reentry_pending": (bool, False), "reentered": (bool, False),
        "no_laereplass": (bool, False), "lacked_laereplass": (bool, False), "repeats": (np.int8, 0),
        "dropouts": (np.int16, 0), "completion_month": (np.int32, NO_MONTH),
        "first_dropout_month": (np.int32, NO_MONTH), "last_dropout_month": (np.int32, NO_MONTH),
        "first_risk_month": (np.int32, NO_MONTH),
        "switched_programme": (bool, False), "on_pabygg": (bool, False), "took_pabygg": (bool, False),
        "private_candidate": (bool, False), "fib_month": (np.int32, NO_MONTH), "missing_grades": (np.int8, 0),
        "contract_month": (np.int32, NO_MONTH), "weight": (np.float64, 1.0),
    }
    """``weight``: students this row stands for in the county's counts (1 in focal cohorts; in a
    sampled non-focal cohort its size over the sample's, about ``1 / county.nonfocal_share``)."""

    def __init__(self) -> None:
        self.allocate(0)

    @property
    def n(self) -> int:
        """Students currently in the county (rows)."""
        return self.rows()

    def fill_cohort(self, rows: slice, intake: dict[str, np.ndarray], cohort: int, month: int,
                    gids: np.ndarray, weight: float = 1.0) -> None:
        """Fill freshly appended ``rows`` with a new Vg1 cohort starting in county month ``month``
        (global ids ``gids``; each student stands for ``weight`` students in the county's counts)."""
        self.gid[rows] = gids
        self.weight[rows] = weight
        self.cohort[rows] = cohort
        self.entry_month[rows] = month
        for name in INTAKE_STATES:
            getattr(self, name)[rows] = intake[name]
        self.needs_at_intake[rows] = intake["needs"]
        self.entry_track[rows] = intake["track"]

    # ------------------------------------------------------------------ views
    def active(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Mask (of ``rows``) of students in school or in an apprenticeship."""
        return self.status[rows] <= APPRENTICE

    def count(self, mask: np.ndarray) -> float:
        """Students the rows of a full-length ``mask`` stand for (the weighted count: a county
        total, e.g. enrolment or a target group)."""
        return float(self.weight[mask].sum())

    def months_in(self, t: int, ids: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Each student's own month: months since their first day of Vg1."""
        return t - self.entry_month[ids]

    def need(self, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Mask: the need ``name`` is active."""
        return (self.needs[rows] & NEED_BIT[name]) != 0

    def has_any(self, bits: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Mask: at least one of the needs in the bit set ``bits`` is active."""
        return (self.needs[rows] & np.uint8(bits)) != 0

    # ------------------------------------------------------------------ mechanisms
    def refresh_academic_need(self, threshold: float) -> None:
        """The academic need is active while mastery is below the low-mastery threshold."""
        bit = NEED_BIT["academic"]
        self.needs = np.where(self.active() & (self.mastery < threshold), self.needs | bit, self.needs & ~bit)

    def stress_events(self, t: int, active: np.ndarray, dyn: DynamicsConfig, streams: Streams) -> np.ndarray:
        """Stress events and new psychosocial/financial needs among ``active`` rows. Returns rows hit."""
        gid = self.gid[active]
        hit_mask = streams.bernoulli("stress", t, gid, dyn.stress_event_prob)
        hit, hit_gid = active[hit_mask], gid[hit_mask]
        size = dyn.stress_event_size * 2.0 * streams.uniform("stress.size", t, hit_gid)
        self.strain[hit] = np.minimum(1.0, self.strain[hit] + size)
        onset = hit[streams.bernoulli("stress.psychosocial", t, hit_gid, dyn.psychosocial_onset_prob)]
        self.needs[onset] |= NEED_BIT["psychosocial"]
        fin = active[streams.bernoulli("financial.onset", t, gid, dyn.financial_onset_prob)]
        self.needs[fin] |= NEED_BIT["financial"]
        return hit

    def update_state(self, t: int, ids: np.ndarray, dyn: DynamicsConfig, help_: "HelpReceived") -> None:
        """One month of mastery, strain, belonging, attendance and trust for rows ``ids`` (active).

        The vicious circle of the brief: low mastery -> strain and avoidance -> lower
        attendance -> mastery falls further; belonging buffers strain; help shifts each term.
        """
        if ids.size == 0:
            return
        m, s, b, e = self.mastery[ids], self.strain[ids], self.belonging[ids], self.engagement[ids]
        # Attendance moves toward a target set by mastery (avoidance), strain and belonging.
        z = (dyn.engagement_intercept + dyn.engagement_mastery * (m - 0.5)
             - dyn.engagement_strain * (s - 0.3) + dyn.engagement_belonging * (b - 0.5)
             + help_.engagement[ids])
        e = e + dyn.engagement_rate * (sigmoid(z) - e)
        if not calendar.is_summer(t):
            learning = dyn.learning_rate * (e - dyn.attendance_floor) / (1.0 - dyn.attendance_floor + 1e-9)
            unassisted_ld = self.need("learning_difficulty", ids) & ~help_.learning_support[ids]
            learning = learning - dyn.learning_difficulty_penalty * unassisted_ld
            m = m + learning * np.where(learning > 0, 1.0 - m, m) + help_.mastery[ids]
        feedback = dyn.low_mastery_strain * np.maximum(0.0, dyn.low_mastery_threshold - m)
        financial = dyn.financial_strain * self.need("financial", ids)
        recovery = dyn.strain_recovery * s * (0.5 + b)
        s = s + feedback + financial - recovery + help_.strain[ids]
        b = (b + dyn.belonging_rate * (self.climate[ids] - b)
             - dyn.belonging_strain_loss * (s > 0.5) + help_.belonging[ids])
        self.mastery[ids] = np.clip(m, 0.0, 1.0)
        self.strain[ids] = np.clip(s, 0.0, 1.0)
        self.belonging[ids] = np.clip(b, 0.0, 1.0)
        self.engagement[ids] = np.clip(e, 0.0, 1.0)
        tr = self.trust[ids]
        self.trust[ids] = np.clip(tr + dyn.trust_recovery * (self.trust0[ids] - tr) + help_.trust[ids], 0.0, 1.0)

    def dropout_hazard(self, t: int, ids: np.ndarray, dyn: DynamicsConfig) -> np.ndarray:
        """Monthly probability of leaving, from low attendance, high strain and low mastery."""
        logit = (dyn.dropout_intercept
                 + dyn.dropout_engagement * (1.0 - self.engagement[ids])
                 + dyn.dropout_strain * self.strain[ids]
                 + dyn.dropout_mastery * (1.0 - self.mastery[ids])
                 + dyn.dropout_vocational * (self.track[ids] == VOCATIONAL))
        if dyn.dropout_failing:
            logit = logit + dyn.dropout_failing * (self.mastery[ids] < dyn.failing_mastery)
        h = sigmoid(logit)
        if calendar.is_august(t):
            h = np.where(self.level_started[ids], h * dyn.transition_hazard_multiplier, h)
        h = np.where(self.status[ids] == APPRENTICE, h * dyn.apprentice_hazard_multiplier, h)
        return np.minimum(h, 1.0)

    def dropouts_this_month(self, t: int, ids: np.ndarray, dyn: DynamicsConfig, streams: Streams) -> np.ndarray:
        """Draw who of the active rows ``ids`` leaves this month; mark them OUTSIDE. Returns their rows."""
        leave = ids[streams.bernoulli("dropout", t, self.gid[ids], self.dropout_hazard(t, ids, dyn))]
        self.leave(leave, t)
        return leave

    def leave(self, ids: np.ndarray, t: int) -> None:
        self.status[ids] = OUTSIDE
        first = ids[self.first_dropout_month[ids] == NO_MONTH]
        self.first_dropout_month[first] = t
        self.last_dropout_month[ids] = t
        self.dropouts[ids] += 1
        self.reentry_pending[ids] = False

    def decide_reentry(self, t: int, p: np.ndarray, dyn: DynamicsConfig, streams: Streams) -> np.ndarray:
        """Outside youths decide to return (p: extra probability from OT follow-up, per row)."""
        ids = np.flatnonzero((self.status == OUTSIDE) & ~self.reentry_pending)
        prob = 1.0 - (1.0 - dyn.spontaneous_reentry_prob) * (1.0 - p[ids])
        back = ids[streams.bernoulli("reentry", t, self.gid[ids], prob)]
        self.reentry_pending[back] = True
        return back

    def start_school_year(self, dyn: DynamicsConfig) -> None:
        """August: students who moved up start a harder level (mastery drop, transition risk)."""
        started = self.level_started & self.active()
        self.mastery[started] = np.maximum(0.0, self.mastery[started] - dyn.level_step_mastery_drop)

    def complete(self, ids: np.ndarray, t: int) -> None:
        self.status[ids] = COMPLETED
        self.completion_month[ids] = t
        self.fib_month[ids] = NO_MONTH
        self.on_pabygg[ids] = False
        self.missing_grades[ids] = 0
        self.reentry_pending[ids] = False   # a private candidate who passes need not return


class HelpReceived:
    """Per-student help summed over agencies for one month (reset every month)."""

    FIELDS = ("mastery", "strain", "belonging", "engagement", "trust", "reentry")

    def __init__(self, n: int):
        for name in self.FIELDS:
            setattr(self, name, np.zeros(n))
        self.learning_support = np.zeros(n, dtype=bool)

    def reset(self, n: int) -> None:
        """Zero every term (and match the county's current number of rows)."""
        if self.learning_support.shape[0] != n:
            self.__init__(n)
            return
        for name in self.FIELDS:
            getattr(self, name).fill(0.0)
        self.learning_support.fill(False)
