"""Students: the cohort's state as numpy arrays and its vectorised monthly mechanisms.

One array per state (length = cohort size, index = student id). Every rule selects the
students it applies to with a boolean mask, turns it into ids and updates them at once;
there are no per-student Python objects. Random draws come from named streams
(:class:`dropout_sim.rng.Streams`) indexed by student id (common random numbers).

States and units:

===============  ====================================================================
track            0 academic (studieforberedende), 1 vocational (yrkesfag); fixed
grade_points     lower-secondary grade points, 10-60; fixed
mastery          academic footing relative to the current level, 0-1
strain           psychosocial load, 0-1
belonging        friends and class environment, 0-1
engagement       share of school (or work) attended, 0-1
trust            willingness to accept help, 0-1
needs            bool (n, 5): academic, psychosocial, financial, learning_difficulty, practical
status           IN_SCHOOL, APPRENTICE, OUTSIDE, COMPLETED (exactly one each month)
level            1-3 = Vg1-Vg3, 4 = apprenticeship
===============  ====================================================================
"""

from __future__ import annotations

import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import NEEDS, CohortConfig, DynamicsConfig, ProgressionConfig

IN_SCHOOL, APPRENTICE, OUTSIDE, COMPLETED = 0, 1, 2, 3
STATUS_NAMES = ("in_school", "apprentice", "outside", "completed")
ACADEMIC, VOCATIONAL = 0, 1
TRACK_NAMES = ("academic", "vocational")
APPRENTICESHIP = 4
NEED_INDEX = {name: i for i, name in enumerate(NEEDS)}
NO_MONTH = -1
"""Sentinel in the ``*_month`` arrays: the event has not happened."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _beta(gen: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    """Beta draws with the given mean; degenerate means give constant arrays."""
    if mean <= 0.0 or mean >= 1.0:
        return np.full(n, float(mean))
    return gen.beta(mean * concentration, (1.0 - mean) * concentration, n)


class Students:
    """The cohort: state arrays plus the monthly student mechanisms (no agency logic)."""

    def __init__(self, cohort: CohortConfig, streams: Streams):
        n = int(cohort.size)
        self.n = n
        self.ids = np.arange(n, dtype=np.int64)
        gen = streams.generator("cohort")
        self.track = (gen.random(n) < cohort.vocational_share).astype(np.int8)
        mean_gp = np.where(self.track == VOCATIONAL, cohort.grade_points_mean_vocational,
                           cohort.grade_points_mean_academic)
        # Grade points are a bounded scale: draws are truncated to 10-60 by resampling.
        gp = mean_gp + cohort.grade_points_sd * gen.standard_normal(n)
        bad = (gp < 10) | (gp > 60)
        while bad.any():
            gp[bad] = mean_gp[bad] + cohort.grade_points_sd * gen.standard_normal(int(bad.sum()))
            bad = (gp < 10) | (gp > 60)
        self.grade_points = gp
        self.mastery = np.clip(0.1 + 0.85 * (gp - 10.0) / 50.0
                               + cohort.mastery_noise_sd * gen.standard_normal(n), 0.0, 1.0)
        k = cohort.state_concentration
        self.strain = _beta(gen, cohort.strain_mean, k, n)
        self.belonging = _beta(gen, cohort.belonging_mean, k, n)
        self.climate = self.belonging.copy()  # the class climate each student's belonging drifts to
        self.trust = _beta(gen, cohort.trust_mean, k, n)
        self.trust0 = self.trust.copy()
        self.engagement = np.clip(0.75 + 0.25 * self.mastery - 0.2 * self.strain, 0.0, 1.0)

        needs = np.zeros((n, len(NEEDS)), dtype=bool)
        needs[:, NEED_INDEX["psychosocial"]] = gen.random(n) < cohort.psychosocial_prevalence
        needs[:, NEED_INDEX["financial"]] = gen.random(n) < cohort.financial_prevalence
        # Learning difficulties are more common among low grade points and practical needs on
        # the vocational track; the weights keep the cohort-wide prevalence as configured.
        low_gp = 0.25 + np.clip((50.0 - gp) / 40.0, 0.0, 1.0)
        needs[:, NEED_INDEX["learning_difficulty"]] = (
            gen.random(n) < np.clip(cohort.learning_difficulty_prevalence * low_gp / low_gp.mean(), 0, 1))
        practical_w = 0.5 + self.track
        needs[:, NEED_INDEX["practical"]] = (
            gen.random(n) < np.clip(cohort.practical_prevalence * practical_w / practical_w.mean(), 0, 1))
        self.needs = needs

        self.status = np.full(n, IN_SCHOOL, dtype=np.int8)
        self.level = np.ones(n, dtype=np.int8)
        self.apprentice_months = np.zeros(n, dtype=np.int16)
        self.reentry_pending = np.zeros(n, dtype=bool)
        self.reentered = np.zeros(n, dtype=bool)
        self.no_laereplass = np.zeros(n, dtype=bool)
        self.lacked_laereplass = np.zeros(n, dtype=bool)  # ever left school for want of a contract
        self.repeats = np.zeros(n, dtype=np.int8)
        self.completion_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.first_dropout_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.last_dropout_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.first_risk_month = np.full(n, NO_MONTH, dtype=np.int32)
        self.dropouts = np.zeros(n, dtype=np.int16)
        self.level_started = np.zeros(n, dtype=bool)  # a new level started this August

    # ------------------------------------------------------------------ views
    def active(self) -> np.ndarray:
        """Mask of students in school or in an apprenticeship."""
        return self.status <= APPRENTICE

    def completed_within(self, months: int = calendar.NORMERT_TID_MONTHS) -> np.ndarray:
        """Mask of students who completed within ``months`` of the first day of Vg1
        (completion month 0 .. months-1; the default is normert tid, 60 months)."""
        return (self.completion_month != NO_MONTH) & (self.completion_month < months)

    def status_counts(self) -> np.ndarray:
        return np.bincount(self.status, minlength=4)

    def need(self, name: str) -> np.ndarray:
        return self.needs[:, NEED_INDEX[name]]

    # ------------------------------------------------------------------ mechanisms
    def refresh_academic_need(self, threshold: float) -> None:
        """The academic need is active while mastery is below the low-mastery threshold."""
        self.needs[:, NEED_INDEX["academic"]] = self.active() & (self.mastery < threshold)

    def stress_events(self, t: int, dyn: DynamicsConfig, streams: Streams) -> np.ndarray:
        """Stress events and new psychosocial/financial needs among active students. Returns ids hit."""
        ids = np.flatnonzero(self.active())
        hit = ids[streams.bernoulli("stress", t, ids, dyn.stress_event_prob)]
        size = dyn.stress_event_size * 2.0 * streams.uniform("stress.size", t, hit)
        self.strain[hit] = np.minimum(1.0, self.strain[hit] + size)
        onset = hit[streams.bernoulli("stress.psychosocial", t, hit, dyn.psychosocial_onset_prob)]
        self.needs[onset, NEED_INDEX["psychosocial"]] = True
        fin = ids[streams.bernoulli("financial.onset", t, ids, dyn.financial_onset_prob)]
        self.needs[fin, NEED_INDEX["financial"]] = True
        return hit

    def update_state(self, t: int, dyn: DynamicsConfig, help_: "HelpReceived") -> None:
        """One month of mastery, strain, belonging, attendance and trust for active students.

        The vicious circle of the brief: low mastery -> strain and avoidance -> lower
        attendance -> mastery falls further; belonging buffers strain; help shifts each term.
        """
        ids = np.flatnonzero(self.active())
        if ids.size == 0:
            return
        m, s, b, e = self.mastery[ids], self.strain[ids], self.belonging[ids], self.engagement[ids]
        # Attendance moves toward a target set by mastery (avoidance), strain and belonging.
        z = (dyn.engagement_intercept + dyn.engagement_mastery * (m - 0.5)
             - dyn.engagement_strain * (s - 0.3) + dyn.engagement_belonging * (b - 0.5)
             + help_.engagement[ids])
        e = e + dyn.engagement_rate * (_sigmoid(z) - e)
        if not calendar.is_summer(t):
            learning = dyn.learning_rate * (e - dyn.attendance_floor) / (1.0 - dyn.attendance_floor + 1e-9)
            unassisted_ld = self.needs[ids, NEED_INDEX["learning_difficulty"]] & ~help_.learning_support[ids]
            learning = learning - dyn.learning_difficulty_penalty * unassisted_ld
            m = m + learning * np.where(learning > 0, 1.0 - m, m) + help_.mastery[ids]
        feedback = dyn.low_mastery_strain * np.maximum(0.0, dyn.low_mastery_threshold - m)
        financial = dyn.financial_strain * self.needs[ids, NEED_INDEX["financial"]]
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
        h = _sigmoid(logit)
        if calendar.is_august(t):
            h = np.where(self.level_started[ids], h * dyn.transition_hazard_multiplier, h)
        h = np.where(self.status[ids] == APPRENTICE, h * dyn.apprentice_hazard_multiplier, h)
        return np.minimum(h, 1.0)

    def dropouts_this_month(self, t: int, dyn: DynamicsConfig, streams: Streams) -> np.ndarray:
        """Draw who leaves this month; mark them OUTSIDE. Returns their ids."""
        ids = np.flatnonzero(self.active())
        leave = ids[streams.bernoulli("dropout", t, ids, self.dropout_hazard(t, ids, dyn))]
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
        """Outside youths decide to return (p: extra probability from OT follow-up, per student)."""
        ids = np.flatnonzero((self.status == OUTSIDE) & ~self.reentry_pending)
        prob = 1.0 - (1.0 - dyn.spontaneous_reentry_prob) * (1.0 - p[ids])
        back = ids[streams.bernoulli("reentry", t, ids, prob)]
        self.reentry_pending[back] = True
        return back

    def reenter(self, t: int, dyn: DynamicsConfig, prog: ProgressionConfig, streams: Streams) -> np.ndarray:
        """At a term start, returners go back: to school at their level, or to their
        apprenticeship if they left one. Vocational youths who left for want of a læreplass
        try again for a contract (same odds as in June); without one they take Vg3 in school.
        Returns the ids that re-entered."""
        if not calendar.is_term_start(t):
            return np.empty(0, dtype=np.int64)
        ids = np.flatnonzero(self.reentry_pending & (self.status == OUTSIDE))
        seeking = ids[self.no_laereplass[ids]]
        contract = seeking[streams.bernoulli("reentry.laereplass", t, seeking, self.contract_probability(seeking, prog))]
        appr = np.zeros(self.n, dtype=bool)
        appr[ids[self.level[ids] == APPRENTICESHIP]] = True
        appr[contract] = True
        self.apprentice_months[contract] = 0
        school_vg3 = np.setdiff1d(seeking, contract)
        self.level[school_vg3] = 3
        self.level[contract] = APPRENTICESHIP
        self.status[ids] = np.where(appr[ids], APPRENTICE, IN_SCHOOL)
        self.no_laereplass[ids] = False
        self.reentry_pending[ids] = False
        self.reentered[ids] = True
        self.strain[ids] *= 1.0 - dyn.reentry_strain_relief
        self.engagement[ids] = np.maximum(self.engagement[ids], 0.7)
        return ids

    def contract_probability(self, ids: np.ndarray, prog: ProgressionConfig) -> np.ndarray:
        """Chance of an apprenticeship contract: ``laereplass_probability`` tilted by mastery."""
        p0 = np.clip(prog.laereplass_probability, 1e-9, 1 - 1e-9)
        return _sigmoid(np.log(p0 / (1 - p0)) + prog.laereplass_mastery_tilt * (self.mastery[ids] - 0.5))

    def start_school_year(self, t: int, dyn: DynamicsConfig) -> None:
        """August: students who moved up start a harder level (mastery drop, transition risk)."""
        started = self.level_started & self.active()
        self.mastery[started] = np.maximum(0.0, self.mastery[started] - dyn.level_step_mastery_drop)

    def june_decisions(self, t: int, prog: ProgressionConfig, streams: Streams) -> dict:
        """June: pass or repeat; diplomas; vocational Vg2 passers seek a læreplass.

        Returns ids by outcome: ``completed``, ``no_contract`` (left without a læreplass).
        """
        self.level_started[:] = False
        ids = np.flatnonzero(self.status == IN_SCHOOL)
        p_pass = _sigmoid(prog.pass_slope * (self.mastery[ids] - prog.pass_threshold))
        passed = streams.bernoulli("june.pass", t, ids, p_pass)
        failed = ids[~passed]
        self.repeats[failed] += 1
        self.mastery[failed] = np.minimum(1.0, self.mastery[failed] + prog.repeat_mastery_boost)
        ids = ids[passed]
        lvl, trk = self.level[ids], self.track[ids]
        done = ids[(lvl == 3)]
        self.complete(done, t)
        move_up = ids[(lvl < 2) | ((lvl == 2) & (trk == ACADEMIC))]
        self.level[move_up] += 1
        self.level_started[move_up] = True
        vg2_voc = ids[(lvl == 2) & (trk == VOCATIONAL)]
        contract = streams.bernoulli("june.laereplass", t, vg2_voc, self.contract_probability(vg2_voc, prog))
        got = vg2_voc[contract]
        self.status[got] = APPRENTICE
        self.level[got] = APPRENTICESHIP
        # counted up this June and in July: August is the apprenticeship's month 1
        self.apprentice_months[got] = -2
        self.level_started[got] = True
        without = vg2_voc[~contract]
        in_school = streams.bernoulli("june.school_vg3", t, without, prog.school_vg3_probability)
        school_vg3 = without[in_school]
        self.level[school_vg3] = 3
        self.level_started[school_vg3] = True
        no_contract = without[~in_school]
        self.no_laereplass[no_contract] = True
        self.lacked_laereplass[no_contract] = True
        self.leave(no_contract, t)
        return {"completed": done, "no_contract": no_contract}

    def apprenticeship_month(self, t: int, prog: ProgressionConfig, streams: Streams) -> np.ndarray:
        """Apprentices count months (from August); the fagprøve at the end completes them."""
        ids = np.flatnonzero(self.status == APPRENTICE)
        self.apprentice_months[ids] += 1
        due = ids[(self.apprentice_months[ids] >= prog.apprenticeship_months)]
        due = due[(self.apprentice_months[due] - prog.apprenticeship_months) % prog.fagprove_retake_months == 0]
        p = _sigmoid(12.0 * (self.mastery[due] - prog.fagprove_threshold))
        done = due[streams.bernoulli("fagprove", t, due, p)]
        self.complete(done, t)
        return done

    def complete(self, ids: np.ndarray, t: int) -> None:
        self.status[ids] = COMPLETED
        self.completion_month[ids] = t


class HelpReceived:
    """Per-student help summed over agencies for one month (reset every month)."""

    def __init__(self, n: int):
        self.mastery = np.zeros(n)
        self.strain = np.zeros(n)
        self.belonging = np.zeros(n)
        self.engagement = np.zeros(n)
        self.trust = np.zeros(n)
        self.reentry = np.zeros(n)
        self.learning_support = np.zeros(n, dtype=bool)

    def reset(self) -> None:
        for arr in (self.mastery, self.strain, self.belonging, self.engagement, self.trust, self.reentry):
            arr.fill(0.0)
        self.learning_support.fill(False)
