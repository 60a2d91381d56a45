"""Progression: June decisions, routes, the county's læreplass supply, apprenticeships, fagprøve, returns.

Functions of the :class:`~dropout_sim.model.students.Students` arrays and the progression,
routes and læreplass configs; every random decision is drawn by the student's global id
(common random numbers).

Routes (brief section 9):

* **omvalg** - in June a Vg1 student may change programme (``routes.switch_*``): they start Vg1
  again in August in the new programme (costs a year), some in the other track.
* **læreplass** - apprenticeship contracts are a limited county supply: every June the county
  offers ``laereplass.contracts_per_1000`` contracts per 1,000 students of one intake
  (:class:`ContractPool`); vocational Vg2 passers who seek one are ranked by mastery as
  employers see it (with noise); contracts left after June go to returners seeking one at the
  next term starts.
* **without a contract** - påbygg to the academic diploma (``routes.pabygg_prob``; some choose
  it instead of seeking a contract, ``routes.pabygg_voluntary_prob``), Vg3 in school
  (``laereplass.school_vg3_prob``), or leaving to seek a contract again.
* **passing** - June's pass chance is logistic in mastery around ``progression.pass_threshold``,
  ``progression.vocational_pass_offset`` lower in vocational programmes (at low grade points
  vocational students complete more often than academic ones; at 40-49 points the two are alike).
* **missing grades** - a Vg1/Vg2 student who fails the year usually moves up anyway with a
  subject not passed (``routes.move_up_with_fail_prob``); the rest repeat the year.
* **fullført, ikke bestått** - a final-year (Vg3) failer usually finishes the year without
  passing (``routes.fib_share``), and so does a final-year passer who does not clear an earlier
  missing grade in the June retake; they retake the missing exams as private candidates in
  December or June; while trying they are outside school but not dropouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import DynamicsConfig, LaereplassConfig, ProgressionConfig, RoutesConfig
from .students import (ACADEMIC, APPRENTICE, IN_APPRENTICESHIP, IN_SCHOOL, NO_MONTH, OUTSIDE, VG1, VG2, VG3,
                       VOCATIONAL, Students, sigmoid, serve_in_order)

BELONGING_FIT = 0.65
"""Belonging a programme that fits pulls toward (the intake mean)."""


@dataclass
class ContractPool:
    """The county's apprenticeship contracts still on offer in the current contract year (from June)."""

    left: float = 0
    """Contracts still on offer (a thinned non-focal student takes as many as it stands for)."""
    offered: int = 0

    def open_year(self, contracts: int) -> None:
        """June: employers offer this year's contracts; last year's unused offers lapse."""
        self.left = self.offered = int(contracts)


def yearly_contracts(lp: LaereplassConfig, cohort_size: int) -> int:
    """Contracts offered per year: ``contracts_per_1000`` per 1,000 students of one intake."""
    return int(round(lp.contracts_per_1000 * cohort_size / 1000.0))


def match_contracts(st: Students, applicants: np.ndarray, pool: ContractPool, lp: LaereplassConfig, t: int,
                    streams: Streams, key: str) -> np.ndarray:
    """Give the pool's contracts to the applicants employers rank highest (mastery + noise).
    Returns the rows that got one (in row order) and takes them from the pool; an applicant
    standing for w students (``Students.weight``) takes w contracts; the first who no longer
    fits while k >= 1 contracts are left gets one with chance k / w, and the pool is then empty
    (as for an agency's hours: the contracts taken stay unbiased)."""
    if pool.left < 1 or applicants.size == 0:
        return applicants[:0]
    score = st.mastery[applicants] + lp.mastery_noise_sd * streams.normal(key, t, st.gid[applicants])
    w = st.weight[applicants]
    if np.all(w == 1.0):
        k = min(int(pool.left), applicants.size)
        best = np.argpartition(-score, k - 1)[:k] if k < applicants.size else np.arange(applicants.size)
        pool.left -= k
        return applicants[np.sort(best)]
    order = np.argsort(-score, kind="stable")

    def draw(i: int) -> float:
        return streams.uniform(key + ".last", t, st.gid[applicants[order[i:i + 1]]])[0]

    n, charge = serve_in_order(np.ones(order.size), w[order], pool.left, draw)
    pool.left = max(0.0, pool.left - float(charge.sum()))  # the last row served may take the rest
    return applicants[np.sort(order[:n])]


def start_apprenticeship(st: Students, got: np.ndarray, t: int, months_counted: int) -> None:
    st.status[got] = APPRENTICE
    st.level[got] = IN_APPRENTICESHIP
    st.apprentice_months[got] = months_counted
    first = got[st.contract_month[got] == NO_MONTH]
    st.contract_month[first] = t


def start_pabygg(st: Students, ids: np.ndarray, routes: RoutesConfig) -> None:
    """Påbygg: Vg3 with the academic subjects compressed into one year (diploma on passing)."""
    st.level[ids] = VG3
    st.level_started[ids] = True
    st.on_pabygg[ids] = True
    st.took_pabygg[ids] = True
    st.mastery[ids] = np.maximum(0.0, st.mastery[ids] - routes.pabygg_mastery_drop)


def switch_programme(st: Students, ids: np.ndarray, t: int, routes: RoutesConfig, streams: Streams) -> None:
    """Omvalg: start Vg1 again in August in another programme; some change track. The new
    programme is a better fit: strain eases, belonging recovers, yrkesfag meets a practical need."""
    from .students import NEED_BIT

    other = ids[streams.bernoulli("june.switch.track", t, st.gid[ids], routes.switch_other_track_share)]
    st.track[other] = 1 - st.track[other]
    st.level[ids] = VG1
    st.level_started[ids] = True
    st.switched_programme[ids] = True
    fresh = routes.switch_fresh_start
    st.strain[ids] *= 1.0 - fresh
    st.belonging[ids] += fresh * np.maximum(0.0, BELONGING_FIT - st.belonging[ids])
    st.climate[ids] = np.maximum(st.climate[ids], st.belonging[ids])
    to_voc = other[st.track[other] == VOCATIONAL]
    st.needs[to_voc] &= ~NEED_BIT["practical"]


def pass_probability(st: Students, ids: np.ndarray, prog: ProgressionConfig, gain: float = 0.0) -> np.ndarray:
    """Chance that each of the rows ``ids`` passes a year's exams (or one missing grade): logistic in
    mastery (+ ``gain``) around ``progression.pass_threshold``, which is
    ``progression.vocational_pass_offset`` lower in a vocational programme (not on påbygg, which
    leads to the academic diploma; a påbygg student's retakes face the academic bar too, since
    the model does not track which subject a missing grade is in)."""
    vocational = (st.track[ids] == VOCATIONAL) & ~st.on_pabygg[ids]
    threshold = prog.pass_threshold - prog.vocational_pass_offset * vocational
    return sigmoid(prog.pass_slope * (st.mastery[ids] + gain - threshold))


def june_decisions(st: Students, t: int, prog: ProgressionConfig, streams: Streams,
                   routes: RoutesConfig | None = None, lp: LaereplassConfig | None = None,
                   pool: ContractPool | None = None) -> dict[str, np.ndarray]:
    """June: omvalg; pass or repeat ('fullført, ikke bestått' in the final year); diplomas;
    vocational Vg2 passers seek a contract from the pool (or take påbygg / Vg3 in school).

    ``pool`` must have been opened for this year (:meth:`ContractPool.open_year`); without one
    nobody gets a contract. Returns rows by outcome: ``completed``, ``no_contract`` (left
    without a læreplass), ``switched``, ``fib`` and ``contract``.
    """
    routes = routes or RoutesConfig()
    lp = lp or LaereplassConfig()
    pool = pool if pool is not None else ContractPool()
    st.level_started[:] = False
    ids = np.flatnonzero(st.status == IN_SCHOOL)
    gid = st.gid[ids]
    # omvalg (decided before grades: the switch replaces passing or repeating Vg1)
    vg1 = st.level[ids] == VG1
    p0 = np.clip(routes.switch_prob, 1e-12, 1 - 1e-12)
    p_switch = sigmoid(np.log(p0 / (1 - p0)) + routes.switch_mastery_tilt * (0.5 - st.mastery[ids]))
    switch = vg1 & streams.bernoulli("june.switch", t, gid, np.where(vg1, p_switch, 0.0))
    switched = ids[switch]
    switch_programme(st, switched, t, routes, streams)
    ids, gid = ids[~switch], gid[~switch]

    p_pass = pass_probability(st, ids, prog)
    passed = streams.bernoulli("june.pass", t, gid, p_pass)
    failed = ids[~passed]
    final = failed[st.level[failed] == VG3]
    fib = final[streams.bernoulli("june.fib", t, st.gid[final], routes.fib_share)]
    st.status[fib] = OUTSIDE
    st.fib_month[fib] = t
    st.private_candidate[fib] = True
    failed = np.setdiff1d(failed, fib, assume_unique=True)
    lower = failed[st.level[failed] < VG3]
    carry = lower[streams.bernoulli("june.move_up_with_fail", t, st.gid[lower], routes.move_up_with_fail_prob)]
    st.missing_grades[carry] += 1
    repeat = np.setdiff1d(failed, carry, assume_unique=True)
    st.repeats[repeat] += 1
    st.mastery[repeat] = np.minimum(1.0, st.mastery[repeat] + prog.repeat_mastery_boost)

    ids = np.sort(np.concatenate([ids[passed], carry]))
    lvl, trk = st.level[ids], st.track[ids]
    final = ids[lvl == VG3]
    owing = final[st.missing_grades[final] > 0]
    # the June retake of earlier missing grades: every one must be passed for the diploma
    p_clear = pass_probability(st, owing, prog) ** st.missing_grades[owing]
    not_cleared = owing[~streams.bernoulli("june.missing_grades", t, st.gid[owing], p_clear)]
    st.status[not_cleared] = OUTSIDE
    st.fib_month[not_cleared] = t
    st.private_candidate[not_cleared] = True
    fib = np.concatenate([fib, not_cleared])
    done = np.setdiff1d(final, not_cleared, assume_unique=True)
    st.complete(done, t)
    move_up = ids[(lvl < VG2) | ((lvl == VG2) & (trk == ACADEMIC))]
    st.level[move_up] += 1
    st.level_started[move_up] = True
    vg2_voc = ids[(lvl == VG2) & (trk == VOCATIONAL)]
    chooses_pabygg = streams.bernoulli("june.pabygg.voluntary", t, st.gid[vg2_voc], routes.pabygg_voluntary_prob)
    start_pabygg(st, vg2_voc[chooses_pabygg], routes)
    seekers = vg2_voc[~chooses_pabygg]
    got = match_contracts(st, seekers, pool, lp, t, streams, "june.laereplass")
    # counted up this June and in July: August is the apprenticeship's month 1
    start_apprenticeship(st, got, t, -2)
    st.level_started[got] = True
    without = np.setdiff1d(seekers, got, assume_unique=True)
    pabygg = without[streams.bernoulli("june.pabygg", t, st.gid[without], routes.pabygg_prob)]
    start_pabygg(st, pabygg, routes)
    without = np.setdiff1d(without, pabygg, assume_unique=True)
    in_school = streams.bernoulli("june.school_vg3", t, st.gid[without], lp.school_vg3_prob)
    school_vg3 = without[in_school]
    st.level[school_vg3] = VG3
    st.level_started[school_vg3] = True
    no_contract = without[~in_school]
    st.no_laereplass[no_contract] = True
    st.lacked_laereplass[no_contract] = True
    st.leave(no_contract, t)
    return {"completed": done, "no_contract": no_contract, "switched": switched, "fib": fib, "contract": got}


def private_candidates(st: Students, t: int, prog: ProgressionConfig, routes: RoutesConfig,
                       streams: Streams) -> np.ndarray:
    """Exam terms (December, June): private candidates sit the missing exams; passing completes.
    After ``routes.private_window_months`` they stop trying. Returns the rows that completed."""
    m = calendar.month_of_school_year(t)
    if m not in (calendar.DECEMBER, calendar.JUNE):
        return np.empty(0, dtype=np.int64)
    ids = np.flatnonzero((st.fib_month != NO_MONTH) & (st.status == OUTSIDE))
    expired = ids[t - st.fib_month[ids] > routes.private_window_months]
    st.fib_month[expired] = NO_MONTH
    ids = ids[t - st.fib_month[ids] <= routes.private_window_months]
    ids = ids[t > st.fib_month[ids]]
    sit = ids[streams.bernoulli("private.sit", t, st.gid[ids], routes.private_retake_prob)]
    p = pass_probability(st, sit, prog, routes.private_mastery_gain)
    done = sit[streams.bernoulli("private.pass", t, st.gid[sit], p)]
    st.complete(done, t)
    return done


def apprenticeship_month(st: Students, t: int, prog: ProgressionConfig, streams: Streams) -> np.ndarray:
    """Apprentices count months (from August); the fagprøve at the end completes them."""
    ids = np.flatnonzero(st.status == APPRENTICE)
    st.apprentice_months[ids] += 1
    due = ids[st.apprentice_months[ids] >= prog.apprenticeship_months]
    due = due[(st.apprentice_months[due] - prog.apprenticeship_months) % prog.fagprove_retake_months == 0]
    p = sigmoid(12.0 * (st.mastery[due] - prog.fagprove_threshold))
    done = due[streams.bernoulli("fagprove", t, st.gid[due], p)]
    st.complete(done, t)
    return done


def reenter(st: Students, t: int, dyn: DynamicsConfig, prog: ProgressionConfig, streams: Streams,
            lp: LaereplassConfig | None = None, pool: ContractPool | None = None) -> np.ndarray:
    """At a term start, returners go back: to school at their level, or to their apprenticeship
    if they left one. Vocational youths who left for want of a læreplass seek one again among
    the contracts still on offer this year (``pool``); without one they take Vg3 in school.
    A private candidate who returns retakes the year in school. Returns the rows."""
    if not calendar.is_term_start(t):
        return np.empty(0, dtype=np.int64)
    lp = lp or LaereplassConfig()
    pool = pool if pool is not None else ContractPool()
    ids = np.flatnonzero(st.reentry_pending & (st.status == OUTSIDE))
    seeking = ids[st.no_laereplass[ids]]
    contract = match_contracts(st, seeking, pool, lp, t, streams, "reentry.laereplass")
    appr = np.zeros(st.n, dtype=bool)
    appr[ids[st.level[ids] == IN_APPRENTICESHIP]] = True
    appr[contract] = True
    school_vg3 = np.setdiff1d(seeking, contract)
    st.level[school_vg3] = VG3
    start_apprenticeship(st, contract, t, 0)
    st.status[ids] = np.where(appr[ids], APPRENTICE, IN_SCHOOL)
    st.no_laereplass[ids] = False
    st.reentry_pending[ids] = False
    st.fib_month[ids] = NO_MONTH
    st.reentered[ids] = True
    st.strain[ids] *= 1.0 - dyn.reentry_strain_relief
    st.engagement[ids] = np.maximum(st.engagement[ids], 0.7)
    return ids
