"""Figures of a gathered sweep (matplotlib, PNG and SVG, written atomically).

Each function takes a :class:`dropout_sim.analysis.report.Sweep` and returns a matplotlib
``Figure`` (no pyplot state, so it is safe in any process). Bands and error bars are 95 %
t-intervals over replicates. Every plotted series carries a ``gid`` (``completion:siloed``,
``stock:outside:colocated`` ...), which becomes the element id in the SVG, so a test or a
script can check that a written figure holds the expected series.

* ``completion_curves`` - cumulative share completed by the end of each month, per
  scenario, with the five-year line (60 months, normert tid) marked.
* ``status_stocks`` - share of the focal cohorts in school, apprentice, outside, completed.
* ``process_times`` - months from first risk signal to first help; months from dropout to
  OT contact (run means, then mean and interval over replicates).
* ``agency_hours`` - staff hours used per month against hours paid, and the queue, per agency.
* ``agencies_per_case`` - completion, hours and meetings of helped students by the number of
  agencies involved (the brief's pattern 4).
* ``heatmap`` - the metric over two swept keys (only when exactly two keys are swept).
* ``gains_by_group`` - when the sweep compares scenarios: each scenario's paired gain against the
  baseline within every grade-point band, gender and parents' education level (who benefits).
* ``gain_curve`` - when the regime and one numeric key are swept: each regime's paired gain
  against the baseline regime over that key (the co-location gain against slack).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..calendar import NORMERT_TID_MONTHS
from .intervals import mean_ci, t_half_width
from ..runs.results import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from .report import Sweep

STATUS_COLUMNS = ("focal_in_school", "focal_apprentice", "focal_outside", "focal_completed")
"""The focal cohorts' status stocks in monthly.csv (the county's stocks are beside them, unprefixed)."""
STATUS_TITLES = {"focal_in_school": "in school", "focal_apprentice": "apprentice",
                 "focal_outside": "outside (dropped out)", "focal_completed": "completed"}
AGENCY_GROUPS = ("1", "2", "3", "4+")


def gid(*parts: str) -> str:
    """An SVG-safe element id from parts (``completion``, ``regime=siloed``)."""
    return ":".join(re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(p)) for p in parts)


def colours(scenarios: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(scenarios) <= 10 else colormaps["viridis"]
    n = max(1, len(scenarios) - 1)
    return {s: cmap(i) if len(scenarios) <= 10 else cmap(i / n) for i, s in enumerate(scenarios)}


def _band(values: np.ndarray, lo: float = 0.0, hi: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95 % t-interval over axis 0 (replicates) of a (replicates, months) array.

    The band is clipped to [lo, hi] (the range the quantity can take: 0-1 for shares).
    """
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, mean, mean
    half = t_half_width(values.std(axis=0, ddof=1) / math.sqrt(n), n - 1)
    return mean, np.clip(mean - half, lo, hi), np.clip(mean + half, lo, hi)


def _matrix(monthly: pd.DataFrame, scenario: str, column: str, share: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(months, replicates x months array) of ``column`` for one scenario (share of the cohort)."""
    sel = monthly[monthly["scenario"] == scenario]
    values = sel[column] / sel["students"] if share else sel[column]
    wide = pd.DataFrame({"run": sel["run"], "month": sel["month"], "v": values}).pivot(
        index="run", columns="month", values="v")
    return wide.columns.to_numpy(), wide.to_numpy(dtype=float)


def completion_curves(sweep: "Sweep") -> Figure:
    """Cumulative completion by month per scenario, 95 % band, five-year line at 60 months.

    x is months since the first day of Vg1 at the end of the month, so the curve's value at
    60 is completion within 60 months (the summary's ``completion_5y``).
    """
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    col = colours(sweep.scenarios)
    for s in sweep.scenarios:
        months, values = _matrix(sweep.monthly, s, "focal_completed")
        if values.size == 0:
            continue
        mean, lo, hi = _band(values, 0.0, 1.0)
        x = months + 1
        at60 = mean[x == NORMERT_TID_MONTHS]
        label = f"{s} ({at60[0]:.1%} at 60 months)" if at60.size else s
        (line,) = ax.plot(x, mean, color=col[s], lw=1.8, label=label)
        line.set_gid(gid("completion", s))
        band = ax.fill_between(x, lo, hi, color=col[s], alpha=0.2, lw=0)
        band.set_gid(gid("completion-band", s))
    vline = ax.axvline(NORMERT_TID_MONTHS, color="k", ls="--", lw=1)
    vline.set_gid("five-year-line")
    ax.text(NORMERT_TID_MONTHS, 0.02, " five years\n (normert tid)", transform=ax.get_xaxis_transform(),
            va="bottom", ha="left", fontsize=8)
    ax.set_xlabel("months since the first day of Vg1")
    ax.set_ylabel("share of the cohort completed")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, None)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Cumulative completion by scenario (mean, 95% band over replicates)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def status_stocks(sweep: "Sweep") -> Figure:
    """Share of the focal cohorts in each status at the end of each month, per scenario."""
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    col = colours(sweep.scenarios)
    for ax, status in zip(axes, STATUS_COLUMNS):
        for s in sweep.scenarios:
            months, values = _matrix(sweep.monthly, s, status)
            if values.size == 0:
                continue
            mean, lo, hi = _band(values, 0.0, 1.0)
            (line,) = ax.plot(months + 1, mean, color=col[s], lw=1.5, label=s)
            line.set_gid(gid("stock", status, s))
            ax.fill_between(months + 1, lo, hi, color=col[s], alpha=0.2, lw=0)
        ax.axvline(NORMERT_TID_MONTHS, color="k", ls="--", lw=0.8)
        ax.set_title(STATUS_TITLES[status])
        ax.set_ylim(0, None)
        ax.yaxis.set_major_formatter(_percent())
        ax.grid(alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("months since the first day of Vg1")
    axes[0].legend(fontsize=8)
    fig.suptitle("Status stocks over time (share of the cohort; dashed: five years)")
    return fig


def process_times(sweep: "Sweep") -> Figure:
    """Months from first risk signal to first help, and from dropout to OT contact."""
    fig = Figure(figsize=(10, 0.6 * len(sweep.scenarios) + 2.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    measures = (("months_risk_to_help", "first risk signal -> first help"),
                ("months_dropout_to_ot", "dropout -> OT contact"))
    ok = sweep.ok
    col = colours(sweep.scenarios)

    y = np.arange(len(sweep.scenarios))[::-1]
    for ax, (key, title) in zip(axes, measures):
        for yi, s in zip(y, sweep.scenarios):
            sel = ok[ok["scenario"] == s]
            if f"{key}.mean" not in sel:
                continue
            m, lo, hi, _ = mean_ci(sel[f"{key}.mean"].to_numpy())
            if not math.isfinite(m):
                continue
            err = [[m - lo], [hi - m]] if math.isfinite(lo) else None
            cont = ax.errorbar([m], [yi], xerr=err, fmt="o", color=col[s], capsize=4,
                               label="mean" if yi == y[0] else None)
            cont.lines[0].set_gid(gid("process", key, "mean", s))
            med = float(sel[f"{key}.median"].mean()) if f"{key}.median" in sel else math.nan
            if math.isfinite(med):
                (pt,) = ax.plot([med], [yi], marker="D", mfc="none", color=col[s], ls="none",
                                label="median" if yi == y[0] else None)
                pt.set_gid(gid("process", key, "median", s))
        ax.set_title(title)
        ax.set_xlabel("months")
        ax.set_xlim(0, None)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(y, sweep.scenarios)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Time to help (students' run means; mean and 95% CI over replicates)")
    return fig


def agency_names(monthly: pd.DataFrame) -> list[str]:
    return [c[: -len("_hours_paid")] for c in monthly.columns if c.endswith("_hours_paid")]


def agency_hours(sweep: "Sweep") -> Figure:
    """Per agency and scenario: staff hours used per month against hours paid (dashed; idle hours
    are paid too), and the queue at the end of each month (where time runs out)."""
    names = agency_names(sweep.monthly)
    ncols = max(1, len(names))
    fig = Figure(figsize=(3.4 * ncols, 5.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, ncols, sharex=True, squeeze=False))
    col = colours(sweep.scenarios)
    for j, name in enumerate(names):
        top, bottom = axes[0, j], axes[1, j]
        for s in sweep.scenarios:
            months, used = _matrix(sweep.monthly, s, f"{name}_hours_used", share=False)
            if used.size == 0:
                continue
            _, paid = _matrix(sweep.monthly, s, f"{name}_hours_paid", share=False)
            _, queue = _matrix(sweep.monthly, s, f"{name}_queue", share=False)
            (line,) = top.plot(months + 1, used.mean(axis=0), color=col[s], lw=1.4, label=s)
            line.set_gid(gid("hours", name, s))
            (pline,) = top.plot(months + 1, paid.mean(axis=0), color=col[s], lw=1, ls="--")
            pline.set_gid(gid("paid", name, s))
            (qline,) = bottom.plot(months + 1, queue.mean(axis=0), color=col[s], lw=1.2)
            qline.set_gid(gid("queue", name, s))
        top.set_title(name)
        top.set_ylim(0, None)
        bottom.set_ylim(0, None)
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
    axes[0, 0].set_ylabel("hours per month")
    axes[1, 0].set_ylabel("students waiting")
    if names:
        axes[0, 0].legend(fontsize=7)
    fig.suptitle("Agency hours used (solid) against hours paid (dashed), and queues; mean over replicates")
    fig.supxlabel("months since the first focal cohort's first day of Vg1")
    return fig


def gain_curve(sweep: "Sweep", baseline: str | None, metric: str = "completion_5y") -> Figure | None:
    """When the regime and one numeric key are swept: each regime's paired difference against the
    baseline regime at the same value of the other key, as a curve over that key with 95 %
    intervals (e.g. the co-location gain over ``agencies.staffing_scale``: where co-location pays).
    None otherwise."""
    keys = sweep.scenario_keys
    if len(keys) != 2 or "regime" not in keys:
        return None
    other = keys[1 - keys.index("regime")]
    ok = sweep.ok
    try:
        values = sorted({float(v) for v in ok[other]})
    except (TypeError, ValueError):
        return None
    regimes = list(dict.fromkeys(ok["regime"]))
    base = "siloed" if "siloed" in regimes else regimes[0]
    if baseline:
        base_rows = ok.loc[ok["scenario"] == baseline, "regime"]
        base = base_rows.iloc[0] if len(base_rows) else base
    from .report import pair_columns  # seed, replicate and (when swept) the posterior draw

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    col = colours(regimes)
    for regime in regimes:
        if regime == base:
            continue
        means, los, his = [], [], []
        for v in values:
            at = ok[ok[other].astype(float) == v]
            wide = at.pivot_table(index=pair_columns(at), columns="regime", values=metric, aggfunc="first")
            if regime not in wide or base not in wide:
                means.append(math.nan), los.append(math.nan), his.append(math.nan)
                continue
            m, lo, hi, _ = mean_ci((wide[regime] - wide[base]).dropna().to_numpy())
            means.append(m), los.append(lo), his.append(hi)
        (line,) = ax.plot(values, means, "o-", color=col[regime], label=f"{regime} - {base}")
        line.set_gid(gid("gain", regime))
        ax.fill_between(values, los, his, color=col[regime], alpha=0.2, lw=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel(other)
    share = metric.startswith("completion") or metric.endswith("share")
    ax.set_ylabel(("completion within 60 months" if metric == "completion_5y" else metric) + ", paired difference")
    if share:
        ax.yaxis.set_major_formatter(_percent(decimals=1))
    ax.set_title(f"Gain against {base} at the same {other}\n(paired by replicate, 95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def gains_by_group(gains: pd.DataFrame | None, baseline: str | None) -> Figure | None:
    """Paired gain in completion within 60 months by group (rows) for each scenario against the
    baseline, with 95 % intervals; one panel per grouping. None without a comparison."""
    if gains is None or gains.empty:
        return None
    groupings = list(dict.fromkeys(gains["grouping"]))
    scenarios = list(dict.fromkeys(gains["scenario"]))
    col = colours(scenarios)
    heights = [max(1, gains.loc[gains["grouping"] == g, "group"].nunique()) for g in groupings]
    fig = Figure(figsize=(7.5, 1.2 + 0.32 * sum(heights) * max(1, len(scenarios)) ** 0.5), layout="constrained")
    axes = fig.subplots(len(groupings), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    step = 0.8 / max(1, len(scenarios))
    for ax, grouping in zip(axes, groupings):
        part = gains[gains["grouping"] == grouping]
        groups = list(dict.fromkeys(part["group"]))
        for i, scenario in enumerate(scenarios):
            rows = part[part["scenario"] == scenario].set_index("group").reindex(groups)
            y = np.arange(len(groups)) - 0.4 + step * (i + 0.5)
            err = np.vstack([rows["diff"] - rows["diff_ci_low"], rows["diff_ci_high"] - rows["diff"]])
            cont = ax.errorbar(rows["diff"], y, xerr=np.nan_to_num(err), fmt="o", color=col[scenario], ms=4,
                               capsize=2, label=f"{scenario} - {baseline}" if ax is axes[0] else None)
            cont.lines[0].set_gid(gid("gain_by_group", grouping, scenario))
        ax.set_yticks(np.arange(len(groups)), groups)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_ylabel(grouping)
        ax.grid(alpha=0.3, axis="x")
    axes[-1].xaxis.set_major_formatter(_percent(decimals=1))
    axes[-1].set_xlabel("completion within 60 months, paired difference (95% CI)")
    axes[0].set_title(f"Who gains: difference against {baseline} by group")
    axes[0].legend(fontsize=8, loc="best")
    return fig


def agencies_per_case(sweep: "Sweep") -> Figure | None:
    """Completion, agency hours and meetings of helped students by the number of agencies on the case."""
    ok = sweep.ok
    if "by_agencies_involved.1.completion_5y" not in ok:
        return None

    fig = Figure(figsize=(14, 3.8), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = (("completion_5y", "completion within 60 months", True),
              ("hours", "agency hours per student", False),
              ("meetings", "meetings per student", False),
              ("students", "students helped", False))
    col = colours(sweep.scenarios)
    x = np.arange(len(AGENCY_GROUPS))
    for ax, (key, title, share) in zip(axes, panels):
        for s in sweep.scenarios:
            sel = ok[ok["scenario"] == s]
            stats = [mean_ci(sel[f"by_agencies_involved.{g}.{key}"].to_numpy(dtype=float))
                     if f"by_agencies_involved.{g}.{key}" in sel else (math.nan,) * 3 + (0,) for g in AGENCY_GROUPS]
            m = np.array([t[0] for t in stats])
            lo = np.array([t[1] for t in stats])
            hi = np.array([t[2] for t in stats])
            (line,) = ax.plot(x, m, marker="o", color=col[s], label=s)
            line.set_gid(gid("agencies", key, s))
            good = np.isfinite(lo)
            top = 1.0 if share else np.inf
            ax.fill_between(x[good], np.clip(lo[good], 0, top), np.clip(hi[good], 0, top),
                            color=col[s], alpha=0.2, lw=0)
        ax.set_xticks(x, AGENCY_GROUPS)
        ax.set_xlabel("agencies involved")
        ax.set_title(title)
        if share:
            ax.yaxis.set_major_formatter(_percent())
            ax.set_ylim(0, 1)
        else:
            ax.set_ylim(0, None)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Helped students by number of agencies involved (mean, 95% band over replicates)")
    return fig


def heatmap(sweep: "Sweep", metric: str = "completion_5y") -> Figure | None:
    """``metric`` (mean over replicates) over the two swept keys; None unless exactly two."""
    if len(sweep.scenario_keys) != 2:
        return None
    ky, kx = sweep.scenario_keys
    ok = sweep.ok
    grid = ok.groupby([ky, kx], sort=False)[metric].mean().unstack(kx)
    grid = grid.reindex(index=_ordered(grid.index), columns=_ordered(grid.columns))
    fig = Figure(figsize=(1.3 * grid.shape[1] + 3, 0.8 * grid.shape[0] + 2.2), layout="constrained")
    ax = fig.add_subplot()
    img = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto", origin="lower")
    img.set_gid(gid("heatmap", metric))
    share = metric.startswith("completion") or metric.endswith("share")
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if math.isfinite(v):
            ax.text(j, i, f"{v:.1%}" if share else f"{v:.3g}", ha="center", va="center", fontsize=8,
                    color="w" if v < np.nanmean(grid.to_numpy(dtype=float)) else "k")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    cb = fig.colorbar(img, ax=ax)
    cb.set_label(metric)
    if share:
        cb.ax.yaxis.set_major_formatter(_percent(decimals=1))
    title = "completion within 60 months" if metric == "completion_5y" else metric
    ax.set_title(f"{title}: mean over replicates")
    return fig


def _ordered(values: pd.Index) -> list:
    vals = list(values)
    try:
        return sorted(vals, key=float)
    except (TypeError, ValueError):
        return vals


def _percent(decimals: int = 0):
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=decimals)


def save_figure(fig: Figure, out_dir: Path, name: str) -> dict[str, Path]:
    """Write ``fig`` as ``<name>.png`` and ``<name>.svg`` (atomically; reproducible SVG ids)."""
    from matplotlib import rc_context

    paths = {}
    for fmt in ("png", "svg"):
        path = Path(out_dir) / f"{name}.{fmt}"
        with rc_context({"svg.hashsalt": "dropout_sim"}):
            atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=130, metadata=_metadata(fmt)), mode="wb")
        paths[f"{name}.{fmt}"] = path
    return paths


def _metadata(fmt: str) -> dict:
    return {"Date": None} if fmt == "svg" else {}


def make_figures(sweep: "Sweep", out_dir: Path, metric: str = "completion_5y",
                 baseline: str | None = None,
                 gains: pd.DataFrame | None = None) -> tuple[dict[str, Figure], dict[str, Path]]:
    """Build and write every figure that applies; return ({name: Figure}, {file name: path})."""
    builders = {
        "completion_curves": lambda: completion_curves(sweep),
        "status_stocks": lambda: status_stocks(sweep),
        "process_times": lambda: process_times(sweep),
        "agency_hours": lambda: agency_hours(sweep),
        "agencies_per_case": lambda: agencies_per_case(sweep),
        "heatmap": lambda: heatmap(sweep, metric),
        "gain_curve": lambda: gain_curve(sweep, baseline, metric),
        "gains_by_group": lambda: gains_by_group(gains, baseline),
    }
    figs: dict[str, Figure] = {}
    paths: dict[str, Path] = {}
    for name, build in builders.items():
        fig = build()
        if fig is None:
            continue
        figs[name] = fig
        paths.update(save_figure(fig, out_dir, name))
    return figs, paths
