"""Pattern-oriented validation: the eight patterns of brief section 6 and the calibration targets.

    dropout-sim validate                          # all patterns + targets, figures in validation/
    dropout-sim validate --replicates 8 --size 30000 --out results/validation
    dropout-sim validate --patterns 3,5 +calibration=section9

Each pattern is a small experiment on the model as it is: it runs scenarios that differ only
in the lever the pattern is about, on paired replicates (replicate *r* of every scenario shares
its synthetic cohort and all student-level draws: common random numbers), computes a statistic
per replicate and a t-based 95 % interval over replicates, and checks the interval against the
pattern's criterion. Nothing here (or in the model) knows which scenario a test runs: the
patterns must emerge from the mechanisms. ``tests/test_patterns.py`` runs the same functions.

Pattern functions return a :class:`PatternResult` (checks + data for one figure). Runs are
cached by their overrides within a :class:`Runner`, run by the batch runner on
``DROPOUT_SIM_PROCESSES`` processes (default: up to 2), and stop at month 60 (``horizon_months=60``): every measure used here is
about normert tid, and the model is causal, so months 60-71 cannot change it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..calendar import NORMERT_TID_MONTHS
from ..errors import ArgumentParser, ConfigError
from .calibrate import summary_value
from .intervals import t_half_width
from ..model.students import NEED_BIT, NO_MONTH

HORIZON = NORMERT_TID_MONTHS
COMPOSITE_NEEDS = ("psychosocial", "financial", "learning_difficulty")
"""Needs served by health, NAV and PPT; a student with two or more at intake is a composite case."""
SERVICES = ("health", "ppt", "nav")
"""The services added one by one to a case in pattern 4 (school and OT are always present)."""


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """Mean over replicates with a two-sided t interval (level 0.95)."""

    mean: float
    lo: float
    hi: float
    values: list[float]

    @classmethod
    def of(cls, values: Sequence[float], level: float = 0.95) -> "Estimate":
        v = np.asarray(values, dtype=float)
        m = float(v.mean())
        if v.size < 2:
            return cls(m, float("nan"), float("nan"), v.tolist())
        half = float(t_half_width(v.std(ddof=1) / np.sqrt(v.size), v.size - 1, level))
        return cls(m, m - half, m + half, v.tolist())

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.lo:+.4f}, {self.hi:+.4f}]"


@dataclass
class Check:
    """One testable statement: an estimate and the interval it must lie strictly inside (an
    interval touching 0 is not evidence of a direction)."""

    name: str
    estimate: Estimate
    lower: float | None = None
    upper: float | None = None
    on: str = "interval"
    """'interval': the whole 95 % interval must be inside the bounds; 'mean': the mean must."""
    kind: str = "pattern"
    """'pattern': could go either way, the model's answer; 'mechanism': true by construction of the
    mechanisms (a check that the mechanism is wired in, not evidence for the pattern)."""

    @property
    def passed(self) -> bool:
        e = self.estimate
        lo, hi = (e.lo, e.hi) if self.on == "interval" else (e.mean, e.mean)
        if np.isnan(lo) or np.isnan(hi):
            return False
        return (self.lower is None or lo > self.lower) and (self.upper is None or hi < self.upper)

    @property
    def criterion(self) -> str:
        what = "95% CI" if self.on == "interval" else "mean"
        if self.lower is not None and self.upper is not None:
            return f"{what} in ({self.lower:g}, {self.upper:g})"
        return f"{what} > {self.lower:g}" if self.lower is not None else f"{what} < {self.upper:g}"


@dataclass
class PatternResult:
    number: int
    title: str
    checks: list[Check]
    plot: Callable[[Any], None] | None = None
    data: dict = field(default_factory=dict)
    panels: int = 1
    """Axes side by side in the figure: ``plot`` gets one axes, or a list of ``panels`` axes."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


# --------------------------------------------------------------------------------------
# running scenarios
# --------------------------------------------------------------------------------------
def _composite_mask(needs_at_intake: np.ndarray) -> np.ndarray:
    """Students with two or more of the composite needs at intake (needs are a bit field)."""
    count = sum(((needs_at_intake & NEED_BIT[n]) != 0).astype(int) for n in COMPOSITE_NEEDS)
    return count >= 2


def _probe_summary(model) -> dict:
    """The run summary plus measures computed from the focal students' arrays."""
    from ..model.metrics import Focal, summary

    s = summary(model)
    f = Focal(model)
    done5 = f.completed_within()
    helped = f.agencies_involved.any(axis=1)
    hm = f.help_months[helped].sum()
    comp = _composite_mask(model.students.needs_at_intake[model.focal_rows()])
    hours = s["agency_hours"].values()
    s["extra"] = {
        "meetings_per_help_month": float(f.meetings[helped].sum() / hm) if hm else float("nan"),
        "composite_students": int(comp.sum()),
        "completion_5y_composite": float(done5[comp].mean()) if comp.any() else float("nan"),
        "meeting_share_of_hours": float(sum(h["hours_meetings"] for h in hours)
                                        / max(1e-9, sum(h["hours_used"] for h in hours))),
    }
    return s


BUILDUP_STATES = ("engagement", "mastery", "strain")
"""States compared in pattern 2 (engagement is attendance, the share of school attended)."""
BUILDUP_MONTHS = 12
"""Length of the build-up window: the 12 months before the month of the first exit."""


def _probe_buildup(model, lags: int = BUILDUP_MONTHS) -> dict:
    """Dropouts' monthly attendance, mastery and strain over the ``lags`` months before their first
    exit, against **matched stayers over the same calendar months**, from the recorded trajectories
    (``output.trajectory_sample`` students of the first focal cohort: one entry cohort, one replicate).

    Dropouts: hazard exits in own months ``lags + 1`` .. 59 (leaving for want of a læreplass is a
    June decision, not a build-up). Window of a dropout leaving in month d: from the end of month
    d - 13 to the end of month d - 1 (12 monthly updates; the exit month itself is left out, so the
    state that triggered the exit draw does not enter the change). Matched stayers: students of the
    same entry cohort and run who did not leave school within the five years, in the same cell of
    entry track x grade-point band (the register's eight bands) x status at the window's start
    (in school / apprentice), and active (in school or apprenticeship) at both ends of the same
    window. Per dropout: its change minus the mean change of its matched stayers (a
    difference-in-differences); dropouts whose cell has no stayer are left out (``matched_share``).
    ``*_did_notyet`` repeats it with risk-set controls (students who had not left by the month the
    dropout left, whether or not they leave later). All vectorised over students."""
    from ..model.metrics import Focal, GRADE_POINT_BANDS
    from ..model.students import APPRENTICE

    f = Focal(model)
    traj = np.stack(model.recorder.trajectories)  # (months, sample, 8): month, gid, status, mastery, strain, belonging, engagement, trust
    months = traj.shape[0]
    sample = traj[0, :, 1].astype(np.int64)
    index = np.searchsorted(f.gid, sample)
    status = traj[:, :, 2]
    states = {"mastery": traj[:, :, 3], "strain": traj[:, :, 4], "engagement": traj[:, :, 6]}
    d = f.first_dropout_month[index]
    active = status <= APPRENTICE
    w = max(1, min(HORIZON, months) - lags)   # w - 1 windows: starts s = 0 .. w-2; exit month d = s + lags + 1
    start, end = np.arange(w - 1), np.arange(w - 1) + lags  # end of month s and s + 12 (= d - 13, d - 1)
    both = active[start] & active[end]        # (windows, sample): enrolled at both ends of the window
    bands = np.searchsorted([hi for _, hi in GRADE_POINT_BANDS], f.grade_points[index], side="right")
    cell = (f.entry_track[index].astype(np.int64) * len(GRADE_POINT_BANDS) + bands) * 2 \
        + (status[start] == APPRENTICE)       # (windows, sample): cell at each window's start
    n_cells = 2 * len(GRADE_POINT_BANDS) * 2
    exit_ = np.where(d == NO_MONTH, HORIZON, d)
    hazard = (d >= lags + 1) & (d < lags + w) & ~f.lacked_laereplass[index]
    drop = np.flatnonzero(hazard)
    drop = drop[both[d[drop] - lags - 1, drop]]  # enrolled at both ends of the window (first exit: always)
    s_drop = d[drop] - lags - 1
    c_drop = cell[s_drop, drop]
    controls = {"stayers": both & (exit_ >= HORIZON)[None, :],
                "notyet": both & (exit_[None, :] > start[:, None] + lags + 1)}
    out: dict[str, Any] = {"dropouts": int(drop.size), "lags": lags}
    win = start[:, None] + np.arange(lags + 1)[None, :]   # (windows, lags + 1): months of each window
    for ctrl, valid in controls.items():
        flat = (np.arange(w - 1)[:, None] * n_cells + cell)[valid]
        count = np.bincount(flat, minlength=(w - 1) * n_cells).reshape(w - 1, n_cells)
        ok = count[s_drop, c_drop] > 0
        out[f"matched_share_{ctrl}"] = float(ok.mean()) if drop.size else float("nan")
        out[f"stayers_per_dropout_{ctrl}"] = float(count[s_drop, c_drop][ok].mean()) if ok.any() else float("nan")
        for name, arr in states.items():
            # matched stayers' mean path over each window, per cell: (windows, lags + 1, cells)
            paths = np.stack([np.bincount(flat, weights=arr[win[:, k]][valid], minlength=(w - 1) * n_cells)
                              .reshape(w - 1, n_cells) for k in range(lags + 1)], axis=1)
            peer = paths[s_drop[ok], :, c_drop[ok]] / count[s_drop[ok], c_drop[ok]][:, None]  # (dropouts, lags + 1)
            own = arr[win[s_drop[ok]], drop[ok][:, None]]
            if not ok.any():   # no matched dropout (a tiny cohort): NaN, which fails every check
                own = peer = np.full((1, lags + 1), np.nan)
            did = (own[:, -1] - own[:, 0]) - (peer[:, -1] - peer[:, 0])
            out[f"{name}_did_{ctrl}"] = float(did.mean())
            if ctrl == "stayers":
                out[f"{name}_did"] = out[f"{name}_did_stayers"]
                out[f"{name}_change"] = float((own[:, -1] - own[:, 0]).mean())
                out[f"{name}_peer_change"] = float((peer[:, -1] - peer[:, 0]).mean())
                out[f"{name}_gap_start"] = float((own[:, 0] - peer[:, 0]).mean())
                out[f"{name}_path"] = own.mean(axis=0).tolist()
                out[f"{name}_peer_path"] = peer.mean(axis=0).tolist()
    risk = f.first_risk_month[index][drop]
    signalled = risk != NO_MONTH
    lead = (d[drop] - risk)[signalled]
    out["lead_months_median"] = float(np.median(lead)) if lead.size else float("nan")
    out["signalled_share"] = float(signalled.mean()) if drop.size else float("nan")
    return out


PROBES: dict[str, Callable] = {"summary": _probe_summary, "buildup": _probe_buildup}


def default_processes() -> int:
    from ..runs.batch import default_n_jobs

    return default_n_jobs()


class Runner:
    """Runs (overrides, probe) jobs once each on the batch runner (:mod:`dropout_sim.runs.batch`:
    one composition per config-group combination, a process pool) and caches their results."""

    def __init__(self, base: Sequence[str] = (), processes: int | None = None):
        self.base = [f"horizon_months={HORIZON}", "output.students_table=false", *map(str, base)]
        """overrides of every run: the batch runner's base (its composer also takes ``hydra.*``
        lines such as ``hydra.searchpath=[file://DIR]`` from there)"""
        self.processes = processes or default_processes()
        self.cache: dict[tuple, dict] = {}
        self._batch: dict[str, Any] = {}

    def key(self, overrides: Sequence[str], probe: str) -> tuple:
        """A run's cache key: its own overrides (the base is this runner's) and the probe."""
        return (tuple(overrides), probe)

    def _runner(self, probe: str):
        from ..runs.batch import BatchRunner

        if probe not in self._batch:
            self._batch[probe] = BatchRunner(self.base, n_jobs=self.processes, probe=PROBES[probe])
        return self._batch[probe]

    def close(self) -> None:
        """Stop the worker processes."""
        for runner in self._batch.values():
            runner.close()
        self._batch.clear()

    def run(self, jobs: Sequence[tuple[Sequence[str], str]]) -> list[dict]:
        keys = [self.key(ov, probe) for ov, probe in jobs]
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        for probe in dict.fromkeys(p for _, p in todo):
            batch = [k for k in todo if k[1] == probe]
            for key, outcome in zip(batch, self._runner(probe).run([list(k[0]) for k in batch])):
                if outcome.status != "ran":
                    raise RuntimeError(f"validation run {' '.join([*self.base, *key[0]])} {outcome.status}: "
                                       f"{outcome.error}")
                self.cache[key] = outcome.value
        return [self.cache[k] for k in keys]

    def summaries(self, scenarios: Sequence[Sequence[str]], replicates: int, size: int) -> list[list[dict]]:
        """summaries[i][r]: scenario i, replicate r (paired across scenarios)."""
        jobs = [([f"cohort.size={size}", f"replicate={r}", *sc], "summary")
                for sc in scenarios for r in range(replicates)]
        flat = self.run(jobs)
        return [flat[i * replicates:(i + 1) * replicates] for i in range(len(scenarios))]


_get = summary_value  # a summary key by dotted path ("completion_5y_by_track.academic")


def _diff(a: list[dict], b: list[dict], key: str) -> Estimate:
    """Paired difference a - b of a summary key over replicates."""
    return Estimate.of([_get(x, key) - _get(y, key) for x, y in zip(a, b)])


def _vals(a: list[dict], key: str) -> Estimate:
    return Estimate.of([_get(x, key) for x in a])


# --------------------------------------------------------------------------------------
# the eight patterns
# --------------------------------------------------------------------------------------
SILOED = ("regime=siloed",)
COLOCATED = ("regime=colocated",)


def pattern_baseline(runner: Runner, replicates: int = 5, size: int = 20000) -> PatternResult:
    """1. Siloed baseline: about 70-75 % complete within five years, academic far above vocational."""
    (base,) = runner.summaries([SILOED], replicates, size)
    total = _vals(base, "completion_5y")
    gap = Estimate.of([_get(s, "completion_5y_by_track.academic") - _get(s, "completion_5y_by_track.vocational")
                       for s in base])
    checks = [Check("completion within 60 months (siloed)", total, 0.68, 0.80),
              Check("academic - vocational", gap, lower=0.15)]

    def plot(ax):
        keys = ["completion_5y", "completion_5y_by_track.academic", "completion_5y_by_track.vocational"]
        means = [_vals(base, k).mean for k in keys]
        ax.bar(["all", "academic", "vocational"], means, color=["0.5", "tab:blue", "tab:orange"])
        for x, k in enumerate(keys):
            ax.plot([x] * len(base), [_get(s, k) for s in base], "k.", ms=3)
        ax.scatter([0, 1, 2], [0.753, 0.88, 0.62], marker="_", s=400, color="red", label="SSB 2013 cohort")
        ax.set_ylim(0, 1)
        ax.set_ylabel("completed within 60 months")
        ax.legend(loc="lower right")

    return PatternResult(1, "Siloed baseline: about 70-75 % complete, academic far above vocational", checks, plot,
                         {"summaries": base})


BUILDUP_VISIBLE = 0.01
"""Pattern 2's bar for a *visible* build-up: the 95 % interval of the attendance and mastery
difference-in-differences must lie below -0.01 (1 pp of attendance; 0.01 of mastery on its 0-1
scale), not only below 0. Selection alone (who happens to leave) leaves a small decline even with
the mechanism switched off: without 'absence costs mastery' (``dynamics.attendance_floor=0``) the
mastery DiD is -0.003 [-0.005, -0.002] at 8 x 10,000, which excludes 0 but is not a build-up."""


def pattern_buildup(runner: Runner, replicates: int = 8, size: int = 10000) -> PatternResult:
    """2. Dropout follows a long build-up: in the 12 months before the first exit dropouts' attendance
    and mastery fall, and strain rises, more than among matched stayers over the same calendar months
    (difference-in-differences per replicate, t-interval over replicates; matching in
    :func:`_probe_buildup`), and dropouts are already worse off at the start of those 12 months."""
    jobs = [([f"cohort.size={size}", f"replicate={r}", f"output.trajectory_sample={size}", *SILOED], "buildup")
            for r in range(replicates)]
    res = runner.run(jobs)

    def est(key: str) -> Estimate:
        return Estimate.of([r[key] for r in res])

    lead = est("lead_months_median")
    checks = [
        Check("attendance change before exit, dropouts - matched stayers (12 months)", est("engagement_did"),
              upper=-BUILDUP_VISIBLE),
        Check("mastery change before exit, dropouts - matched stayers (12 months)", est("mastery_did"),
              upper=-BUILDUP_VISIBLE),
        Check("strain change before exit, dropouts - matched stayers (12 months)", est("strain_did"), lower=0.0),
        Check("attendance gap to matched stayers 12 months before exit", est("engagement_gap_start"), upper=0.0),
        Check("mastery gap to matched stayers 12 months before exit", est("mastery_gap_start"), upper=0.0),
        Check("strain gap to matched stayers 12 months before exit", est("strain_gap_start"), lower=0.0),
        Check("median months from first risk signal to exit", lead, lower=6.0, on="mean"),
    ]

    def plot(axes):
        lags = np.arange(-res[0]["lags"] - 1, 0)  # end of month d-13 .. d-1 (d: the exit month)
        for ax, (name, label) in zip(axes, (("engagement", "attendance (share attended)"), ("mastery", "mastery (0-1)"),
                                             ("strain", "strain (0-1)"))):
            for key, color, who in ((f"{name}_path", "tab:red", "dropouts"),
                                    (f"{name}_peer_path", "tab:blue", "matched stayers, same months")):
                paths = np.array([r[key] for r in res])
                mean = paths.mean(axis=0)
                half = t_half_width(paths.std(axis=0, ddof=1) / np.sqrt(len(res)), len(res) - 1)
                ax.plot(lags, mean, color=color, label=who)
                ax.fill_between(lags, mean - half, mean + half, color=color, alpha=0.25, lw=0)
            did = est(f"{name}_did")
            ax.set_title(f"{label}\nDiD {did.mean:+.3f} [{did.lo:+.3f}, {did.hi:+.3f}]", fontsize=8)
            ax.set_xlabel("month relative to the exit month (state at its end)")
        axes[0].legend(fontsize=7)

    return PatternResult(2, "Dropout follows a long build-up (12 months before the first exit, against matched "
                         "stayers; bands: 95 % t-interval over replicates)", checks, plot, {"runs": res}, panels=3)


PARTIAL = ("regime.name=partial", "regime.colocated=[school,health,ppt]")
SCARCE = ("agencies.staffing_scale=0.5",)
SLACK = ("agencies.staffing_scale=1.5",)


def pattern_colocation_process(runner: Runner, replicates: int = 5, size: int = 20000) -> PatternResult:
    """3. Co-location shortens risk signal -> help and dropout -> OT contact, and cuts duplicate
    assessments and meetings.

    Under full co-location the dropout -> OT delay and duplicate assessments are set by the
    mechanisms themselves (a co-located delay is an input; a joint intake covers parallel cases):
    those are *mechanism* checks. The pattern proper is tested where it could go either way, on
    the wait from the first risk signal to help from a specialised service (the school is
    everyone's first help in both regimes): with slack (staff x1.5) full and partial co-location
    (school, health, PPT) must shorten it; and the shortening must shrink when staff is scarce
    (x0.5), because faster, better-informed referrals then only lengthen the specialised
    services' queues. At today's staffing the model finds no shortening (health and PPT queue
    in most months): the pattern holds only where services have slack."""
    silo, colo, part, silo_slack, colo_slack, part_slack, silo_scarce, colo_scarce = runner.summaries(
        [SILOED, COLOCATED, (*SILOED, *PARTIAL[1:]), (*SILOED, *SLACK), (*COLOCATED, *SLACK),
         (*SILOED, *PARTIAL[1:], *SLACK), (*SILOED, *SCARCE), (*COLOCATED, *SCARCE)], replicates, size)
    mechanism = [("months_dropout_to_ot", "months from dropout to OT contact"),
                 ("duplicate_assessments_per_helped_student", "duplicate assessments per helped student"),
                 ("extra.meetings_per_help_month", "meetings per month of help")]
    checks = [Check(f"{label}: co-located - siloed", _diff(colo, silo, key), upper=0.0, kind="mechanism")
              for key, label in mechanism]
    key = "months_risk_to_service_help"
    gain_slack = [_get(c, key) - _get(s_, key) for c, s_ in zip(colo_slack, silo_slack)]
    gain_scarce = [_get(c, key) - _get(s_, key) for c, s_ in zip(colo_scarce, silo_scarce)]
    checks += [
        Check("months from first risk signal to help from a specialised service: co-located - siloed, staff x1.5",
              _diff(colo_slack, silo_slack, key), upper=0.0),
        Check("months from first risk signal to help from a specialised service: partial (school, health, PPT) - "
              "siloed, staff x1.5", _diff(part_slack, silo_slack, key), upper=0.0),
        Check("same, co-located - siloed: at half staff minus at staff x1.5 (scarcity eats the shortening)",
              Estimate.of(np.subtract(gain_scarce, gain_slack)), lower=0.0),
        Check("meetings per student on 3-agency cases: partial - siloed",
              _diff(part, silo, "by_agencies_involved.3.meetings"), upper=0.0),
        Check("completion within 60 months: partial - siloed", _diff(part, silo, "completion_5y"), lower=0.0),
    ]
    raw = _diff(colo, silo, "meetings_per_helped_student")
    keys = ["months_risk_to_service_help", "months_dropout_to_ot", "duplicate_assessments_per_helped_student",
            "extra.meetings_per_help_month"]

    def plot(ax):
        x = np.arange(len(keys))
        for i, (runs, name) in enumerate(((silo, "siloed"), (part, "partial"), (colo, "co-located"))):
            ax.bar(x + (i - 1) * 0.27, [_vals(runs, k).mean for k in keys], 0.27, label=name)
        ax.set_xticks(x, ["risk->service\nhelp (months)", "dropout->OT\n(months)", "duplicate\nassessments",
                          "meetings per\nhelp-month"], fontsize=7)
        ax.set_yscale("log")
        ax.legend()

    return PatternResult(3, "Co-location shortens delays and cuts duplicate assessments and meetings", checks, plot,
                         {"meetings_per_helped_student_diff": raw})


def _agency_scenario(present: Sequence[str], colocated: bool) -> tuple[str, ...]:
    ov = [f"~agencies.{a}" for a in SERVICES if a not in present]
    if colocated:
        ov += ["regime.name=colocated", "regime.colocated=[" + ",".join(["school", *present, "ot"]) + "]"]
    else:
        ov += list(SILOED)
    return tuple(ov)


def pattern_agencies(runner: Runner, replicates: int = 4, size: int = 50000) -> PatternResult:
    """4. Diminishing returns per added agency on composite cases under siloing; co-location flattens it.

    For each service X of health, PPT, NAV: its gain when it is the only service besides the
    school (first) and when it joins the other two (last), on the completion of students with
    two or more composite needs at intake (same students in every scenario: the cohort is
    shared). Diminishing returns: sum of first gains minus sum of last gains > 0.
    """
    sets: list[tuple[str, ...]] = [(), *[(a,) for a in SERVICES], *[tuple(b for b in SERVICES if b != a) for a in SERVICES],
                                   SERVICES]
    key = "extra.completion_5y_composite"
    out: dict[str, list[float]] = {}
    gains: dict[str, dict] = {}
    for colocated in (False, True):
        runs = runner.summaries([_agency_scenario(s, colocated) for s in sets], replicates, size)
        c = {s: np.array([_get(x, key) for x in r]) for s, r in zip(sets, runs)}
        first = sum(c[(a,)] - c[()] for a in SERVICES)
        last = sum(c[SERVICES] - c[tuple(b for b in SERVICES if b != a)] for a in SERVICES)
        name = "colocated" if colocated else "siloed"
        out[name] = (first - last).tolist()
        gains[name] = {"first": first, "last": last,
                       "curve": [c[()].mean(), np.mean([c[(a,)] for a in SERVICES], axis=0).mean(),
                                 np.mean([c[tuple(b for b in SERVICES if b != a)] for a in SERVICES], axis=0).mean(),
                                 c[SERVICES].mean()]}
    checks = [
        Check("siloed: gain as first - gain as last service (composite cases)", Estimate.of(out["siloed"]), lower=0.0),
        Check("diminishing returns, siloed - co-located", Estimate.of(np.subtract(out["siloed"], out["colocated"])),
              lower=0.0),
    ]

    def plot(ax):
        for name, color in (("siloed", "tab:orange"), ("colocated", "tab:green")):
            ax.plot([0, 1, 2, 3], gains[name]["curve"], "o-", color=color, label=name)
        ax.set_xticks([0, 1, 2, 3], ["school\nonly", "+1", "+2", "+3"])
        ax.set_xlabel("services besides the school (mean over which)")
        ax.set_ylabel("completion, students with 2+ composite needs")
        ax.legend()

    return PatternResult(4, "Diminishing returns per added agency when siloed; co-location flattens the curve",
                         checks, plot, {"gains": gains})


def pattern_early(runner: Runner, replicates: int = 5, size: int = 20000,
                  starts: Sequence[int] = (0, 12, 24)) -> PatternResult:
    """5. The same support started earlier yields more completions (screening start month)."""
    runs = runner.summaries([(*SILOED, f"intervention.screening_start_month={m}") for m in starts], replicates, size)
    checks = [Check(f"completion, start month {a} - start month {b}", _diff(runs[i], runs[i + 1], "completion_5y"),
                    lower=0.0) for i, (a, b) in enumerate(zip(starts[:-1], starts[1:]))]

    def plot(ax):
        base = np.array([_get(s, "completion_5y") for s in runs[0]])
        for r in range(replicates):
            ax.plot(starts, [_get(run[r], "completion_5y") - base[r] for run in runs], color="0.7", lw=0.8)
        ax.plot(starts, [_diff(run, runs[0], "completion_5y").mean for run in runs], "o-", color="k")
        ax.set_xlabel("month systematic screening starts")
        ax.set_ylabel(f"completion vs start at month {starts[0]}")

    return PatternResult(5, "The same support started earlier yields more completions", checks, plot)


def pattern_demand(runner: Runner, replicates: int = 5, size: int = 20000,
                   levels: Sequence[float] = (1, 2, 4, 8)) -> PatternResult:
    """6. With capacity held fixed, effects saturate as demand grows; some at-risk students are never reached.

    Demand grows k-fold at fixed capacity: k times as many students of the same kind per hour
    of every agency, i.e. every agency's posts divided by k (``agencies.staffing_scale=1/k``;
    the results are shares, so the county keeps its size). Saturation: completion falls by more
    per unit of capacity lost when capacity is already scarce (returns to capacity diminish)."""
    scales = [1.0 / k for k in levels]
    runs = runner.summaries([(*SILOED, f"agencies.staffing_scale={s:g}") for s in scales], replicates, size)
    key = "at_risk_never_helped_share"
    checks = [Check(f"never-helped share, demand x{b:g} - x{a:g} (fixed capacity)", _diff(runs[i + 1], runs[i], key),
                    lower=0.0)
              for i, (a, b) in enumerate(zip(levels[:-1], levels[1:]))]
    checks.append(Check("never-helped share at today's demand (x1)", _vals(runs[0], key), lower=0.0))
    per_unit = [[(_get(hi, "completion_5y") - _get(lo, "completion_5y")) / (s_hi - s_lo) for hi, lo in zip(a, b)]
                for a, b, s_hi, s_lo in zip(runs[:-1], runs[1:], scales[:-1], scales[1:])]
    checks.append(Check(f"completion per unit of capacity lost, demand x{levels[1]:g}->x{levels[2]:g} - "
                        f"x{levels[0]:g}->x{levels[1]:g} (saturation)",
                        Estimate.of(np.subtract(per_unit[1], per_unit[0])), lower=0.0))

    def plot(ax):
        ax.plot(levels, [_vals(r, key).mean for r in runs], "o-", label="at-risk never helped")
        ax.plot(levels, [_vals(r, "completion_5y").mean for r in runs], "s--", label="completion within 60 months")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("demand per hour of capacity (x today's)")
        ax.set_ylabel("share")
        ax.legend(fontsize=7)

    return PatternResult(6, "At fixed capacity effects saturate as demand grows; some are never reached",
                         checks, plot)


def pattern_ot(runner: Runner, replicates: int = 5, size: int = 20000,
               delays: Sequence[float] = (0.5, 3.0, 9.0)) -> PatternResult:
    """7. Some who leave return through OT and complete within five years; fewer when OT is slow."""
    runs = runner.summaries([(*SILOED, f"agencies.ot.siloed_delay_months={d}") for d in delays] + [(*SILOED, "~agencies.ot")],
                            replicates, size)
    key = "completed_5y_share_of_dropouts"
    default = list(delays).index(3.0) if 3.0 in delays else 0
    checks = [Check("dropouts completing within 60 months, with OT - without OT", _diff(runs[default], runs[-1], key),
                    lower=0.0)]
    checks += [Check(f"same, OT delay {a:g} - {b:g} months", _diff(runs[i], runs[i + 1], key), lower=0.0)
               for i, (a, b) in enumerate(zip(delays[:-1], delays[1:]))]

    def plot(ax):
        ax.plot(delays, [_vals(r, key).mean for r in runs[:-1]], "o-", label="with OT")
        ax.axhline(_vals(runs[-1], key).mean, color="k", ls="--", label="no OT")
        ax.set_xlabel("mean delay before OT learns of a dropout (months, siloed)")
        ax.set_ylabel("dropouts completing within 60 months")
        ax.set_ylim(0, None)
        ax.legend()

    return PatternResult(7, "Some who leave return through OT and complete; fewer when OT is slow", checks, plot)


def pattern_cost(runner: Runner, replicates: int = 5, size: int = 20000,
                 hours: Sequence[float] = (0.0, 8.0, 40.0), staffing: Sequence[float] = (0.25, 1.0)) -> PatternResult:
    """8. Co-location is not free, and does not always pay: resource-team meetings and teaching new
    partners take hours from help; where meeting time is large, or staff scarce, the gain shrinks
    or turns negative."""
    sil, *col = runner.summaries([SILOED] + [(*COLOCATED, f"regime.resource_team_hours_per_1000={h}") for h in hours],
                                 replicates, size)
    scarce = runner.summaries([p for s in staffing for p in ((*SILOED, f"agencies.staffing_scale={s:g}"),
                                                             (*COLOCATED, f"agencies.staffing_scale={s:g}"))],
                              replicates, size)
    default = col[list(hours).index(8.0)] if 8.0 in hours else col[0]
    gain = [_diff(c, sil, "completion_5y") for c in col]
    slack = [_diff(scarce[2 * i + 1], scarce[2 * i], "completion_5y") for i in range(len(staffing))]
    slack_diff = Estimate.of(np.subtract(slack[-1].values, slack[0].values))
    checks = [
        Check("meeting time share of agency hours (co-located, default)", _vals(default, "extra.meeting_share_of_hours"),
              lower=0.0, kind="mechanism"),
        Check(f"co-location gain at {hours[0]:g} h - at {hours[-1]:g} h per 1,000",
              _diff(col[0], col[-1], "completion_5y"), lower=0.0),
        Check(f"co-location gain at {hours[-1]:g} h per 1,000 (does not pay)", gain[-1], upper=0.0),
        Check(f"co-location gain at staffing x{staffing[-1]:g} - at x{staffing[0]:g}", slack_diff, lower=0.0),
    ]

    def plot(ax):
        ax.errorbar(hours, [g.mean for g in gain], yerr=[[g.mean - g.lo for g in gain], [g.hi - g.mean for g in gain]],
                    fmt="o-", capsize=3)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("resource-team meeting hours per month per 1,000 enrolled")
        ax.set_ylabel("completion, co-located - siloed")

    return PatternResult(8, "Co-location is not free and does not always pay", checks, plot,
                         {"gain": gain, "slack": slack})


PATTERNS: dict[int, Callable[..., PatternResult]] = {
    1: pattern_baseline, 2: pattern_buildup, 3: pattern_colocation_process, 4: pattern_agencies,
    5: pattern_early, 6: pattern_demand, 7: pattern_ot, 8: pattern_cost,
}


def calibration_checks(runner: Runner, targets: str = "default", replicates: int = 5, size: int = 20000) -> list[Check]:
    """Each calibration target: the siloed model's mean over replicates must be within tolerance."""
    from .calibrate import load_targets

    (base,) = runner.summaries([SILOED], replicates, size)
    out = []
    for t in load_targets(targets):
        est = _vals(base, t.key)
        out.append(Check(f"target {t.key} = {t.value:g} +/- {t.tolerance:g}", est, t.value - t.tolerance,
                         t.value + t.tolerance, on="mean"))
    return out


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def format_checks(results: Sequence[PatternResult], targets: Sequence[Check]) -> str:
    lines = []
    for res in results:
        lines.append(f"Pattern {res.number}: {res.title}  [{'PASS' if res.passed else 'FAIL'}]")
        for c in res.checks:
            tag = " [mechanism]" if c.kind == "mechanism" else ""
            lines.append(f"    {c.name + tag:74s} {str(c.estimate):32s} {c.criterion:22s} {'pass' if c.passed else 'FAIL'}")
    if targets:
        lines.append("Calibration targets (siloed, mean over replicates)")
        for c in targets:
            lines.append(f"    {c.name:62s} {c.estimate.mean:.4f} (95% CI {c.estimate.lo:.4f}-{c.estimate.hi:.4f})"
                         f"   {'pass' if c.passed else 'FAIL'}")
    return "\n".join(lines)


def save_figures(results: Sequence[PatternResult], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for res in results:
        if res.plot is None:
            continue
        import textwrap

        if res.panels > 1:
            fig, axes = plt.subplots(1, res.panels, figsize=(4 * res.panels, 4), sharex=True)
            res.plot(list(axes))
            fig.suptitle(textwrap.fill(f"Pattern {res.number}: {res.title}", 110), fontsize=9)
        else:
            fig, ax = plt.subplots(figsize=(6, 4))
            res.plot(ax)
            ax.set_title(textwrap.fill(f"Pattern {res.number}: {res.title}", 70), fontsize=9)
        fig.tight_layout()
        path = out / f"pattern_{res.number}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def parse_patterns(text: str) -> list[int]:
    """``1,3,5`` or ``1-8`` -> pattern numbers; ConfigError (one line) for anything else."""
    allowed = f"numbers {min(PATTERNS)}-{max(PATTERNS)} as a list or range, e.g. 1,3,5 or 1-8"
    wanted: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        if not a.isdigit() or not (b.isdigit() or not b) or int(b or a) < int(a):
            raise ConfigError(f"--patterns {text!r} is not allowed; allowed: {allowed}")
        wanted += list(range(int(a), int(b or a) + 1))
    bad = [k for k in wanted if k not in PATTERNS]
    if bad:
        raise ConfigError(f"--patterns {text!r}: no pattern {bad[0]}; allowed: {allowed}")
    return list(dict.fromkeys(wanted))


def check_arguments(args: argparse.Namespace) -> list[int]:
    """Refuse bad arguments of ``dropout-sim validate`` before any run (one line, exit 2):
    patterns, sizes, the overrides (composed and validated once) and the targets file."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..errors import fail
    from ..runs.api import check_memory, compose_config

    prog = "dropout-sim validate"
    try:
        wanted = parse_patterns(args.patterns)
        if args.replicates < 2:
            raise ConfigError(f"--replicates {args.replicates} is not allowed; allowed: >= 2 (intervals need two)")
        if not 1 <= args.size <= 10_000_000:
            raise ConfigError(f"--size {args.size} is not allowed; allowed: between 1 and 10000000 students")
        if args.processes is not None and args.processes < 1:
            raise ConfigError(f"--processes {args.processes} is not allowed; allowed: >= 1")
        from .calibrate import load_targets

        load_targets(args.targets)
        largest = max(int(args.size * 2.5) if 4 in wanted else args.size, 1)
        compose_config(args.overrides)  # the overrides as given (a bad value is refused even if --size wins)
        check_memory(compose_config([*args.overrides, f"cohort.size={min(largest, 10_000_000)}"]), "--size")
    except ConfigError as exc:
        fail(str(exc), prog)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        from ..errors import one_line

        fail(one_line(exc), prog)
    return wanted


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="dropout-sim validate",
                                 description="Run the pattern-oriented validation and the calibration-target "
                                             "checks; print model value, criterion and pass/fail; one figure per pattern.")
    ap.add_argument("--replicates", type=int, default=5, help="paired replicates per scenario (patterns 2 and 4 use three more: their effects "
                    "scatter most between replicates)")
    ap.add_argument("--size", type=int, default=20000, help="students per replicate (pattern 4 uses 2.5x; pattern 2 0.5x "
                    "with 3 more replicates: it observes one focal cohort's trajectories)")
    ap.add_argument("--patterns", default="1-8", help="which patterns, e.g. 1,3,5 or 1-8")
    ap.add_argument("--targets", default="default", help="targets file (configs/targets/<name>.yaml or a path)")
    ap.add_argument("--out", default="validation", help="folder for the figures")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: DROPOUT_SIM_PROCESSES or 2)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run (e.g. +calibration=section9)")
    args = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    wanted = check_arguments(args)
    runner = Runner(args.overrides, args.processes)
    try:
        return _validate(args, wanted, runner)
    finally:
        runner.close()


def _validate(args: argparse.Namespace, wanted: list[int], runner: Runner) -> int:
    r, n = args.replicates, args.size
    sizes = {2: (r + 3, n // 2), 4: (r + 3, int(n * 2.5))}  # pattern 4: 8 at the default, as in tests/test_pattern4.py
    results = []
    for k in wanted:
        reps, size = sizes.get(k, (r, n))
        res = PATTERNS[k](runner, reps, size)
        results.append(res)
        print(format_checks([res], []), flush=True)
    targets = calibration_checks(runner, args.targets, r, n)
    print(format_checks([], targets))
    paths = save_figures(results, Path(args.out))
    print(f"figures: {', '.join(str(p) for p in paths)}")
    ok = all(x.passed for x in results) and all(c.passed for c in targets)
    print("ALL PASS" if ok else "SOME CHECKS FAIL")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
