"""``dropout-sim report`` on a small real sweep: the tidy tables, the summary and the figures.

One sweep (2 screening starts x 2 regimes x 3 paired replicates, 300 students, 60 months) is
run once as a subprocess; the report is built in-process so the tests can look at the
numbers and at the matplotlib figures behind the written files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dropout_sim.calendar import NORMERT_TID_MONTHS
from dropout_sim.analysis.figures import STATUS_COLUMNS, gid
from dropout_sim.analysis.report import build_report, gather, main as report_main
from dropout_sim.runs.results import SUMMARY_FILE
from dropout_sim.runs.sweep import FAILED_FILE, dropout_sim_command



def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}

KEYS = ("intervention.screening_start_month", "regime")
SCENARIOS = ["screening_start_month=0 regime=siloed", "screening_start_month=0 regime=colocated",
             "screening_start_month=8 regime=siloed", "screening_start_month=8 regime=colocated"]
BASELINE = "screening_start_month=8 regime=siloed"
AGENCIES = ("school", "health", "ppt", "nav", "ot")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("report") / "sweep"
    proc = subprocess.run([*dropout_sim_command(), "-m", "intervention.screening_start_month=0,8",
                           "regime=siloed,colocated", "replicate=0,1,2", "cohort.size=300", "horizon_months=60",
                           "county.warmup_years=2",
                           "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={d}",
                           # job-number folders (0/ ... 11/): the report reads any layout
                           "hydra.sweep.subdir=${hydra.job.num}"],
                          cwd=d.parent, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d


@pytest.fixture(scope="module")
def report(sweep_dir) -> dict:
    return build_report(sweep_dir, baseline="screening_start_month=8 regime=siloed")


def _summaries(sweep_dir: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(sweep_dir)): json.loads(p.read_text()) for p in sweep_dir.rglob(SUMMARY_FILE)}


def test_runs_table_has_one_row_per_run_with_swept_keys_and_outcomes(sweep_dir, report):
    runs = pd.read_csv(report["files"]["runs"], dtype={"run": str})
    assert len(runs) == 12 and set(runs["status"]) == {"ok"}
    for col in ("run", "scenario", *KEYS, "seed", "replicate", "config_hash", "completion_5y",
                "completion_5y_by_track.vocational", "months_risk_to_help.mean", "agency_hours.ppt.hours_used"):
        assert col in runs.columns, col
    assert list(dict.fromkeys(runs["scenario"])) == SCENARIOS, "scenarios in sweep order"
    for run, summary in _summaries(sweep_dir).items():
        row = runs[runs["run"] == run].iloc[0]
        assert row["completion_5y"] == pytest.approx(summary["completion_5y"])
        assert row["agency_hours.nav.hours_paid"] == pytest.approx(summary["agency_hours"]["nav"]["hours_paid"])
        assert row["replicate"] == summary["meta"]["replicate"]
    assert all(sorted(reps) == [0, 1, 2] for reps in runs.groupby("scenario")["replicate"].apply(list))


def test_monthly_long_table(report):
    monthly = pd.read_csv(report["files"]["monthly"])
    assert len(monthly) == 12 * 60
    assert {"run", "scenario", *KEYS, "replicate", "month", "in_school", "completed", "focal_completed",
            "ppt_hours_used", "ppt_hours_paid"} <= set(monthly.columns)
    assert (monthly.groupby("run")["month"].agg(["min", "max", "count"]).to_numpy() == [0, 59, 60]).all()
    stocks = monthly[list(STATUS_COLUMNS)].sum(axis=1)
    assert (stocks == monthly["students"]).all(), "the focal stocks add up to the focal cohort every month"
    assert (monthly["in_school"] >= monthly["focal_in_school"]).all()   # the county holds other year groups


def test_summary_intervals_and_paired_difference_against_the_chosen_baseline(report):
    runs = report["sweep"].ok
    table = pd.read_csv(report["files"]["summary"]).set_index("scenario")
    assert list(table.index) == SCENARIOS
    assert table["baseline"].sum() == 1 and table.loc[BASELINE, "baseline"]
    for scenario in SCENARIOS:
        x = runs.loc[runs["scenario"] == scenario, "completion_5y"].to_numpy()
        row = table.loc[scenario]
        assert row["runs"] == 3
        assert row["mean"] == pytest.approx(x.mean())
        assert row["ci_low"] < row["mean"] < row["ci_high"] or x.std() == 0
        if scenario != BASELINE:
            base = runs[runs["scenario"] == BASELINE].set_index("replicate")["completion_5y"]
            this = runs[runs["scenario"] == scenario].set_index("replicate")["completion_5y"]
            assert row["pairs"] == 3
            assert row["diff"] == pytest.approx((this - base).mean())
    text = report["text"]
    assert f"vs {BASELINE}, paired [95% CI]" in text
    assert text.count("baseline") >= 1 and "WARNING" not in text


def _svg_ids(path: Path) -> set[str]:
    return {el.get("id") for el in ET.parse(path).iter() if el.get("id")}


def test_figures_are_written_with_the_expected_series(report):
    files = report["files"]
    for name in ("completion_curves", "status_stocks", "process_times", "agency_hours", "agencies_per_case",
                 "heatmap"):
        png, svg = files[f"{name}.png"], files[f"{name}.svg"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert svg.stat().st_size > 1000, name
    assert not list(files["completion_curves.png"].parent.glob(".*.tmp")), "no temp files left"

    ids = _svg_ids(files["completion_curves.svg"])
    assert "five-year-line" in ids
    assert {gid("completion", s) for s in SCENARIOS} <= ids
    ids = _svg_ids(files["status_stocks.svg"])
    assert {gid("stock", st, s) for st in STATUS_COLUMNS for s in SCENARIOS} <= ids
    ids = _svg_ids(files["agency_hours.svg"])
    assert {gid(kind, a, s) for kind in ("hours", "paid", "queue") for a in AGENCIES for s in SCENARIOS} <= ids
    ids = _svg_ids(files["process_times.svg"])
    assert {gid("process", m, "mean", s) for m in ("months_risk_to_help", "months_dropout_to_ot")
            for s in SCENARIOS} <= ids
    assert gid("heatmap", "completion_5y") in _svg_ids(files["heatmap.svg"])


def test_completion_curves_reach_the_summary_at_the_five_year_line(report):
    runs = report["sweep"].ok
    ax = report["figures"]["completion_curves"].axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    vline = lines["five-year-line"]
    assert vline.get_xdata()[0] == NORMERT_TID_MONTHS
    for s in SCENARIOS:
        x, y = lines[gid("completion", s)].get_data()
        expected = runs.loc[runs["scenario"] == s, "completion_5y"].mean()
        assert y[list(x).index(NORMERT_TID_MONTHS)] == pytest.approx(expected)
        assert np.all(np.diff(y) >= 0), "cumulative completion never falls"


def test_gain_curve_is_the_paired_difference_at_each_value_of_the_other_key(report):
    fig = report["figures"]["gain_curve"]           # regime x screening_start_month were swept
    line = next(l for l in fig.axes[0].get_lines() if l.get_gid() == gid("gain", "colocated"))
    ok = report["sweep"].ok
    for x, y in zip(*line.get_data()):
        at = ok[ok["intervention.screening_start_month"] == x].pivot_table(
            index="replicate", columns="regime", values="completion_5y")
        assert y == pytest.approx((at["colocated"] - at["siloed"]).mean())


def test_heatmap_holds_the_cell_means(report):
    runs = report["sweep"].ok
    fig = report["figures"]["heatmap"]
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    assert grid.shape == (2, 2)
    assert ax.get_ylabel() == KEYS[0] and ax.get_xlabel() == KEYS[1]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    for i, start in enumerate(rows):
        for j, regime in enumerate(cols):
            sel = runs[(runs[KEYS[0]] == int(start)) & (runs["regime"] == regime)]
            assert grid[i, j] == pytest.approx(sel["completion_5y"].mean())


def test_report_names_missing_failed_and_incomplete_runs(sweep_dir, tmp_path, capsys):
    d = tmp_path / "damaged"
    shutil.copytree(sweep_dir, d, ignore=shutil.ignore_patterns("report"))
    shutil.rmtree(d / "11")                        # never started
    (d / "5" / SUMMARY_FILE).unlink()              # killed midway
    (d / "2" / SUMMARY_FILE).unlink()              # failed
    (d / "2" / FAILED_FILE).write_text(json.dumps({"error": "RuntimeError", "message": "boom"}))

    sweep = gather(d)
    status = sweep.runs.set_index("run")["status"]
    assert (status["5"], status["2"]) == ("incomplete", "failed")
    assert (sweep.runs["status"] == "missing").sum() == 1
    missing = sweep.runs[sweep.runs["status"] == "missing"].iloc[0]
    assert (missing["regime"], missing["replicate"]) == ("colocated", 2)

    code = report_main([str(d), "--no-figures", "--strict", "--baseline", BASELINE])
    out = capsys.readouterr().out
    assert code == 1
    assert "WARNING: 3 of 12 runs are NOT in these numbers:" in out
    assert "missing" in out and "never started" in out
    assert "incomplete 5:" in out and "failed     2: " in out and "RuntimeError: boom" in out
    table = pd.read_csv(d / "report" / "summary.csv").set_index("scenario")
    assert table["runs"].sum() == 9 and table["not_ok"].sum() == 3
    assert report_main([str(d), "--no-figures", "--baseline", BASELINE]) == 0, "--strict decides the exit code"


def test_report_flags_runs_left_from_an_older_sweep_definition(sweep_dir, tmp_path):
    d = tmp_path / "extended"
    shutil.copytree(sweep_dir, d, ignore=shutil.ignore_patterns("report"))
    text = (d / "multirun.yaml").read_text().replace("replicate=0,1,2", "replicate=0,1")
    (d / "multirun.yaml").write_text(text)
    runs = gather(d).runs
    assert (runs["status"] == "extra").sum() == 4 and (runs["status"] == "ok").sum() == 8


def test_report_command_line_errors(tmp_path, capsys):
    assert report_main([str(tmp_path / "nowhere")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_main([str(empty)]) == 2
    assert "no run folders" in capsys.readouterr().err


def test_unknown_baseline_is_an_error(sweep_dir, tmp_path, capsys):
    code = report_main([str(sweep_dir), "--out", str(tmp_path / "r"), "--no-figures", "--baseline", "nav_pilot"])
    assert code == 2
    assert "matches no single scenario" in capsys.readouterr().err


def test_gains_by_group_are_paired_differences_with_intervals(report):
    gains = report["gains_by_group"]
    assert set(gains["grouping"]) == {"grade points", "gender", "parents' education"}
    assert set(gains["scenario"]) == set(SCENARIOS) - {BASELINE}
    ok = report["sweep"].ok
    row = gains[(gains["scenario"] == SCENARIOS[0]) & (gains["group"] == "male")].iloc[0]
    wide = ok.pivot_table(index="replicate", columns="scenario", values="completion_5y_by_gender.male")
    assert row["diff"] == pytest.approx((wide[SCENARIOS[0]] - wide[BASELINE]).mean())
    assert row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"] and row["pairs"] == 3
    assert "Gains by group" in report["text"] and report["files"]["gains_by_group"].exists()
    ids = _svg_ids(report["files"]["gains_by_group.svg"])
    assert {gid("gain_by_group", g, s) for g in ("grade points", "gender") for s in SCENARIOS if s != BASELINE} <= ids


def test_summary_has_nok_per_extra_completer_and_break_even_and_the_report_prints_it(report):
    from dropout_sim.analysis.report import cost_ratio

    runs = report["sweep"].ok
    table = pd.read_csv(report["files"]["summary"]).set_index("scenario")
    assert {"nok_per_extra_completer", "break_even_nok"} <= set(table.columns)
    base = runs[runs["scenario"] == BASELINE].set_index("replicate")
    for scenario in SCENARIOS:
        if scenario == BASELINE:
            assert math.isnan(table.loc[scenario, "nok_per_extra_completer"])
            continue
        this = runs[runs["scenario"] == scenario].set_index("replicate")
        expected = cost_ratio((this["costs.nok_per_year"] - base["costs.nok_per_year"]).to_numpy(),
                              (this["completed_5y_per_cohort"] - base["completed_5y_per_cohort"]).to_numpy())
        for col in ("nok_per_extra_completer", "break_even_nok", "extra_nok_per_year"):
            got = table.loc[scenario, col]
            assert (math.isnan(got) and math.isnan(expected[col])) or got == pytest.approx(expected[col]), col
    # co-location pays premises every year: it costs more than the siloed baseline
    assert table.loc["screening_start_month=8 regime=colocated", "extra_nok_per_year"] > 0
    assert "NOK per extra completer" in report["text"] and "break-even NOK" in report["text"]


def test_results_store_appends_sweeps_and_answers_sql_across_them(sweep_dir, tmp_path, capsys):
    pytest.importorskip("pyarrow", reason="the results store needs the store extra: pip install -e '.[store]'")
    pytest.importorskip("duckdb", reason="the results store needs the store extra: pip install -e '.[store]'")
    from dropout_sim.analysis.store import main as query_main, query, sweep_id

    store = tmp_path / "store"
    other = tmp_path / "other_sweep"
    shutil.copytree(sweep_dir, other, ignore=shutil.ignore_patterns("report"))
    for d in (sweep_dir, other, sweep_dir):          # the same sweep twice: replaced, not duplicated
        assert report_main([str(d), "--no-figures", "--out", str(tmp_path / "r"), "--baseline", BASELINE,
                            "--store", str(store)]) == 0
    assert "results store:" in capsys.readouterr().out
    counts = query(store, "SELECT sweep_id, count(*) AS n FROM runs GROUP BY sweep_id ORDER BY sweep_id")
    assert sorted(counts["sweep_id"]) == sorted([sweep_id(sweep_dir), sweep_id(other)])
    assert list(counts["n"]) == [12, 12]
    assert query(store, "SELECT count(*) AS n FROM monthly")["n"][0] == 2 * 12 * 60
    assert query(store, "SELECT count(*) AS n FROM summary WHERE nok_per_extra_completer IS NOT NULL "
                        "OR baseline")["n"][0] <= 8

    # "every run with school and OT co-located": through the resolved configs
    sql = ("SELECT r.sweep_id, r.run, r.completion_5y FROM runs r JOIN configs c USING (sweep_id, run) "
           "WHERE list_has_all(c.\"regime.colocated\", ['school', 'ot']) AND c.\"agencies.staffing_scale\" <= 1")
    hits = query(store, sql)
    assert len(hits) == 12 and set(hits["sweep_id"]) == {sweep_id(sweep_dir), sweep_id(other)}
    runs = pd.read_csv(tmp_path / "r" / "runs.csv", dtype={"run": str})
    colocated = runs[runs["regime"] == "colocated"].set_index("run")["completion_5y"]
    mine = hits[hits["sweep_id"] == sweep_id(sweep_dir)].set_index("run")["completion_5y"]
    assert mine.sort_index().to_dict() == pytest.approx(colocated.sort_index().to_dict())

    assert query_main(["--store", str(store), "--csv", "SELECT count(*) AS n FROM configs"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "24"]
    assert query_main(["--store", str(store), "SELECT nonsense FROM runs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dropout-sim query: error: ") and "\n" not in err
    assert query_main(["--store", str(tmp_path / "empty"), "SELECT 1"]) == 2
    assert "holds no results" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# posterior draws: two intervals per scenario (replicate noise, parameter uncertainty)
# --------------------------------------------------------------------------------------
def _fake_draw_sweep(root: Path, gain_by_draw, noise: float, replicates: int = 4) -> Path:
    """Run folders as a sweep over draw x regime x replicate writes them, with completion chosen:
    colocated - siloed = gain_by_draw[draw] + noise x (replicate-specific term)."""
    rng = np.random.default_rng(5)
    monthly = "month,completed\n0,0\n"
    for draw, gain in enumerate(gain_by_draw):
        for rep in range(replicates):
            base = 0.75 + 0.01 * draw + 0.02 * rng.standard_normal()
            eps = noise * rng.standard_normal()
            for regime, value in (("siloed", base), ("colocated", base + gain + eps)):
                d = root / f"draw={draw},regime={regime},replicate={rep}"
                (d / ".hydra").mkdir(parents=True)
                (d / ".hydra" / "overrides.yaml").write_text(
                    f"- draw={draw}\n- regime={regime}\n- replicate={rep}\n")
                (d / "monthly.csv").write_text(monthly)
                (d / SUMMARY_FILE).write_text(json.dumps({"completion_5y": value, "students": 100,
                                                          "completion_5y_by_gender": {"male": value - 0.05,
                                                                                      "female": value + 0.05},
                                                          "meta": {"seed": 42, "replicate": rep}}))
    return root


def test_sweep_over_draws_reports_replicate_and_parameter_intervals(tmp_path):
    from dropout_sim.analysis.report import summarise

    # parameter uncertainty dominates: gains 0.5 .. 2.3 pp across draws, replicate noise 0.05 pp
    gains = np.linspace(0.005, 0.023, 10)
    sweep = gather(_fake_draw_sweep(tmp_path / "a", gains, noise=0.0005))
    assert sweep.scenario_keys == ["regime"] and set(sweep.scenarios) == {"siloed", "colocated"}
    assert not len(sweep.problems)  # draws are not duplicates of each other
    row = summarise(sweep, baseline="siloed").set_index("scenario").loc["colocated"]
    assert row["draws"] == 10 and row["pairs"] == 40
    assert row["diff_pp"] == pytest.approx(100 * gains.mean(), abs=0.05)
    par = row["diff_parameter_hi"] - row["diff_parameter_lo"]
    rep = row["diff_replicate_hi"] - row["diff_replicate_lo"]
    assert par > 1.2 and rep < 0.3 and par > 5 * rep
    assert row["diff_parameter_lo"] < 100 * gains[1] and row["diff_parameter_hi"] > 100 * gains[-2]

    # replicate noise dominates: the same gain in every draw, noise 1 pp
    sweep = gather(_fake_draw_sweep(tmp_path / "b", [0.01] * 10, noise=0.01))
    row = summarise(sweep, baseline="siloed").set_index("scenario").loc["colocated"]
    rep = row["diff_replicate_hi"] - row["diff_replicate_lo"]
    assert rep > 1.0 and row["diff_replicate_lo"] < row["diff_pp"] < row["diff_replicate_hi"]


def test_gains_by_group_over_draws_pair_each_draw_and_replicate(tmp_path):
    """A sweep over posterior draws pairs on (draw, replicate), as the summary does: one pair per
    draw and replicate, not one per replicate (which would keep an arbitrary draw)."""
    from dropout_sim.analysis.report import gains_by_group

    gains = np.linspace(0.005, 0.023, 10)
    sweep = gather(_fake_draw_sweep(tmp_path / "a", gains, noise=0.0005))
    male = gains_by_group(sweep, "siloed").set_index("group").loc["male"]
    assert male["pairs"] == 40
    assert male["diff"] == pytest.approx(gains.mean(), abs=0.0005)


def test_report_writes_the_two_interval_columns(tmp_path):
    root = _fake_draw_sweep(tmp_path / "s", np.linspace(0.005, 0.02, 5), noise=0.002, replicates=3)
    result = build_report(root, out_dir=tmp_path / "out", baseline="siloed", figures=False)
    table = pd.read_csv(result["files"]["summary"])
    for col in ("diff_pp", "diff_replicate_lo", "diff_replicate_hi", "diff_parameter_lo", "diff_parameter_hi"):
        assert col in table and table[col].notna().sum() == 1, col
    assert "parameter uncertainty" in result["text"] and "replicate noise" in result["text"]
