"""Metrics: the monthly time series, the per-student table and the run summary.

* :class:`MonthlyRecorder` - one row per month of the focal period: the county's status stocks
  (every year group) with the focal cohorts' stocks beside them, mean state, collaboration, and
  per agency posts, hours paid and used (by kind), queue, caseload and waits.
* :func:`student_table` - one row per focal student with outcomes and process measures.
* :func:`summary` - completion within normert tid for the focal cohorts (overall, by track,
  by grade-point band, per entry cohort), the process measures of brief section 5, hours and
  costs per agency.

Months in outputs are the student's own months (0 = first day of Vg1; "within 60 months"
means a completion month of 0-59) or, in ``monthly.csv``, months from the first focal
cohort's first day of Vg1. Agency hours and costs are counted over the focal period (from
the first focal cohort's month 0 to the end of the run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..calendar import NORMERT_TID_MONTHS, label
from .students import (ACADEMIC, APPRENTICE, COMPLETED, EDUCATION_NAMES, GENDER_NAMES, IN_APPRENTICESHIP, IN_SCHOOL,
                       NO_MONTH, STATUS_NAMES, TRACK_NAMES, VG2, VG3, VOCATIONAL)

if TYPE_CHECKING:  # pragma: no cover
    from .model import DropoutModel

GRADE_POINT_BANDS = ((10, 25), (25, 30), (30, 35), (35, 40), (40, 45), (45, 50), (50, 55), (55, 61))
"""Prior-achievement bands of the register (grade points; the last band includes 60)."""
TRACK_BANDS = ((10, 25), (25, 30), (30, 40), (40, 50), (50, 61))
"""Coarser bands for completion by track within a band (the register's 40-50 comparison)."""
PROGRESS_MONTHS = (12, 24)
"""Own months (the August of Vg2 and Vg3) at which direct progression is measured."""
ON_TIME_MONTHS = {ACADEMIC: 36, VOCATIONAL: 48}
"""Normert tid for the programme: 3 years academic, 4 vocational (2 + 2 apprenticeship)."""

COUNT_SERIES = ("queue", "caseload", "admitted", "declined", "not_approved", "assessed")
"""Agency series that count students (the ledger's weighted counts, written as whole students)."""
AGENCY_SERIES = ("posts", "hours_paid", "hours_used", "hours_help", "hours_assessment", "hours_coordination",
                 "hours_meetings", "queue", "caseload", "admitted", "declined", "not_approved", "assessed", "wait_months")


def band_name(lo: int, hi: int) -> str:
    if lo <= 10:
        return f"<{hi}"
    if hi > 60:
        return f"{lo}+"
    return f"{lo}-{hi}"


def band_shares(grade_points: np.ndarray) -> dict[str, float]:
    """Share of ``grade_points`` (an intake) in each of ``GRADE_POINT_BANDS``, by band name."""
    gp = np.asarray(grade_points)
    return {band_name(lo, hi): float(np.mean((gp >= lo) & (gp < hi))) for lo, hi in GRADE_POINT_BANDS}


class MonthlyRecorder:
    """Collects one row of the monthly time series per step of the focal period."""

    def __init__(self, model: "DropoutModel"):
        self.model = model
        self.rows: list[dict[str, Any]] = []
        self.warmup_rows: list[dict[str, Any]] = []
        """Rows of the warm-up months (not written; for checking that the county settled)."""
        self.agency_counts: list[dict[str, float]] = []
        """Per focal month, the agencies' student counts before rounding (``<agency>_<key>`` for
        :data:`COUNT_SERIES`): with weighted rows they are fractions of students, and the
        summary adds them up unrounded; ``rows`` (``monthly.csv``) holds them as whole students."""
        sample = min(model.cfg.output.trajectory_sample, model.cohort_size)
        self.trajectory_gids = np.arange(sample, dtype=np.int64)
        """Global ids of the sampled focal students (the first of focal cohort 0)."""
        self.trajectories: list[np.ndarray] = []
        self.status_at_60: dict[int, int] = {}
        """Status code at the end of each focal student's month 59, by global id."""
        self.progress_at: dict[int, dict[str, np.ndarray]] = {}
        """Own month (12, 24) -> gid, status, level and track of focal students at the end of that month
        (the August of their second and third year: direct progression)."""

    def record(self, t: int) -> None:
        m, st = self.model, self.model.students
        fr = m.focal_rows()  # the focal cohorts' rows (none during the warm-up)
        own = st.months_in(t, fr)
        counts = np.bincount(st.status, weights=st.weight, minlength=4)  # the county: whom the rows stand for
        counts[COMPLETED] += sum(m.county_completed.values())
        focal_counts = np.bincount(st.status[fr], minlength=4)
        row: dict[str, Any] = {"month": t - m.first_focal_month, "label": label(t - m.first_focal_month)}
        for code, name in enumerate(STATUS_NAMES):
            row[name] = int(round(counts[code]))
        for code, name in enumerate(STATUS_NAMES):
            row[f"focal_{name}"] = int(focal_counts[code])
        row["focal_students"] = int(fr.size)
        row["reentered_cum"] = int(np.count_nonzero(st.reentered[fr]))
        row["dropped_out_cum"] = int(np.count_nonzero(st.first_dropout_month[fr] != NO_MONTH))
        row["at_risk_cum"] = int(np.count_nonzero(st.first_risk_month[fr] != NO_MONTH))
        row["helped_cum"] = int(np.count_nonzero(m.log.first_help_month[fr] != NO_MONTH))
        active = fr[st.active(fr)]
        n_active = int(active.size)
        for state in ("mastery", "strain", "belonging", "engagement", "trust"):
            row[f"mean_{state}"] = float(getattr(st, state)[active].mean()) if n_active else float("nan")
        reg = m.regime
        pairs = np.logical_and.outer(reg.is_colocated, reg.is_colocated)
        np.fill_diagonal(pairs, False)
        row["collaboration"] = float(reg.collaboration[pairs].mean()) if pairs.any() else float("nan")
        counts: dict[str, float] = {}
        for agency in m.staffed():
            led = agency.ledger
            for key in AGENCY_SERIES:
                value = getattr(led, key)
                if key == "wait_months":
                    value = value / led.assessed if led.assessed else float("nan")
                elif key in COUNT_SERIES:
                    counts[f"{agency.name}_{key}"] = float(value)
                    value = int(round(value))
                row[f"{agency.name}_{key}"] = float(value) if isinstance(value, float) else value
        at59 = fr[own == NORMERT_TID_MONTHS - 1]
        self.status_at_60.update(zip(st.gid[at59].tolist(), st.status[at59].tolist()))
        for month in PROGRESS_MONTHS:
            at = fr[own == month]
            if at.size:
                snap = {"gid": st.gid[at], "status": st.status[at], "level": st.level[at], "track": st.entry_track[at]}
                old = self.progress_at.get(month)
                self.progress_at[month] = snap if old is None else {k: np.concatenate([old[k], v])
                                                                     for k, v in snap.items()}
        if row["month"] < 0:
            self.warmup_rows.append(row)
            return
        self.rows.append(row)
        self.agency_counts.append(counts)
        if self.trajectory_gids.size:
            rows = np.minimum(np.searchsorted(st.gid, self.trajectory_gids), st.n - 1)
            rows = rows[st.gid[rows] == self.trajectory_gids]
            self.trajectories.append(np.stack([np.full(rows.size, t - m.first_focal_month), st.gid[rows],
                                               st.status[rows], st.mastery[rows], st.strain[rows],
                                               st.belonging[rows], st.engagement[rows], st.trust[rows]], axis=1))

    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def series(self, column: str) -> np.ndarray:
        """One column of the monthly rows, as written to ``monthly.csv``."""
        return np.array([row[column] for row in self.rows])

    def agency_series(self, agency: str, key: str) -> np.ndarray:
        """One agency series over the focal months, student counts unrounded."""
        if key in COUNT_SERIES:
            return np.array([c[f"{agency}_{key}"] for c in self.agency_counts])
        return self.series(f"{agency}_{key}")


TRAJECTORY_COLUMNS = ("month", "student_id", "status", "mastery", "strain", "belonging", "engagement", "trust")

STUDENT_COLUMNS = ("student_id", "entry_cohort", "gender", "parents_education", "track", "grade_points",
                   "completion_month", "first_dropout_month",
                   "status_at_60", "status_at_end", "reentered", "first_risk_month", "first_help_month",
                   "ot_contact_month", "lead_worker_month", "agencies_involved", "meetings", "assessments",
                   "joint_assessments", "duplicate_assessments", "dropped_handoffs", "consent_refusals",
                   "lost_notices", "repeats", "hours_received", "switched_programme", "took_pabygg",
                   "private_candidate", "contract_month")


class Focal:
    """The focal students' arrays at the end of a run (own months: 0 = first day of Vg1)."""

    def __init__(self, model: "DropoutModel"):
        rows = model.focal_rows()
        st, log, ref = model.students, model.log, model.referrals
        self.n = int(rows.size)
        entry = st.entry_month[rows]
        self.gid = st.gid[rows]
        self.cohort = st.cohort[rows]
        self.track = st.track[rows]
        self.entry_track = st.entry_track[rows]
        self.grade_points = st.grade_points[rows]
        self.status = st.status[rows]
        self.reentered = st.reentered[rows]
        self.repeats = st.repeats[rows]
        self.lacked_laereplass = st.lacked_laereplass[rows]
        self.gender = st.gender[rows]
        self.parents_education = st.parents_education[rows]
        self.switched_programme = st.switched_programme[rows]
        self.took_pabygg = st.took_pabygg[rows]
        self.private_candidate = st.private_candidate[rows]
        self.progress_at = model.recorder.progress_at

        def own(months: np.ndarray) -> np.ndarray:
            return np.where(months == NO_MONTH, NO_MONTH, months - entry).astype(np.int32)

        self.completion_month = own(st.completion_month[rows])
        self.first_dropout_month = own(st.first_dropout_month[rows])
        self.first_risk_month = own(st.first_risk_month[rows])
        self.contract_month = own(st.contract_month[rows])
        self.first_help_month = own(log.first_help_month[rows])
        self.ot_contact_month = own(log.ot_contact_month[rows])
        self.lead_worker_month = own(log.lead_worker_month[rows])
        self.first_help_by_agency = np.where(log.first_help_by_agency[rows] == NO_MONTH, NO_MONTH,
                                             log.first_help_by_agency[rows] - entry[:, None])
        self.ot_wait_months = log.ot_wait_months[rows]
        for name in ("assessments", "joint_assessments", "duplicate_assessments", "meetings", "hours_received",
                     "help_months"):
            setattr(self, name, getattr(log, name)[rows])
        for name in ("consent_refusals", "dropped_handoffs", "lost_notices"):
            setattr(self, name, getattr(ref, name)[rows])
        status60 = model.recorder.status_at_60
        self.status_at_60 = np.array([status60.get(int(g), -1) for g in self.gid], dtype=np.int8)
        self.horizon = model.cfg.horizon_months
        self.agency_names = [a.name for a in model.agency_list]

    @property
    def agencies_involved(self) -> np.ndarray:
        return self.first_help_by_agency != NO_MONTH

    def completed_within(self, months: int | np.ndarray = NORMERT_TID_MONTHS) -> np.ndarray:
        """Completed within ``months`` of the first day of Vg1 (own month 0 .. months-1)."""
        return (self.completion_month != NO_MONTH) & (self.completion_month < months)

    def completed_on_time(self) -> np.ndarray:
        """Completed within the programme's normert tid (36 months academic, 48 vocational)."""
        limit = np.where(self.track == VOCATIONAL, ON_TIME_MONTHS[VOCATIONAL], ON_TIME_MONTHS[ACADEMIC])
        return self.completed_within(limit)


def student_table(model: "DropoutModel", focal: Focal | None = None) -> dict[str, np.ndarray]:
    """Per-student outcomes of the focal cohorts; month columns (own months) hold -1 where the
    event never happened. ``focal``: :class:`Focal` of ``model`` when the caller has it."""
    f = focal if focal is not None else Focal(model)
    names = np.array(f.agency_names)
    involved = f.agencies_involved
    if len(names) and f.n:
        # each row's set of agencies as one number (a bit per agency): np.unique on a column is
        # a tenth of the time of np.unique over rows
        bits = np.arange(len(names), dtype=object if len(names) > 62 else np.int64)
        codes, inverse = np.unique(involved.astype(bits.dtype) @ (1 << bits), return_inverse=True)
        agencies = np.array([";".join(names[(code >> bits) & 1 == 1]) for code in codes])[inverse.ravel()]
    else:
        agencies = np.full(f.n, "")
    status_names = np.array(STATUS_NAMES + ("",))
    return {
        "student_id": f.gid, "entry_cohort": f.cohort, "gender": np.array(GENDER_NAMES)[f.gender],
        "parents_education": np.array(EDUCATION_NAMES)[f.parents_education], "track": np.array(TRACK_NAMES)[f.track],
        "grade_points": np.round(f.grade_points, 1), "completion_month": f.completion_month,
        "first_dropout_month": f.first_dropout_month, "status_at_60": status_names[f.status_at_60],
        "status_at_end": status_names[f.status], "reentered": f.reentered.astype(np.int8),
        "first_risk_month": f.first_risk_month, "first_help_month": f.first_help_month,
        "ot_contact_month": f.ot_contact_month, "lead_worker_month": f.lead_worker_month,
        "agencies_involved": agencies, "meetings": f.meetings, "assessments": f.assessments,
        "joint_assessments": f.joint_assessments, "duplicate_assessments": f.duplicate_assessments,
        "dropped_handoffs": f.dropped_handoffs, "consent_refusals": f.consent_refusals,
        "lost_notices": f.lost_notices, "repeats": f.repeats, "hours_received": np.round(f.hours_received, 2),
        "switched_programme": f.switched_programme.astype(np.int8), "took_pabygg": f.took_pabygg.astype(np.int8),
        "private_candidate": f.private_candidate.astype(np.int8), "contract_month": f.contract_month,
    }


def _share(mask: np.ndarray, within: np.ndarray | None = None) -> float | None:
    if within is None:
        return float(mask.mean()) if mask.size else None
    n = int(within.sum())
    return float((mask & within).sum() / n) if n else None


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "median": None, "n": 0}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "n": int(values.size)}


def _by_agencies_involved(f: Focal, helped: np.ndarray, done5: np.ndarray) -> dict[str, dict]:
    """Outcomes and process per number of agencies that helped a student (1, 2, 3, 4+)."""
    k = f.agencies_involved.sum(axis=1)
    out = {}
    for lo, hi, name in ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 99, "4+")):
        sel = helped & (k >= lo) & (k <= hi)
        n = int(sel.sum())
        out[name] = {
            "students": n,
            "completion_5y": float(done5[sel].mean()) if n else None,
            "meetings": float(f.meetings[sel].mean()) if n else None,
            "hours": float(f.hours_received[sel].mean()) if n else None,
            "assessments": float(f.assessments[sel].mean()) if n else None,
            "duplicate_assessments": float(f.duplicate_assessments[sel].mean()) if n else None,
        }
    return out


def agency_hours(model: "DropoutModel") -> dict[str, dict]:
    """Per agency over the focal period: posts, hours paid (idle included) and used by kind,
    utilisation, queues and waits, NOK paid."""
    rec = model.recorder
    months = len(rec.rows)
    out = {}
    for agency in model.staffed():
        name = agency.name
        if not months:
            out[name] = {}
            continue
        s = {key: rec.agency_series(name, key) for key in AGENCY_SERIES}
        works = s["hours_paid"] > 0
        paid, used = float(s["hours_paid"].sum()), float(s["hours_used"].sum())
        admitted = float(s["admitted"].sum())
        assessed = float(s["assessed"].sum())
        waits = np.nan_to_num(s["wait_months"]) * s["assessed"]
        out[name] = {
            "posts": float(s["posts"].mean()),
            "hours_paid": paid,
            "hours_used": used,
            **{f"hours_{kind}": float(s[f"hours_{kind}"].sum()) for kind in ("help", "assessment", "coordination",
                                                                           "meetings")},
            "utilisation": float(s["hours_used"][works].sum() / s["hours_paid"][works].sum()) if works.any() else None,
            "queue_month_share": float((s["queue"][works] > 0).mean()) if works.any() else None,
            "mean_queue": float(s["queue"].mean()),
            "peak_queue": int(round(s["queue"].max())),
            "mean_wait_months": float(waits.sum() / assessed) if assessed else None,
            "admitted": int(round(admitted)),
            "nok_paid": float(s["posts"].sum() / 12.0 * agency.cfg.nok_per_post_year),
            "colocated": bool(agency.index < len(model.agency_list) and model.regime.members[agency.index]),
        }
    return out


def costs(model: "DropoutModel", hours: dict[str, dict]) -> dict[str, Any]:
    """NOK paid over the focal period: posts of every agency (idle hours are paid too) and, when
    anyone is co-located, the elevtjeneste's premises; per year for steady-state comparisons."""
    rec = model.recorder
    years = len(rec.rows) / 12.0
    by_agency = {name: h.get("nok_paid", 0.0) for name, h in hours.items()}
    enrolled_k = np.array([r["in_school"] + r["apprentice"] for r in rec.rows], dtype=float) / 1000.0
    open_months = model.regime.members.any() and model.regime.reform_month <= model.months
    premises = 0.0
    if open_months and rec.rows:
        start = max(0, model.regime.reform_month - model.first_focal_month)
        premises = float(enrolled_k[start:].sum() / 12.0 * model.cfg.costs.premises_nok_per_1000_year)
    total = float(sum(by_agency.values()) + premises)
    return {"nok_by_agency": by_agency, "nok_premises": premises, "nok_total": total,
            "nok_per_year": total / years if years else None, "years": years,
            # carried into the report's tables: a benefit-cost ratio only where the user set it
            "value_per_completer_nok": model.cfg.costs.value_per_completer_nok}


def progression_rates(f: Focal) -> dict[str, float | None]:
    """Direct progression of the focal cohorts (brief section 9; SSB's measure): from Vg1, the share
    of each track's entrants in Vg2 (in school) the next August; from Vg2, the share of those in
    Vg2 then who are in Vg3 or an apprenticeship (any route) a year later. Track at entry."""
    out: dict[str, float | None] = {}
    at12, at24 = f.progress_at.get(12), f.progress_at.get(24)
    for code, name in enumerate(TRACK_NAMES):
        out[f"{name}_vg1"] = out[f"{name}_vg2"] = None
        if at12 is None:
            continue
        sel = at12["track"] == code
        in_vg2 = (at12["status"] == IN_SCHOOL) & (at12["level"] >= VG2)
        out[f"{name}_vg1"] = float(in_vg2[sel].mean()) if sel.any() else None
        if at24 is None:
            continue
        base = at12["gid"][sel & in_vg2 & (at12["level"] == VG2)]
        pos = np.searchsorted(at24["gid"], base) if np.all(np.diff(at24["gid"]) >= 0) else None
        if pos is None:
            order = np.argsort(at24["gid"])
            pos = order[np.minimum(np.searchsorted(at24["gid"][order], base), order.size - 1)]
        else:
            pos = np.minimum(pos, at24["gid"].size - 1)
        found = at24["gid"][pos] == base
        moved = found & (((at24["status"][pos] == IN_SCHOOL) & (at24["level"][pos] >= VG3))
                         | ((at24["status"][pos] == APPRENTICE) & (at24["level"][pos] == IN_APPRENTICESHIP)))
        out[f"{name}_vg2"] = float(moved.mean()) if base.size else None
    return out


def summary(model: "DropoutModel", focal: Focal | None = None) -> dict[str, Any]:
    """Headline outcomes and process measures of one run for the focal cohorts (JSON-ready).
    ``focal``: :class:`Focal` of ``model`` when the caller has it."""
    f = focal if focal is not None else Focal(model)
    covers = f.horizon >= NORMERT_TID_MONTHS
    done5 = f.completed_within()
    done_any = f.completion_month != NO_MONTH

    def completion(within: np.ndarray | None = None) -> float | None:
        return _share(done5, within) if covers else None

    by_track = {name: completion(f.track == code) for code, name in enumerate(TRACK_NAMES)}
    by_band = {band_name(lo, hi): completion((f.grade_points >= lo) & (f.grade_points < hi))
               for lo, hi in GRADE_POINT_BANDS}
    by_band_track = {band_name(lo, hi): {name: completion((f.grade_points >= lo) & (f.grade_points < hi)
                                                          & (f.track == code))
                                         for code, name in enumerate(TRACK_NAMES)}
                     for lo, hi in TRACK_BANDS}
    by_gender = {name: completion(f.gender == code) for code, name in enumerate(GENDER_NAMES)}
    by_education = {name: completion(f.parents_education == code) for code, name in enumerate(EDUCATION_NAMES)}
    on_time = f.completed_on_time()
    band40 = by_band_track.get("40-50", {})

    def gap(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    gaps = {"female_minus_male": gap(by_gender["female"], by_gender["male"]),
            "academic_minus_vocational_40_50": gap(band40.get("academic"), band40.get("vocational")),
            "years_4_5": gap(completion(), _share(on_time))}
    vocational = f.track == VOCATIONAL
    routes = {
        "switched_programme_share": _share(f.switched_programme),
        "pabygg_share": _share(f.took_pabygg),
        "pabygg_completed_5y_share": _share(done5, f.took_pabygg) if covers else None,
        "private_candidate_share": _share(f.private_candidate),
        "private_candidate_completed_5y_share": _share(done5, f.private_candidate) if covers else None,
        "contract_share_of_vocational": _share(f.contract_month != NO_MONTH, vocational),
        "contracts_offered_per_year": int(model.contracts.offered),
    }
    cohorts = {}
    for c in np.unique(f.cohort):
        sel = f.cohort == c
        cohorts[str(int(c))] = {"students": int(sel.sum()), "completion_5y": completion(sel),
                                "completion_5y_by_track": {name: completion(sel & (f.track == code))
                                                           for code, name in enumerate(TRACK_NAMES)}}
    left = f.first_dropout_month != NO_MONTH
    at_risk = f.first_risk_month != NO_MONTH
    helped = f.first_help_month != NO_MONTH
    both = at_risk & helped
    after = both & (f.first_help_month >= f.first_risk_month)
    risk_to_help = f.first_help_month[after] - f.first_risk_month[after]
    # the specialised in-school services (not the hub that screens, not services for youths outside):
    # the wait that co-location is said to shorten ("one door in")
    specialised = [a.index for a in model.agency_list
                   if not a.cfg.hub and not a.cfg.screens and not a.serves_outside]
    service_first = (f.first_help_by_agency[:, specialised].astype(np.int64)
                     if specialised else np.full((f.n, 1), NO_MONTH, dtype=np.int64))
    service_first = np.where(service_first == NO_MONTH, np.iinfo(np.int64).max, service_first).min(axis=1)
    got_service = at_risk & (service_first != np.iinfo(np.int64).max) & (service_first >= f.first_risk_month)
    risk_to_service = (service_first[got_service] - f.first_risk_month[got_service]).astype(float)
    contacted = f.ot_wait_months != NO_MONTH
    involved = f.agencies_involved
    helped_any = involved.any(axis=1)
    n_helped = int(helped_any.sum())
    hours = agency_hours(model)
    total_used = float(sum(h.get("hours_used", 0.0) for h in hours.values()))
    total_paid = float(sum(h.get("hours_paid", 0.0) for h in hours.values()))
    years = len(model.recorder.rows) / 12.0
    n_cohorts = max(1, len(cohorts))
    n_completed = int(done5.sum())

    def per_helped(values: np.ndarray) -> float | None:
        return float(values[helped_any].mean()) if n_helped else None

    return {
        "completion_5y": completion(),
        "completion_5y_note": None if covers else (
            f"horizon_months = {f.horizon} is shorter than normert tid (60 months): completion within five "
            "years is not observed"),
        "completion_5y_by_track": by_track,
        "completion_5y_by_grade_points": by_band,
        "completion_5y_by_grade_points_and_track": by_band_track,
        "completion_5y_by_gender": by_gender,
        "completion_5y_by_parents_education": by_education,
        "completion_on_time": _share(on_time),
        "completion_on_time_by_track": {name: _share(on_time, f.track == code)
                                        for code, name in enumerate(TRACK_NAMES)},
        "completion_5y_gaps": gaps,
        "grade_points_mean": {"all": _mean(f.grade_points),
                              **{name: _mean(f.grade_points[f.gender == code])
                                 for code, name in enumerate(GENDER_NAMES)},
                              **{name: _mean(f.grade_points[f.entry_track == code])
                                 for code, name in enumerate(TRACK_NAMES)}},
        "progression_rates": progression_rates(f),
        "routes": routes,
        "completion_by_end": _share(done_any),
        "completed_5y": n_completed,
        "completed_5y_per_cohort": n_completed / n_cohorts,
        "students": f.n,
        "students_by_track": {name: int((f.track == code).sum()) for code, name in enumerate(TRACK_NAMES)},
        "cohorts": cohorts,
        "horizon_covers_normert_tid": covers,
        "dropout_share": _share(left),
        "reentered_share_of_dropouts": _share(f.reentered, left),
        "completed_5y_share_of_dropouts": _share(done5, left) if covers else None,
        "no_laereplass_share_of_vocational": _share(f.lacked_laereplass, f.track == VOCATIONAL),
        "at_risk_share": _share(at_risk),
        "at_risk_never_helped_share": _share(~helped, at_risk),
        "help_before_risk_share": _share(both & ~after, both),
        "months_risk_to_help": _stats(risk_to_help.astype(float)),
        "months_risk_to_service_help": _stats(risk_to_service),
        "ot_contact_share_of_dropouts": _share(contacted, left),
        "months_dropout_to_ot": _stats(f.ot_wait_months[contacted].astype(float)),
        "lost_notice_share_of_dropouts": _share(f.lost_notices > 0, left),
        "helped_students": n_helped,
        "meetings_per_helped_student": per_helped(f.meetings),
        "assessments_per_helped_student": per_helped(f.assessments),
        "duplicate_assessments_per_helped_student": per_helped(f.duplicate_assessments),
        "hours_per_helped_student": per_helped(f.hours_received),
        "agencies_per_helped_student": per_helped(involved.sum(axis=1)),
        "by_agencies_involved": _by_agencies_involved(f, helped_any, done5),
        "dropped_handoffs": int(f.dropped_handoffs.sum()),
        "consent_refusals": int(f.consent_refusals.sum()),
        "agency_hours": hours,
        "total_agency_hours": total_used,
        "total_hours_paid": total_paid,
        "hours_used_per_year": total_used / years if years else None,
        "hours_paid_per_year": total_paid / years if years else None,
        "costs": costs(model, hours),
    }
