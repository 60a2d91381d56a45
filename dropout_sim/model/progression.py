"""Progression: June decisions, the læreplass bottleneck, apprenticeships, fagprøve and returns.

Functions of the :class:`~dropout_sim.model.students.Students` arrays and the progression
config; every random decision is drawn by the student's global id (common random numbers).
"""

from __future__ import annotations

import numpy as np

from .. import calendar
from ..rng import Streams
from ..schema import DynamicsConfig, ProgressionConfig
from .students import (ACADEMIC, APPRENTICE, IN_APPRENTICESHIP, IN_SCHOOL, OUTSIDE, VG2, VG3, VOCATIONAL,
                       Students, sigmoid)


def contract_probability(st: Students, ids: np.ndarray, prog: ProgressionConfig) -> np.ndarray:
    """Chance of an apprenticeship contract: ``laereplass_probability`` tilted by mastery."""
    p0 = np.clip(prog.laereplass_probability, 1e-9, 1 - 1e-9)
    return sigmoid(np.log(p0 / (1 - p0)) + prog.laereplass_mastery_tilt * (st.mastery[ids] - 0.5))


def june_decisions(st: Students, t: int, prog: ProgressionConfig, streams: Streams) -> dict[str, np.ndarray]:
    """June: pass or repeat; diplomas; vocational Vg2 passers seek a læreplass.

    Returns rows by outcome: ``completed``, ``no_contract`` (left without a læreplass).
    """
    st.level_started[:] = False
    ids = np.flatnonzero(st.status == IN_SCHOOL)
    gid = st.gid[ids]
    p_pass = sigmoid(prog.pass_slope * (st.mastery[ids] - prog.pass_threshold))
    passed = streams.bernoulli("june.pass", t, gid, p_pass)
    failed = ids[~passed]
    st.repeats[failed] += 1
    st.mastery[failed] = np.minimum(1.0, st.mastery[failed] + prog.repeat_mastery_boost)
    ids = ids[passed]
    lvl, trk = st.level[ids], st.track[ids]
    done = ids[lvl == VG3]
    st.complete(done, t)
    move_up = ids[(lvl < VG2) | ((lvl == VG2) & (trk == ACADEMIC))]
    st.level[move_up] += 1
    st.level_started[move_up] = True
    vg2_voc = ids[(lvl == VG2) & (trk == VOCATIONAL)]
    contract = streams.bernoulli("june.laereplass", t, st.gid[vg2_voc], contract_probability(st, vg2_voc, prog))
    got = vg2_voc[contract]
    st.status[got] = APPRENTICE
    st.level[got] = IN_APPRENTICESHIP
    # counted up this June and in July: August is the apprenticeship's month 1
    st.apprentice_months[got] = -2
    st.level_started[got] = True
    without = vg2_voc[~contract]
    in_school = streams.bernoulli("june.school_vg3", t, st.gid[without], prog.school_vg3_probability)
    school_vg3 = without[in_school]
    st.level[school_vg3] = VG3
    st.level_started[school_vg3] = True
    no_contract = without[~in_school]
    st.no_laereplass[no_contract] = True
    st.lacked_laereplass[no_contract] = True
    st.leave(no_contract, t)
    return {"completed": done, "no_contract": no_contract}


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


def reenter(st: Students, t: int, dyn: DynamicsConfig, prog: ProgressionConfig, streams: Streams) -> np.ndarray:
    """At a term start, returners go back: to school at their level, or to their apprenticeship
    if they left one. Vocational youths who left for want of a læreplass try again for a
    contract (same odds as in June); without one they take Vg3 in school. Returns the rows."""
    if not calendar.is_term_start(t):
        return np.empty(0, dtype=np.int64)
    ids = np.flatnonzero(st.reentry_pending & (st.status == OUTSIDE))
    seeking = ids[st.no_laereplass[ids]]
    contract = seeking[streams.bernoulli("reentry.laereplass", t, st.gid[seeking],
                                         contract_probability(st, seeking, prog))]
    appr = np.zeros(st.n, dtype=bool)
    appr[ids[st.level[ids] == IN_APPRENTICESHIP]] = True
    appr[contract] = True
    st.apprentice_months[contract] = 0
    school_vg3 = np.setdiff1d(seeking, contract)
    st.level[school_vg3] = VG3
    st.level[contract] = IN_APPRENTICESHIP
    st.status[ids] = np.where(appr[ids], APPRENTICE, IN_SCHOOL)
    st.no_laereplass[ids] = False
    st.reentry_pending[ids] = False
    st.reentered[ids] = True
    st.strain[ids] *= 1.0 - dyn.reentry_strain_relief
    st.engagement[ids] = np.maximum(st.engagement[ids], 0.7)
    return ids
