"""``dropout-sim report <sweep dir>``: every run of a sweep in one tidy table, a summary, figures.

Reads the run folders of a Hydra multirun (any layout: ``<job num>/`` or named by overrides;
found by their ``.hydra/overrides.yaml``, ``summary.json`` or ``failed.json``) and writes into
``<sweep dir>/report/`` (or ``--out``), every file atomically:

``runs.csv`` (or ``.parquet``)
    one row per run: ``run`` (folder), ``status`` (ok, failed, incomplete, missing, extra,
    duplicate), one column per override key (``regime``, ``replicate``,
    ``intervention.risk_threshold`` ...), ``scenario`` (the swept keys except seed and
    replicate), ``seed``, ``replicate``, and every outcome of ``summary.json`` flattened with
    dots (``completion_5y``, ``completion_5y_by_track.vocational``,
    ``months_risk_to_help.mean``, ``agency_hours.ppt.hours_used`` ...). Shares are 0-1,
    durations in months, hours in staff hours over the whole horizon.
``monthly.csv`` (or ``.parquet``)
    the long table: one row per run and model month (0 = first month of Vg1) with the
    run's keys and every monthly column (status counts in students, agency hours per month).
``summary.csv`` / ``summary.txt``
    per scenario: completion within 60 months (mean over replicates, 95 % t-interval), by
    track, and the difference against a baseline scenario paired by replicate (95 %
    t-interval over the paired differences), with the unpaired (Welch) interval beside it.
``gains_by_group.csv``
    when the sweep has more than one scenario: each scenario's paired difference against the
    baseline for every group of the equity outputs (grade-point bands, gender, parents'
    education; completion within 60 months), with 95 % t-intervals over the pairs; also in
    ``summary.txt`` and the figure ``gains_by_group``.
``figures/*.png`` and ``*.svg``
    completion curves, status stocks, process times, agency hours against capacity,
    outcomes by number of agencies per case and, when exactly two keys are swept, a heat map.

Statuses: *missing* = in the sweep definition (``multirun.yaml``) but never started;
*incomplete* = started but no ``summary.json`` (killed or still running); *failed* = has
``failed.json`` (or a record in ``<sweep dir>/.failures/``: its folder was not writable);
*damaged* = a ``summary.json`` that lacks an outcome or holds NaN, or a ``monthly.csv`` that
is not the size the run wrote (:func:`dropout_sim.runs.results.summary_problem`); *extra* = a finished run not in the current sweep definition (left over
from an earlier, different sweep into the same folder); *duplicate* = a second finished run
of the same scenario and replicate. Only *ok* runs enter the statistics, and the report
lists every other run by name instead of silently averaging what is there.

Code: every run records the fingerprint of the code that produced it (``code_fingerprint``
in ``meta``). A sweep whose ok runs come from more than one fingerprint gets a WARNING (old
results mixed with new ones; re-run the sweep to recompute the old ones) and ``--strict``
then exits 1.

Pairing: replicate r of every scenario shares its synthetic cohort and its random draws
(:mod:`dropout_sim.rng`), so the difference between two scenarios is computed per
(seed, replicate) pair; the paired interval is much narrower than the unpaired one.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .intervals import mean_ci, ratio_ci, welch_ci
from ..errors import EXIT_BAD_INPUT, ArgumentParser
from ..runs.results import SUMMARY_FILE, atomic_write, atomic_write_text, read_json, summary_problem
from ..runs.overrides import split_override
from ..runs.sweep import FAILED_FILE, FAILURES_DIR, PROGRESS_DIR, basic_sweeper_jobs, failure_record_path

PAIR_KEYS = ("seed", "replicate")
"""Keys that identify a replicate (paired across scenarios), never a scenario."""
DRAW_KEY = "draw"
"""A posterior draw (``posterior=<name> draw=<k>``): paired across scenarios like a replicate,
never a scenario; when a sweep varies it the summary splits the uncertainty of a difference
into replicate noise and parameter uncertainty (:func:`draw_intervals`)."""
PARAMETER_LEVEL = 0.95
"""Coverage of the parameter-uncertainty interval (quantiles of the per-draw mean differences)."""
DEFAULT_METRIC = "completion_5y"
LIBRARIES = ("python", "numpy", "mesa")
"""Versions (from ``meta.provenance``) that go into the run table; a sweep mixing them is warned about."""
OK = "ok"
RUN_CONFIG = "config.yaml"
SKIP_DIRS = {".hydra", ".submitit", PROGRESS_DIR, FAILURES_DIR, "report"}
META_COLUMNS = {"seed": "seed", "replicate": "replicate", "regime": "regime_name",
                "cohort_size": "cohort_size", "horizon_months": "horizon_months",
                "config_hash": "config_hash", "dropout_sim_version": "dropout_sim_version",
                "code_fingerprint": "code_fingerprint", "git_commit": "git_commit", "job_num": "job_num"}


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------
def pair_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that pair runs across scenarios: seed, replicate and, when swept, draw."""
    return [c for c in (*PAIR_KEYS, DRAW_KEY) if c in runs.columns and runs[c].notna().any()]


def draw_intervals(runs: pd.DataFrame, metric: str, baseline: str, scenario_col: str = "scenario",
                   level: float = PARAMETER_LEVEL) -> pd.DataFrame:
    """Per scenario: the paired difference against ``baseline`` over posterior draws, with two
    intervals side by side (percentage points for shares: the columns are x 100).

    For draw j and replicate r, d_jr = metric(scenario) - metric(baseline) (same draw, same
    replicate: parameters and random numbers shared). ``diff_pp`` = mean over draws of the
    per-draw means. ``diff_replicate_lo/hi``: replicate noise within draws, the 95 % t-interval
    a run of R replicates at one parameter set gives, diff +/- t(df) * s_w / sqrt(R), with s_w
    the pooled within-draw standard deviation of d (df = sum of R_j - 1). ``diff_parameter_lo/hi``:
    parameter uncertainty across draws, the 2.5 and 97.5 % quantiles of the per-draw means
    (they include replicate noise of about s_w / sqrt(R), small when R is large enough).
    """
    from .intervals import t_half_width

    pair_cols = pair_columns(runs)
    wide = runs.pivot_table(index=pair_cols, columns=scenario_col, values=metric, aggfunc="first", observed=True)
    rows = []
    for scenario in runs[scenario_col].drop_duplicates():
        if scenario == baseline or scenario not in wide or baseline not in wide:
            continue
        d = (wide[scenario] - wide[baseline]).dropna().rename("d").reset_index()
        by = d.groupby(DRAW_KEY)["d"]
        means, counts, var = by.mean(), by.count(), by.var(ddof=1)
        dof = int((counts - 1).clip(lower=0).sum())
        diff = float(means.mean()) if len(means) else math.nan
        if dof > 0:
            s_w = math.sqrt(float(((counts - 1) * var.fillna(0)).sum()) / dof)
            half = float(t_half_width(s_w / math.sqrt(float(counts.mean())), dof))
        else:
            half = math.nan
        q = (np.quantile(means.to_numpy(), [(1 - level) / 2, (1 + level) / 2]) if len(means) >= 2
             else (math.nan, math.nan))
        rows.append({scenario_col: scenario, "draws": int(len(means)), "diff_pp": 100 * diff,
                     "diff_replicate_lo": 100 * (diff - half), "diff_replicate_hi": 100 * (diff + half),
                     "diff_parameter_lo": 100 * float(q[0]), "diff_parameter_hi": 100 * float(q[1])})
    return pd.DataFrame(rows, columns=[scenario_col, "draws", "diff_pp", "diff_replicate_lo", "diff_replicate_hi",
                                       "diff_parameter_lo", "diff_parameter_hi"])


def paired_differences(runs: pd.DataFrame, metric: str, baseline: str,
                       scenario_col: str = "scenario", pair_cols: Sequence[str] | None = None) -> pd.DataFrame:
    """Per scenario: ``metric`` minus the baseline's, paired by replicate, with intervals.

    ``runs`` has one row per finished run; runs pair on ``pair_cols`` (default
    :func:`pair_columns`: seed, replicate and, in a sweep over posterior draws, the draw). Returns
    one row per scenario other than the baseline: ``pairs`` (pairs present in both), ``diff`` (mean paired difference),
    ``diff_ci_low``/``diff_ci_high`` (t-interval over the pairs), and the Welch interval of
    the same two sets of runs, unpaired (``unpaired_ci_low``/``unpaired_ci_high``).
    """
    pair_cols = pair_columns(runs) if pair_cols is None else [c for c in pair_cols if c in runs.columns
                                                              and runs[c].notna().any()]
    wide = runs.pivot_table(index=pair_cols, columns=scenario_col, values=metric, aggfunc="first",
                            observed=True)
    rows = []
    for scenario in runs[scenario_col].drop_duplicates():
        if scenario == baseline:
            continue
        both = wide[[baseline, scenario]].dropna() if scenario in wide and baseline in wide else pd.DataFrame()
        d, lo, hi, n = mean_ci((both[scenario] - both[baseline]).to_numpy()) if len(both) else (math.nan,) * 3 + (0,)
        _, ulo, uhi = welch_ci(runs.loc[runs[scenario_col] == scenario, metric],
                               runs.loc[runs[scenario_col] == baseline, metric])
        rows.append({scenario_col: scenario, "pairs": n, "diff": d, "diff_ci_low": lo, "diff_ci_high": hi,
                     "unpaired_ci_low": ulo, "unpaired_ci_high": uhi})
    return pd.DataFrame(rows, columns=[scenario_col, "pairs", "diff", "diff_ci_low", "diff_ci_high",
                                       "unpaired_ci_low", "unpaired_ci_high"])


# --------------------------------------------------------------------------------------
# gathering
# --------------------------------------------------------------------------------------
def _flatten(obj: Any, prefix: str = "", as_table_cell: bool = True) -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": value}``. For a CSV cell (``as_table_cell``) lists become
    ``"x;y"`` and None NaN; otherwise lists stay lists of strings and None stays None."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + ".", as_table_cell))
        elif isinstance(value, (list, tuple)):
            out[name] = ";".join(map(str, value)) if as_table_cell else [str(v) for v in value]
        else:
            out[name] = math.nan if value is None and as_table_cell else value
    return out


def _parse_value(text: str) -> Any:
    """An override value as a number where it is one (``0.35`` -> 0.35), else the text."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value is None:
        return text
    return value


def _job_key(overrides: Sequence[str]) -> frozenset:
    return frozenset(f"{k}={v}" for k, v in map(split_override, overrides))


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Run folders under ``sweep_dir``: those with ``.hydra/overrides.yaml`` (a Hydra job), a
    ``config.yaml`` (the first file a run writes), a summary or a failure."""
    found = []
    for root, dirs, files in os.walk(sweep_dir):
        here = Path(root)
        dirs[:] = sorted((d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")), key=_natural)
        if (SUMMARY_FILE in files or FAILED_FILE in files or RUN_CONFIG in files
                or (here / ".hydra" / "overrides.yaml").is_file()):
            found.append(here)
            dirs[:] = []  # runs do not nest
    return found


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _read_yaml_list(path: Path) -> list[str] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return [str(x) for x in data] if isinstance(data, list) else None


def expected_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """Every job's overrides as defined by the sweep's ``multirun.yaml`` (basic sweeper only)."""
    from omegaconf import OmegaConf

    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        cfg = OmegaConf.load(path)
        task = [str(x) for x in OmegaConf.select(cfg, "hydra.overrides.task", default=[])]
        return basic_sweeper_jobs(cfg.hydra, task)
    except Exception:  # noqa: BLE001 - an unreadable definition only costs the missing-run check
        return None


@dataclass
class Sweep:
    """A gathered sweep: the tidy run table, the long monthly table and what was swept."""

    sweep_dir: Path
    runs: pd.DataFrame
    monthly: pd.DataFrame
    keys: list[str]
    """Override keys (columns of ``runs``), in sweep order."""
    scenario_keys: list[str]
    """Keys whose values differ between runs, except seed and replicate."""
    scenarios: list[str]
    """Scenario labels in sweep order."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Problems that make the numbers doubtful (mixed code fingerprints); ``--strict`` fails on them."""

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == OK]

    @property
    def problems(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != OK]


def _scenario_labels(df: pd.DataFrame, scenario_keys: list[str]) -> pd.Series:
    if not scenario_keys:
        return pd.Series("all runs", index=df.index)
    if len(scenario_keys) == 1:
        return df[scenario_keys[0]].map(_fmt_value)
    names = short_names(scenario_keys)
    return df[scenario_keys].apply(lambda r: " ".join(f"{n}={_fmt_value(v)}" for n, v in zip(names, r)), axis=1)


def short_names(keys: Sequence[str]) -> list[str]:
    """The shortest dotted suffix of each key that no other key ends with
    (``agencies.ppt.posts_per_1000`` -> ``ppt.posts_per_1000`` next to ``agencies.health...``)."""
    out = []
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        out.append(suffix)
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return f"{v:g}"
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def gather(sweep_dir: str | Path) -> Sweep:
    """Read every run folder of ``sweep_dir`` into the run table and the monthly long table."""
    sweep_dir = Path(sweep_dir)
    rows: list[dict[str, Any]] = []
    monthly_parts: dict[int, pd.DataFrame] = {}
    key_order: list[str] = []

    def add_keys(overrides: Sequence[str]) -> None:
        for k, _ in map(split_override, overrides):
            if k not in key_order:
                key_order.append(k)

    expected = expected_jobs(sweep_dir)
    if expected:
        for job in expected:
            add_keys(job)
    found_keys: set[frozenset] = set()

    for run_dir in find_run_dirs(sweep_dir):
        summary = read_json(run_dir / SUMMARY_FILE)
        failure = read_json(run_dir / FAILED_FILE) if summary is None else None
        elsewhere = read_json(failure_record_path(sweep_dir, run_dir))
        if isinstance(elsewhere, dict):  # the run's folder was not writable: whatever it holds is old
            summary, failure = None, elsewhere
        damage = summary_problem(summary, run_dir) if summary is not None else None
        if damage is not None and not isinstance(summary, dict):
            summary, failure = None, None
        meta = (summary or {}).get("meta", {})
        meta = meta if isinstance(meta, dict) else {}
        overrides = _read_yaml_list(run_dir / ".hydra" / "overrides.yaml")
        if overrides is None:
            overrides = list(meta.get("overrides") or (failure or {}).get("overrides") or [])
        add_keys(overrides)
        row: dict[str, Any] = {"run": str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else ".",
                               "status": OK if summary is not None else ("failed" if failure else "incomplete")}
        row.update({k: _parse_value(v) for k, v in map(split_override, overrides)})
        if damage is not None:
            row["status"] = "damaged"
            row["error"] = damage
            row.update({col: meta.get(key) for key, col in META_COLUMNS.items() if key in meta})
        elif summary is not None:
            row.update({col: meta.get(key) for key, col in META_COLUMNS.items() if key in meta})
            prov = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else {}
            row.update({f"{lib}_version": prov[lib] for lib in LIBRARIES if prov.get(lib)})
            row.update(_flatten({k: v for k, v in summary.items() if k != "meta"}))
            try:
                monthly_parts[len(rows)] = pd.read_csv(run_dir / "monthly.csv")
                expected_rows = (meta.get("files") or {}).get("monthly.csv", {}).get("rows")
                if expected_rows is not None and len(monthly_parts[len(rows)]) != expected_rows:
                    del monthly_parts[len(rows)]
                    row["status"] = "damaged"
                    row["error"] = f"monthly.csv has fewer rows than the run wrote ({expected_rows})"
            except (OSError, ValueError, pd.errors.EmptyDataError) as exc:
                row["status"] = "damaged"
                row["error"] = f"monthly.csv unreadable: {exc}"
        elif failure is not None:
            row["error"] = f"{failure.get('error')}: {failure.get('message')}"
            for k in PAIR_KEYS:
                if failure.get(k) is not None:
                    row[k] = failure[k]
        else:
            row["error"] = "no summary.json (killed or still running)"
        row["_key"] = _job_key(overrides)
        found_keys.add(row["_key"])
        rows.append(row)

    notes = []
    job_keys = [_job_key(job) for job in expected or []]
    if expected is not None:
        expected_keys = set(job_keys)
        for row in rows:
            if row["_key"] not in expected_keys and row["status"] == OK:
                row["status"] = "extra"
                row["error"] = "not in the current sweep definition (multirun.yaml)"
        for job, key in zip(expected, job_keys):
            if key not in found_keys:
                rows.append({"run": "", "status": "missing", "error": "never started",
                             **{k: _parse_value(v) for k, v in map(split_override, job)}, "_key": key})
    else:
        notes.append("no multirun.yaml with a basic sweeper: runs that never started cannot be listed")

    if not rows:
        raise FileNotFoundError(f"no run folders under {sweep_dir}")
    # sweep order (the job list) where known, so scenarios appear in the order they were swept
    position = {key: i for i, key in enumerate(job_keys)}
    order = sorted(range(len(rows)), key=lambda i: (position.get(rows[i]["_key"], len(position)),
                                                     _natural(rows[i]["run"])))
    new_index = {old: new for new, old in enumerate(order)}
    monthly_parts = {new_index[i]: frame for i, frame in monthly_parts.items()}
    runs = pd.DataFrame([rows[i] for i in order])
    for k in PAIR_KEYS:  # a replicate not overridden is the config default: take it from the summary
        if k not in runs:
            runs[k] = math.nan
    if "job_num" not in runs:
        runs["job_num"] = math.nan

    scenario_keys = [k for k in key_order if k not in PAIR_KEYS and k != DRAW_KEY and k in runs
                     and runs[k].map(_fmt_value).nunique(dropna=False) > 1]
    runs["scenario"] = _scenario_labels(runs, scenario_keys)
    scenarios = list(dict.fromkeys(runs["scenario"]))

    # a second finished run of the same scenario and replicate would be counted twice
    if "error" not in runs:
        runs["error"] = ""
    runs["error"] = runs["error"].fillna("").astype(str)
    ok = runs["status"] == OK
    dup = runs[ok].duplicated(subset=["scenario", *pair_columns(runs)], keep="first")
    for i in dup[dup].index:
        runs.loc[i, "status"] = "duplicate"
        runs.loc[i, "error"] = "same scenario and replicate as another run"

    runs = runs.drop(columns="_key")
    lead = ["run", "status", "scenario", *key_order, *[k for k in PAIR_KEYS if k not in key_order]]
    runs = runs[lead + [c for c in runs.columns if c not in lead]]

    parts = []
    id_cols = ["run", "scenario", *scenario_keys, *PAIR_KEYS, *([DRAW_KEY] if DRAW_KEY in runs else [])]
    for i, frame in monthly_parts.items():
        if runs.at[i, "status"] != OK:
            continue
        ids = runs.loc[i, id_cols]
        frame = frame.copy()
        for col in reversed(id_cols):
            frame.insert(0, col, ids[col])
        frame.insert(len(id_cols), "students", runs.at[i, "students"])
        parts.append(frame)
    monthly = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=id_cols)
    warnings = []
    if "code_fingerprint" in runs:
        prints = runs.loc[runs["status"] == OK, "code_fingerprint"].fillna("(none: older code)")
        if prints.nunique() > 1:
            counts = ", ".join(f"{fp} ({n} runs)" for fp, n in prints.value_counts().items())
            warnings.append(f"the ok runs were computed by {prints.nunique()} different versions of the code "
                            f"(code_fingerprint {counts}); re-run the sweep to recompute the older ones")
    for lib in LIBRARIES:
        col = f"{lib}_version"
        if col in runs:
            versions = runs.loc[runs["status"] == OK, col].dropna()
            if versions.nunique() > 1:
                counts = ", ".join(f"{v} ({n} runs)" for v, n in versions.value_counts().items())
                warnings.append(f"the ok runs were computed with {versions.nunique()} {lib} versions ({counts}); "
                                "draws may differ between versions: re-run with DROPOUT_SIM_RESUME=0")
    for scenario in scenarios:
        if not ((runs["scenario"] == scenario) & (runs["status"] == OK)).any():
            notes.append(f"scenario {scenario!r} has no finished runs (see the list above)")
    return Sweep(sweep_dir, runs, monthly, key_order, scenario_keys, scenarios, notes, warnings)


# --------------------------------------------------------------------------------------
# the summary table
# --------------------------------------------------------------------------------------
def choose_baseline(sweep: Sweep, requested: str | None) -> str:
    """The baseline scenario: ``requested`` (a label, a value, or ``key=value`` tokens), else
    ``regime=siloed`` when it was swept, else the first scenario of the sweep."""
    scenarios = sweep.scenarios
    if requested:
        if requested in scenarios:
            return requested
        tokens = dict(split_override(t) for t in requested.replace(",", " ").split() if "=" in t)
        if tokens:
            ok = sweep.runs
            mask = pd.Series(True, index=ok.index)
            for k, v in tokens.items():
                col = k if k in ok else next((c for c in sweep.scenario_keys if c.endswith("." + k)), None)
                if col is None:
                    raise ValueError(f"--baseline: {k!r} is not a swept key; swept: {', '.join(sweep.scenario_keys)}")
                mask &= ok[col].map(_fmt_value) == _fmt_value(_parse_value(v))
            matches = list(dict.fromkeys(ok.loc[mask, "scenario"]))
            if len(matches) == 1:
                return matches[0]
        raise ValueError(f"--baseline {requested!r} matches no single scenario; scenarios: {', '.join(scenarios)}")
    if "regime" in sweep.scenario_keys:
        # the first scenario whose regime is siloed (with finished runs if any has them), also when
        # other keys are swept too and labels read "regime=siloed x=1"
        siloed = sweep.runs[sweep.runs["regime"].map(_fmt_value) == "siloed"]
        for frame in (siloed[siloed["status"] == OK], siloed):
            if len(frame):
                return frame["scenario"].iloc[0]
    with_runs = [sc for sc in scenarios if (sweep.ok["scenario"] == sc).any()]
    return (with_runs or scenarios)[0]


def summarise(sweep: Sweep, metric: str = DEFAULT_METRIC, baseline: str | None = None) -> pd.DataFrame:
    """One row per scenario: runs, ``metric`` with its 95 % interval, by track, the paired
    difference against ``baseline`` and staff hours per extra completer."""
    ok = sweep.ok
    if len(ok) and (metric not in ok or not pd.api.types.is_numeric_dtype(ok[metric])):
        numeric = [c for c in ok.columns if pd.api.types.is_numeric_dtype(ok[c])] if len(ok) else []
        what = "is not an outcome column" if metric not in ok else "is not a numeric outcome"
        raise ValueError(f"--metric {metric!r} {what}; allowed: a numeric column of runs.csv, e.g. completion_5y, "
                         "completion_5y_by_track.vocational, months_risk_to_help.mean"
                         + (f" ({len(numeric)} in this sweep)" if numeric else ""))
    if metric not in ok:
        ok = ok.assign(**{metric: math.nan})
    base = choose_baseline(sweep, baseline)
    diffs = (paired_differences(ok, metric, base, pair_cols=pair_columns(ok)).set_index("scenario")
             if len(ok) else pd.DataFrame())
    by_draw = (draw_intervals(ok, metric, base).set_index("scenario")
               if DRAW_KEY in ok and ok[DRAW_KEY].nunique() > 1 else pd.DataFrame())
    rows = []
    for scenario in sweep.scenarios:
        sel = ok[ok["scenario"] == scenario]
        bad = sweep.problems[sweep.problems["scenario"] == scenario]
        m, lo, hi, n = mean_ci(sel[metric].to_numpy())
        row = {"scenario": scenario, "baseline": scenario == base, "runs": n, "not_ok": len(bad),
               "metric": metric, "mean": m, "ci_low": lo, "ci_high": hi}
        for extra in ("completion_5y_by_track.academic", "completion_5y_by_track.vocational",
                      "months_risk_to_help.mean", "months_dropout_to_ot.mean", "at_risk_never_helped_share",
                      "total_agency_hours"):
            if extra in sel:
                row[extra] = float(sel[extra].mean()) if len(sel) else math.nan
        if scenario in getattr(diffs, "index", []):
            row.update(diffs.loc[scenario].to_dict())
            row["hours_per_extra_completer"] = _hours_per_extra_completer(ok, scenario, base)
            row.update(cost_per_extra_completer(ok, scenario, base))
        if scenario in getattr(by_draw, "index", []):
            row.update(by_draw.loc[scenario].to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


EQUITY_GROUPS = (("grade points", "completion_5y_by_grade_points."), ("gender", "completion_5y_by_gender."),
                 ("parents' education", "completion_5y_by_parents_education."))
"""Groupings of the equity outputs: (title, summary.json prefix of their columns)."""
GAIN_COLUMNS = ["scenario", "grouping", "group", "column", "baseline_mean", "pairs", "diff", "diff_ci_low",
                "diff_ci_high"]


def gains_by_group(sweep: Sweep, baseline: str) -> pd.DataFrame:
    """Each scenario's gain against ``baseline`` within every equity group (completion within 60
    months of the group), paired by replicate, with the 95 % t-interval over the pairs: who
    benefits from a policy (the bottom grade-point bands, boys, children of parents with
    compulsory schooling ...). Empty when there is one scenario."""
    ok = sweep.ok
    rows = []
    if len(sweep.scenarios) < 2 or not len(ok):
        return pd.DataFrame(rows, columns=GAIN_COLUMNS)
    for grouping, prefix in EQUITY_GROUPS:
        for column in [c for c in ok.columns if c.startswith(prefix)]:
            base_mean = float(ok.loc[ok["scenario"] == baseline, column].mean())
            diffs = paired_differences(ok, column, baseline)
            for _, d in diffs.iterrows():
                rows.append({"scenario": d["scenario"], "grouping": grouping, "group": column[len(prefix):],
                             "column": column, "baseline_mean": base_mean, "pairs": int(d["pairs"]),
                             "diff": d["diff"], "diff_ci_low": d["diff_ci_low"], "diff_ci_high": d["diff_ci_high"]})
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def format_gains(gains: pd.DataFrame, baseline: str) -> str:
    """The gains-by-group section of summary.txt (percentage points, paired 95 % CI)."""
    if gains.empty:
        return ""
    out = [f"Gains by group against {baseline}: completion within 60 months, percentage points, "
           "paired by replicate [95% CI]"]
    for scenario, rows in gains.groupby("scenario", sort=False):
        out.append(f"  {scenario}:")
        for grouping, part in rows.groupby("grouping", sort=False):
            cells = [f"{r['group']} {_pct(r['diff'], True)} [{_pct(r['diff_ci_low'], True)}, "
                     f"{_pct(r['diff_ci_high'], True)}]" for _, r in part.iterrows()]
            out.append(f"    {grouping}: " + "; ".join(cells))
    return "\n".join(out)


COST_COLUMNS = ("extra_nok_per_year", "extra_completers_per_cohort", "nok_per_extra_completer",
                "nok_per_extra_completer_ci_low", "nok_per_extra_completer_ci_high", "break_even_nok",
                "value_per_completer_nok", "benefit_cost_ratio")
"""Columns of :func:`cost_per_extra_completer` (NOK; completers per entry cohort)."""


def cost_ratio(extra_nok: Sequence[float], extra_completers: Sequence[float],
               value_per_completer: float | None = None) -> dict[str, float]:
    """NOK per extra completer from paired per-replicate differences (brief section 10).

    ``extra_nok``: scenario minus baseline NOK paid per year (posts of every agency, idle hours
    included, and the elevtjeneste's premises); ``extra_completers``: scenario minus baseline
    completers within 60 months per entry cohort. In a county a new cohort enters every year,
    so one year's extra cost buys one cohort's extra completers (steady state).

    * ``nok_per_extra_completer`` = mean extra NOK / mean extra completers, with Fieller's 95 %
      interval over the replicate pairs (NaN bounds when the gain is not clearly positive);
      NaN when the scenario gains no completers.
    * ``break_even_nok``: the value of one completer at which the scenario pays for itself
      (0 when it also saves money: it dominates; NaN when it gains no completers).
    * ``benefit_cost_ratio`` = value x extra completers / extra NOK, only where
      ``value_per_completer`` is set and the scenario costs more.
    """
    ratio, lo, hi, _ = ratio_ci(extra_nok, extra_completers)
    d_nok = float(np.mean(extra_nok)) if len(extra_nok) else math.nan
    d_done = float(np.mean(extra_completers)) if len(extra_completers) else math.nan
    gains = math.isfinite(d_done) and d_done > 0
    value = math.nan if value_per_completer is None or not math.isfinite(value_per_completer) \
        else float(value_per_completer)
    bcr = value * d_done / d_nok if gains and math.isfinite(value) and d_nok > 0 else math.nan
    return {"extra_nok_per_year": d_nok, "extra_completers_per_cohort": d_done,
            "nok_per_extra_completer": ratio if gains else math.nan,
            "nok_per_extra_completer_ci_low": lo if gains else math.nan,
            "nok_per_extra_completer_ci_high": hi if gains else math.nan,
            "break_even_nok": max(0.0, ratio) if gains else math.nan,
            "value_per_completer_nok": value, "benefit_cost_ratio": bcr}


def cost_per_extra_completer(ok: pd.DataFrame, scenario: str, base: str) -> dict[str, float]:
    """:func:`cost_ratio` of ``scenario`` against ``base`` from the run table (paired by replicate)."""
    cols = ["costs.nok_per_year", "completed_5y_per_cohort"]
    if any(c not in ok for c in cols):
        return {k: math.nan for k in COST_COLUMNS}
    a = ok[ok["scenario"] == scenario].set_index(list(PAIR_KEYS))[cols]
    b = ok[ok["scenario"] == base].set_index(list(PAIR_KEYS))[cols]
    d = (a - b).dropna()
    value = None
    if "costs.value_per_completer_nok" in ok:
        values = ok.loc[ok["scenario"] == scenario, "costs.value_per_completer_nok"].dropna()
        value = float(values.iloc[0]) if len(values) else None
    return cost_ratio(d[cols[0]].to_numpy(), d[cols[1]].to_numpy(), value)


def _nok(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:,.0f}"


def format_costs(table: pd.DataFrame) -> list[str]:
    """Lines of the cost block: NOK per extra completer against the baseline, break-even value,
    benefit-cost ratio where a value per completer is set."""
    if "nok_per_extra_completer" not in table or table["baseline"].all():
        return []
    base = table.loc[table["baseline"], "scenario"].iloc[0]
    header = ["scenario", "extra NOK/year", "extra completers/cohort", "NOK per extra completer [95% CI]",
              "break-even NOK"]
    has_value = "benefit_cost_ratio" in table and table["benefit_cost_ratio"].notna().any()
    if has_value:
        header.append("benefit-cost ratio")
    lines = []
    for _, r in table[~table["baseline"]].iterrows():
        per = r.get("nok_per_extra_completer", math.nan)
        lo, hi = r.get("nok_per_extra_completer_ci_low", math.nan), r.get("nok_per_extra_completer_ci_high", math.nan)
        if math.isfinite(per):
            ci = f"[{_nok(lo)}, {_nok(hi)}]" if math.isfinite(lo) else "[no finite bound: gain not clearly > 0]"
            cell = f"{_nok(per)} {ci}"
        else:
            cell = "no extra completers"
        extra = r.get("extra_completers_per_cohort", math.nan)
        cells = [str(r["scenario"]), f"{r.get('extra_nok_per_year', math.nan):+,.0f}",
                 "-" if not math.isfinite(extra) else f"{extra:+.1f}", cell, _nok(r.get("break_even_nok", math.nan))]
        if has_value:
            bcr = r.get("benefit_cost_ratio", math.nan)
            cells.append("-" if not math.isfinite(bcr) else f"{bcr:.2f}")
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    out = ["", f"Costs against {base} (NOK paid per year: posts incl. idle hours, elevtjeneste premises):",
           "  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    out.append("One year's extra cost over one entry cohort's extra completers within 60 months (steady state); "
               "Fieller interval over the paired replicates. Break-even: the value of a completer at which the "
               "scenario pays for itself" + ("; benefit-cost ratio at costs.value_per_completer_nok." if has_value
                                             else " (set costs.value_per_completer_nok for a benefit-cost ratio)."))
    return out


def _hours_per_extra_completer(ok: pd.DataFrame, scenario: str, base: str) -> float:
    """Mean paired extra staff hours / mean paired extra completers within 60 months."""
    if "total_agency_hours" not in ok or "completed_5y" not in ok:
        return math.nan
    cols = ["total_agency_hours", "completed_5y"]
    keys = pair_columns(ok)
    a = ok[ok["scenario"] == scenario].set_index(keys)[cols]
    b = ok[ok["scenario"] == base].set_index(keys)[cols]
    d = (a - b).dropna()
    if d.empty or d["completed_5y"].mean() <= 0:
        return math.nan
    return float(d["total_agency_hours"].mean() / d["completed_5y"].mean())


def _count(x: Any) -> str:
    return str(int(x)) if isinstance(x, (int, float)) and math.isfinite(x) else "0"


def _pct(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}"


def format_summary(sweep: Sweep, table: pd.DataFrame) -> str:
    """The printed summary: scenarios, completion with intervals, paired differences, problems."""
    metric = table["metric"].iloc[0]
    is_share = metric.startswith("completion") or metric.endswith("share")
    base = table.loc[table["baseline"], "scenario"].iloc[0]

    def fmt(v: float, signed: bool = False) -> str:
        if is_share:
            return _pct(v, signed)
        return "-" if not math.isfinite(v) else (f"{v:+.2f}" if signed else f"{v:.2f}")

    unit = " (%)" if is_share else ""
    title = ("Completion within 60 months" if metric == "completion_5y" else metric) + unit
    header = ["scenario", "runs", f"{title} [95% CI]"]
    has_track = "completion_5y_by_track.academic" in table and metric == "completion_5y"
    if has_track:
        header += ["academic", "vocational"]
    compare = len(table) > 1
    if compare:
        header += [f"vs {base}, paired [95% CI]", "pairs", "unpaired 95% CI"]
    two = compare and "diff_parameter_lo" in table
    if two:
        header += ["draws", "diff (pp)", "replicate noise", "parameter uncertainty"]
    lines = []
    for _, r in table.iterrows():
        cells = [str(r["scenario"]), f"{r['runs']}" + (f" (+{r['not_ok']} not ok)" if r["not_ok"] else ""),
                 f"{fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"]
        if has_track:
            cells += [fmt(r["completion_5y_by_track.academic"]), fmt(r["completion_5y_by_track.vocational"])]
        if not compare:
            pass
        elif r["baseline"]:
            cells += ["baseline", "", ""]
        else:
            cells += [f"{fmt(r.get('diff', math.nan), True)} [{fmt(r.get('diff_ci_low', math.nan), True)}, "
                      f"{fmt(r.get('diff_ci_high', math.nan), True)}]",
                      f"{_count(r.get('pairs'))}",
                      f"[{fmt(r.get('unpaired_ci_low', math.nan), True)}, {fmt(r.get('unpaired_ci_high', math.nan), True)}]"]
        if two and r["baseline"]:
            cells += ["", "", "", ""]
        elif two:
            def pp(v: float) -> str:
                return "-" if not math.isfinite(v) else f"{v:+.2f}"
            cells += [f"{int(r.get('draws', 0) or 0)}", pp(r.get("diff_pp", math.nan)),
                      f"[{pp(r.get('diff_replicate_lo', math.nan))}, {pp(r.get('diff_replicate_hi', math.nan))}]",
                      f"[{pp(r.get('diff_parameter_lo', math.nan))}, {pp(r.get('diff_parameter_hi', math.nan))}]"]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    pp = " (percentage points)" if is_share else ""
    out.append("Mean over replicates; 95% t-intervals." + (
        f" Differences{pp} are paired by replicate (same cohort and random draws in every scenario)."
        if compare else ""))
    if two:
        out.append("Over posterior draws (the same draw in every scenario): diff = mean of the per-draw paired "
                   "differences; replicate noise = 95% t-interval of R replicates at one parameter set (pooled "
                   "within draws); parameter uncertainty = 2.5-97.5% quantiles of the per-draw mean differences.")
    if metric == DEFAULT_METRIC:
        out += format_costs(table)
    problems = sweep.problems
    n_total = len(sweep.runs)
    for warning in sweep.warnings:
        out.append("")
        out.append(f"WARNING: {warning}")
    if len(problems):
        out.append("")
        out.append(f"WARNING: {len(problems)} of {n_total} runs are NOT in these numbers:")
        for _, r in problems.iterrows():
            over = " ".join(f"{k}={_fmt_value(r[k])}" for k in sweep.keys if k in r and _fmt_value(r[k]) != "")
            # job-number folders need their name; override-named folders repeat the overrides
            where = f"{r['run']}: " if r["run"] and "=" not in str(r["run"]) else ""
            out.append(f"  {r['status']:<10} {where}{over} - {r.get('error', '')}")
    for note in sweep.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def write_table(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write ``df`` atomically as CSV or Parquet (``path`` gets the matching suffix)."""
    path = Path(path).with_suffix(f".{fmt}")
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(path, lambda fh: fh.write(buf.getvalue()), mode="wb")
    else:
        atomic_write_text(path, df.to_csv(index=False))
    return path


def build_report(sweep_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "csv",
                 baseline: str | None = None, metric: str = DEFAULT_METRIC,
                 figures: bool = True) -> dict[str, Any]:
    """Gather ``sweep_dir``, write tables, summary and figures; return what was written.

    Returns ``{"sweep", "summary" (DataFrame), "text", "files" {name: path}, "figures"
    {name: Figure}}``.
    """
    sweep = gather(sweep_dir)
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "report"
    files: dict[str, Path] = {}
    table = summarise(sweep, metric, baseline)
    text = format_summary(sweep, table)
    base = table.loc[table["baseline"], "scenario"].iloc[0] if len(table) else None
    gains = gains_by_group(sweep, base) if base is not None else pd.DataFrame(columns=GAIN_COLUMNS)
    if not gains.empty:
        text += "\n\n" + format_gains(gains, base)
        files["gains_by_group"] = write_table(gains, out / "gains_by_group", "csv")
    files["runs"] = write_table(sweep.runs, out / "runs", fmt)
    files["monthly"] = write_table(sweep.monthly, out / "monthly", fmt)
    files["summary"] = write_table(table, out / "summary", "csv")
    atomic_write_text(out / "summary.txt", text + "\n")
    files["summary_text"] = out / "summary.txt"
    figs: dict[str, Any] = {}
    if figures and len(sweep.ok):
        from .figures import make_figures

        base = table.loc[table["baseline"], "scenario"].iloc[0]
        figs, paths = make_figures(sweep, out / "figures", metric=metric, baseline=base, gains=gains)
        files.update(paths)
    return {"sweep": sweep, "summary": table, "gains_by_group": gains, "text": text, "files": files,
            "figures": figs}


def main(argv: list[str] | None = None) -> int:
    """``dropout-sim report <sweep dir>``; exit 0, 1 with ``--strict`` if runs are not ok, 2 on errors."""
    parser = ArgumentParser(
        prog="dropout-sim report",
        description="Gather a sweep folder (dropout-sim -m ...) into one tidy run table, the long "
                    "monthly table, a summary with paired differences, and figures.")
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <sweep_dir>/report)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="format of runs and monthly tables (parquet needs pyarrow)")
    parser.add_argument("--baseline", default=None,
                        help="scenario to compare against: a label (siloed) or key=value tokens "
                             "(default: regime siloed if swept, else the first scenario)")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="outcome column of the summary (default completion_5y)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if any run is missing, failed, incomplete or damaged, or the runs mix code versions")
    parser.add_argument("--store", type=Path, default=None,
                        help="also append the tables to this results store (partitioned Parquet; query with "
                             "dropout-sim query; needs the store extra)")
    args = parser.parse_args(argv)

    if not args.sweep_dir.is_dir():
        print(f"dropout-sim report: error: {args.sweep_dir} is not a folder", file=sys.stderr)
        return 2
    if args.format == "parquet" or args.store is not None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            what = "--store" if args.store is not None else "--format parquet"
            print(f"dropout-sim report: error: {what} needs pyarrow (pip install 'dropout_sim[store]')",
                  file=sys.stderr)
            return 2
    if args.store is not None and args.store.exists() and not args.store.is_dir():
        print(f"dropout-sim report: error: --store {args.store} is not a folder", file=sys.stderr)
        return 2
    try:
        result = build_report(args.sweep_dir, args.out, args.format, args.baseline, args.metric,
                              figures=not args.no_figures)
    except (FileNotFoundError, ValueError) as exc:
        print(f"dropout-sim report: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PermissionError as exc:
        where = exc.filename or args.out or args.sweep_dir / "report"
        print(f"dropout-sim report: error: cannot write {where}: permission denied; allowed: a writable "
              "output folder (--out DIR)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"dropout-sim report: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    sweep, files = result["sweep"], result["files"]
    print(result["text"])
    print()
    print(f"runs table ({len(sweep.runs)} rows): {files['runs']}")
    print(f"monthly table ({len(sweep.monthly)} rows): {files['monthly']}")
    print(f"summary: {files['summary']}")
    if args.store is not None:
        from .store import append, sweep_id

        append(args.store, sweep, result["summary"])
        print(f"results store: {args.store} (sweep_id {sweep_id(args.sweep_dir)}; dropout-sim query --store "
              f"{args.store} \"SELECT ...\")")
    if "completion_curves.png" in files:
        print(f"figures: {files['completion_curves.png'].parent}")
        print(f"completion curves: {files['completion_curves.png']}")
    return 1 if args.strict and (len(sweep.problems) or sweep.warnings) else 0
