"""Metrics: the monthly time series, the per-student table and the run summary.

* :class:`MonthlyRecorder` - one row per month: status stocks, cumulative completions, mean
  state of active students, and per agency hours used (by kind) against capacity, queue and
  caseload.
* :func:`student_table` - one row per student with outcomes and process measures.
* :func:`summary` - completion within normert tid (overall, by track, by grade-point band)
  and the process measures of brief section 5.

Months are model months (0 = first day of Vg1); "within 60 months" means a completion
month of 0-59.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..calendar import NORMERT_TID_MONTHS, label
from .students import NO_MONTH, STATUS_NAMES, TRACK_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from .model import DropoutModel

GRADE_POINT_BANDS = ((10, 30), (30, 40), (40, 50), (50, 61))
"""Prior-achievement bands (grade points; the last band includes 60)."""

AGENCY_SERIES = ("capacity", "hours_used", "hours_case", "hours_assessment", "hours_coordination",
                 "hours_overhead", "queue", "caseload", "admitted", "declined", "not_approved")


def band_name(lo: int, hi: int) -> str:
    return f"{lo}-{min(hi, 60)}"


class MonthlyRecorder:
    """Collects one row of the monthly time series per step."""

    def __init__(self, model: "DropoutModel"):
        self.model = model
        self.rows: list[dict[str, Any]] = []
        sample = model.cfg.output.trajectory_sample
        self.trajectory_ids = np.arange(min(sample, model.students.n))
        self.trajectories: list[np.ndarray] = []
        self.status_at_60: np.ndarray | None = None
        """Status codes after 60 months (end of month 59); None until the run gets there."""

    def record(self, t: int) -> None:
        m, st = self.model, self.model.students
        counts = st.status_counts()
        active = st.active()
        row: dict[str, Any] = {"month": t, "label": label(t)}
        for code, name in enumerate(STATUS_NAMES):
            row[name] = int(counts[code])
        row["reentered_cum"] = int(st.reentered.sum())
        row["dropped_out_cum"] = int((st.first_dropout_month != NO_MONTH).sum())
        row["at_risk_cum"] = int((st.first_risk_month != NO_MONTH).sum())
        row["helped_cum"] = int((m.first_help_month != NO_MONTH).sum())
        n_active = int(active.sum())
        for state in ("mastery", "strain", "belonging", "engagement", "trust"):
            values = getattr(st, state)[active]
            row[f"mean_{state}"] = float(values.mean()) if n_active else float("nan")
        for agency in m.agency_list:
            led = agency.ledger
            for key in AGENCY_SERIES:
                value = getattr(led, key)
                row[f"{agency.name}_{key}"] = float(value) if isinstance(value, float) else int(value)
        self.rows.append(row)
        if t == NORMERT_TID_MONTHS - 1:
            self.status_at_60 = st.status.copy()
        if self.trajectory_ids.size:
            ids = self.trajectory_ids
            self.trajectories.append(np.stack([np.full(ids.size, t), ids, st.status[ids], st.mastery[ids],
                                               st.strain[ids], st.belonging[ids], st.engagement[ids],
                                               st.trust[ids]], axis=1))

    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def series(self, column: str) -> np.ndarray:
        return np.array([row[column] for row in self.rows])


TRAJECTORY_COLUMNS = ("month", "student_id", "status", "mastery", "strain", "belonging", "engagement", "trust")

STUDENT_COLUMNS = ("student_id", "track", "grade_points", "completion_month", "first_dropout_month",
                   "status_at_60", "status_at_end", "reentered", "first_risk_month", "first_help_month",
                   "ot_contact_month", "agencies_involved", "meetings", "assessments", "joint_assessments", "duplicate_assessments",
                   "dropped_handoffs", "consent_refusals", "repeats", "hours_received")


def student_table(model: "DropoutModel") -> dict[str, np.ndarray]:
    """Per-student outcomes; month columns hold -1 where the event never happened."""
    st = model.students
    names = np.array([a.name for a in model.agency_list])
    involved = model.agencies_involved
    joined = np.array([";".join(names[row]) for row in np.unique(involved, axis=0)]) if len(names) else None
    if joined is not None:
        _, inverse = np.unique(involved, axis=0, return_inverse=True)
        agencies = joined[inverse.ravel()]
    else:
        agencies = np.full(st.n, "")
    return {
        "student_id": st.ids,
        "track": np.array(TRACK_NAMES)[st.track],
        "grade_points": np.round(st.grade_points, 1),
        "completion_month": st.completion_month,
        "first_dropout_month": st.first_dropout_month,
        "status_at_60": (np.array(STATUS_NAMES)[model.recorder.status_at_60]
                         if model.recorder.status_at_60 is not None else np.full(st.n, "")),
        "status_at_end": np.array(STATUS_NAMES)[st.status],
        "reentered": st.reentered.astype(np.int8),
        "first_risk_month": st.first_risk_month,
        "first_help_month": model.first_help_month,
        "ot_contact_month": model.ot_contact_month,
        "agencies_involved": agencies,
        "meetings": model.meetings,
        "assessments": model.assessments,
        "joint_assessments": model.joint_assessments,
        "duplicate_assessments": model.duplicate_assessments,
        "dropped_handoffs": model.dropped_handoffs,
        "consent_refusals": model.consent_refusals,
        "repeats": st.repeats,
        "hours_received": np.round(model.hours_received, 2),
    }


def _share(mask: np.ndarray, within: np.ndarray | None = None) -> float | None:
    if within is None:
        return float(mask.mean()) if mask.size else None
    n = int(within.sum())
    return float((mask & within).sum() / n) if n else None


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "median": None, "n": 0}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "n": int(values.size)}


def _by_agencies_involved(model: "DropoutModel", helped: np.ndarray) -> dict[str, dict]:
    """Outcomes and process per number of agencies that helped a student (1, 2, 3, 4+)."""
    st = model.students
    k = model.agencies_involved.sum(axis=1)
    done5 = st.completed_within()
    out = {}
    for lo, hi, name in ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 99, "4+")):
        sel = helped & (k >= lo) & (k <= hi)
        n = int(sel.sum())
        out[name] = {
            "students": n,
            "completion_5y": float(done5[sel].mean()) if n else None,
            "meetings": float(model.meetings[sel].mean()) if n else None,
            "hours": float(model.hours_received[sel].mean()) if n else None,
            "assessments": float(model.assessments[sel].mean()) if n else None,
            "duplicate_assessments": float(model.duplicate_assessments[sel].mean()) if n else None,
        }
    return out


def summary(model: "DropoutModel") -> dict[str, Any]:
    """Headline outcomes and process measures of one run (JSON-ready)."""
    st = model.students
    done5 = st.completed_within()
    done_any = st.completion_month != NO_MONTH
    by_track = {name: _share(done5, st.track == code) for code, name in enumerate(TRACK_NAMES)}
    by_band = {band_name(lo, hi): _share(done5, (st.grade_points >= lo) & (st.grade_points < hi))
               for lo, hi in GRADE_POINT_BANDS}
    left = st.first_dropout_month != NO_MONTH
    at_risk = st.first_risk_month != NO_MONTH
    helped = model.first_help_month != NO_MONTH
    both = at_risk & helped
    risk_to_help = np.maximum(0, model.first_help_month[both] - st.first_risk_month[both])
    contacted = model.ot_wait_months != NO_MONTH
    involved = model.agencies_involved
    helped_any = involved.any(axis=1)
    n_helped = int(helped_any.sum())

    agency_hours = {}
    total_hours = 0.0
    rec = model.recorder
    for agency in model.agency_list:
        used = rec.series(f"{agency.name}_hours_used") if rec.rows else np.zeros(1)
        cap = rec.series(f"{agency.name}_capacity") if rec.rows else np.zeros(1)
        queue = rec.series(f"{agency.name}_queue") if rec.rows else np.zeros(1)
        total_hours += float(used.sum())
        agency_hours[agency.name] = {
            "capacity_hours": float(cap.sum()),
            "hours_used": float(used.sum()),
            "utilisation": float(used.sum() / cap.sum()) if cap.sum() > 0 else None,
            "coordination_hours": float(rec.series(f"{agency.name}_hours_coordination").sum()) if rec.rows else 0.0,
            "assessment_hours": float(rec.series(f"{agency.name}_hours_assessment").sum()) if rec.rows else 0.0,
            "overhead_hours": float(rec.series(f"{agency.name}_hours_overhead").sum()) if rec.rows else 0.0,
            "peak_queue": int(queue.max()),
            "students_helped": int(involved[:, agency.index].sum()),
            "colocated": bool(model.regime.is_colocated[agency.index]),
        }
    n_completed = int(done5.sum())
    return {
        "completion_5y": _share(done5),
        "completion_5y_by_track": by_track,
        "completion_5y_by_grade_points": by_band,
        "completion_by_end": _share(done_any),
        "completed_5y": n_completed,
        "students": int(st.n),
        "students_by_track": {name: int((st.track == code).sum()) for code, name in enumerate(TRACK_NAMES)},
        "horizon_covers_normert_tid": bool(model.month >= NORMERT_TID_MONTHS),
        "dropout_share": _share(left),
        "reentered_share_of_dropouts": _share(st.reentered, left),
        "completed_5y_share_of_dropouts": _share(done5, left),
        "no_laereplass_share_of_vocational": _share(st.lacked_laereplass, st.track == 1),
        "at_risk_share": _share(at_risk),
        "at_risk_never_helped_share": _share(~helped, at_risk),
        "months_risk_to_help": _stats(risk_to_help.astype(float)),
        "ot_contact_share_of_dropouts": _share(contacted, left),
        "months_dropout_to_ot": _stats(model.ot_wait_months[contacted].astype(float)),
        "helped_students": n_helped,
        "meetings_per_helped_student": float(model.meetings[helped_any].mean()) if n_helped else None,
        "assessments_per_helped_student": float(model.assessments[helped_any].mean()) if n_helped else None,
        "duplicate_assessments_per_helped_student": (
            float(model.duplicate_assessments[helped_any].mean()) if n_helped else None),
        "hours_per_helped_student": float(model.hours_received[helped_any].mean()) if n_helped else None,
        "agencies_per_helped_student": float(involved[helped_any].sum(axis=1).mean()) if n_helped else None,
        "by_agencies_involved": _by_agencies_involved(model, helped_any),
        "dropped_handoffs": int(model.dropped_handoffs.sum()),
        "consent_refusals": int(model.consent_refusals.sum()),
        "agency_hours": agency_hours,
        "total_agency_hours": total_hours,
        "agency_hours_per_completer_5y": total_hours / n_completed if n_completed else None,
    }
