"""Results you can trust (issue 7): no stale reuse, every bad input refused in one line, valid
input that used to crash or misreport.

Bad input is tried through the command line in-process (``dropout_sim.app.cli.main``: the
refusal happens before Hydra starts); sweeps run as a subprocess, as users run them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dropout_sim import compose_config, run_simulation
from dropout_sim.analysis import validation
from dropout_sim.analysis.report import gather, main as report_main
from dropout_sim.app import cli
from dropout_sim.runs import results
from dropout_sim.runs.results import (ENV_COMMAND, SUMMARY_FILE, code_fingerprint, config_hash, config_yaml,
                                      finished_run, run_lock, summary_problem)
from dropout_sim.runs.sweep import FAILURES_DIR, describe_completion, dropout_sim_command, failure_record_path

SMALL = ["cohort.size=300", "horizon_months=60", "county.warmup_years=2"]
TINY = ["cohort.size=200", "horizon_months=12", "county.warmup_years=2"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def dropout_sim(*args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*dropout_sim_command(), *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def progress_counts(stdout: str) -> dict[str, int]:
    import re

    line = [ln for ln in stdout.splitlines() if ln.startswith("sweep done:")][-1]
    m = re.search(r"ran (\d+), skipped (\d+) already finished, failed (\d+)", line)
    return dict(zip(("ran", "skipped", "failed"), map(int, m.groups())))


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """``dropout-sim ARGS`` in-process from ``tmp_path``: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_COMMAND, "test")  # restored after the test (main sets it)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(args))
        out = capsys.readouterr()
        return exit_.value.code, out.out, out.err

    return run


def assert_one_line_refusal(code: int, err: str, *named: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    for word in named:
        assert word in lines[0], lines[0]


def written(folder: Path) -> list[str]:
    """Files and folders under ``folder`` (the test's working directory), except the inputs it made."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if not p.relative_to(folder).parts[0].startswith("input"))


# ======================================================================================
# a small real sweep: regime (colocated listed first) x risk threshold x 2 paired replicates
# ======================================================================================
SWEEP = ["regime=colocated,siloed", "intervention.risk_threshold=0.3,0.4", "replicate=0,1"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("trust") / "sweep"
    proc = dropout_sim("-m", *SWEEP, *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                       f"hydra.sweep.dir={d}", cwd=d.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert progress_counts(proc.stdout)["ran"] == 8
    return d


@pytest.fixture
def sweep_copy(sweep_dir, tmp_path) -> Path:
    d = tmp_path / "copy"
    shutil.copytree(sweep_dir, d, ignore=shutil.ignore_patterns("report", ".progress"))
    return d


def summaries(d: Path) -> dict[Path, dict]:
    return {p.parent: json.loads(p.read_text()) for p in sorted(d.rglob(SUMMARY_FILE))}


# ======================================================================================
# 1. never reuse a result the current code did not produce
# ======================================================================================
def test_meta_records_the_code_fingerprint_and_provenance(sweep_dir):
    meta = next(iter(summaries(sweep_dir).values()))["meta"]
    assert meta["code_fingerprint"] == code_fingerprint()["fingerprint"]
    assert len(meta["code_fingerprint"]) == 16
    assert "git_commit" in meta and "git_dirty" in meta
    prov = meta["provenance"]
    import numpy

    assert prov["numpy"] == numpy.__version__ and prov["python"].count(".") == 2
    for key in ("mesa", "hydra", "platform"):
        assert prov[key], key
    assert prov["command"].startswith("dropout-sim -m regime=colocated,siloed")
    assert meta["files"]["monthly.csv"]["rows"] == 60  # the focal months


def test_the_fingerprint_changes_with_any_source_or_config_file(tmp_path, monkeypatch):
    src = tmp_path / "model.py"
    cfg = tmp_path / "config.yaml"
    src.write_text("x = 1\n")
    cfg.write_text("a: 1\n")
    monkeypatch.setattr(results, "_source_files", lambda: [("dropout_sim/model.py", src), ("configs/config.yaml", cfg)])
    before = results.source_hash()
    src.write_text("x = 2\n")
    after_code = results.source_hash()
    cfg.write_text("a: 2\n")
    after_config = results.source_hash()
    assert len({before, after_code, after_config}) == 3
    names = [name for name, _ in results._source_files()]
    assert names == ["dropout_sim/model.py", "configs/config.yaml"]


def test_the_real_fingerprint_covers_model_and_configs_not_the_report():
    names = {name for name, _ in results._source_files()}
    assert "dropout_sim/model/students.py" in names and "configs/regime/colocated.yaml" in names
    assert "dropout_sim/schema.py" in names and "dropout_sim/rng.py" in names
    assert not any(n.startswith(("dropout_sim/analysis/", "dropout_sim/app/")) for n in names)


def test_finished_run_needs_the_same_config_hash_and_code_fingerprint(tmp_path):
    cfg = compose_config(TINY)
    run_simulation(cfg, out_dir=tmp_path)
    h = config_hash(config_yaml(cfg))
    fp = code_fingerprint()["fingerprint"]
    assert finished_run(tmp_path, h, fp)
    assert finished_run(tmp_path, h)  # default: the running code's fingerprint
    assert not finished_run(tmp_path, h, "0" * 16), "other code: not reusable"
    assert not finished_run(tmp_path, "f" * 16, fp), "other config: not reusable"
    s = json.loads((tmp_path / SUMMARY_FILE).read_text())
    del s["meta"]["code_fingerprint"]  # written by code older than fingerprints
    (tmp_path / SUMMARY_FILE).write_text(json.dumps(s))
    assert not finished_run(tmp_path, h, fp)


def test_a_rerun_after_a_code_change_recomputes_instead_of_skipping(sweep_copy):
    d = sweep_copy
    path = next(iter(summaries(d)))
    s = json.loads((path / SUMMARY_FILE).read_text())
    s["meta"]["code_fingerprint"] = "0123456789abcdef"  # as if older code had written it
    (path / SUMMARY_FILE).write_text(json.dumps(s))
    proc = dropout_sim("-m", *SWEEP, *SMALL, f"hydra.sweep.dir={d}", cwd=d.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert progress_counts(proc.stdout) == {"ran": 1, "skipped": 7, "failed": 0}
    assert json.loads((path / SUMMARY_FILE).read_text())["meta"]["code_fingerprint"] == code_fingerprint()["fingerprint"]


def test_report_warns_when_runs_mix_code_fingerprints_and_strict_fails(sweep_copy, capsys):
    d = sweep_copy
    assert report_main([str(d), "--no-figures", "--strict"]) == 0
    assert "WARNING" not in capsys.readouterr().out
    path = next(iter(summaries(d)))
    s = json.loads((path / SUMMARY_FILE).read_text())
    s["meta"]["code_fingerprint"] = "0123456789abcdef"
    (path / SUMMARY_FILE).write_text(json.dumps(s))
    assert report_main([str(d), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: the ok runs were computed by 2 different versions of the code" in out
    assert "0123456789abcdef (1 runs)" in out
    assert report_main([str(d), "--no-figures", "--strict"]) == 1


# ======================================================================================
# 2. every bad input: one line naming what is wrong and what is allowed, exit 2, nothing written
# ======================================================================================
@pytest.mark.parametrize("override, named", [
    ("+cohort.sise=10000", "cohort.sise is not a config key"), ("+foo=1", "foo is not a config key"),
    ("++foo=1", "foo is not a config key"), ("+agencies.ppt.bogus=3", "agencies.ppt.bogus is not a config key"),
    ("cohort.sise=10000", "cohort.sise"),
])
def test_cli_refuses_keys_the_schema_does_not_declare(run_cli, tmp_path, override, named):
    code, _, err = run_cli(override, *TINY)
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


def test_an_invalid_sweep_value_after_the_64th_combination_is_refused(run_cli, tmp_path):
    code, _, err = run_cli("-m", "cohort.size=100,-1", "replicate=range(0,65)", f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_refusal(code, err, "cohort.size = -1", "allowed")
    assert written(tmp_path) == []


@pytest.mark.parametrize("sweep, named", [
    (["replicate=range(0,70)", "seed=1,2,-3"], "seed = -3"),
    (["regime=siloed,colocated,nav_pilot", "intervention.risk_threshold=0.3,0.4,1.5"], "risk_threshold = 1.5"),
    (["regime=siloed,teleported"], "regime/teleported"),
])
def test_every_swept_value_is_checked_once(run_cli, tmp_path, sweep, named):
    code, _, err = run_cli("-m", *sweep, f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


def test_a_yaml_syntax_error_in_a_config_dir_file_is_one_line(run_cli, tmp_path):
    (tmp_path / "input" / "calibration").mkdir(parents=True)
    (tmp_path / "input" / "calibration" / "broken.yaml").write_text("dynamics:\n  dropout_intercept: [1, 2\n")
    code, _, err = run_cli("--config-dir", str(tmp_path / "input"), "+calibration=broken", *TINY)
    assert_one_line_refusal(code, err, "broken")
    assert written(tmp_path) == []


@pytest.mark.parametrize("text, named", [
    ("completion_5y: {value: 0.7, tolerance: [0.1\n", "YAML syntax error"),
    ("completion_5y: abc\n", "completion_5y"),
    ("- completion_5y\n- 0.7\n", "holds a list"),
    ("completion_5y: {value: 0.7, tolerance: .nan}\n", "completion_5y.tolerance = nan"),
    ("completion_5y: {value: 0.7, tolerance: .inf}\n", "completion_5y.tolerance = inf"),
    ("completion_5y: {value: .nan, tolerance: 0.1}\n", "completion_5y.value = nan"),
    ("completion_5y: {value: 0.7, tolerance: 0}\n", "completion_5y.tolerance = 0"),
])
def test_calibrate_refuses_a_bad_targets_file_in_one_line(run_cli, tmp_path, text, named):
    (tmp_path / "input.yaml").write_text(text)
    code, _, err = run_cli("calibrate", "--targets", str(tmp_path / "input.yaml"), "--dry-run")
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


@pytest.mark.parametrize("args, named", [
    (["--replicates", "0"], "--replicates 0"), (["--max-evals", "0"], "--max-evals 0"),
    (["--cohort-size", "0"], "--cohort-size 0"), (["--seed", "-1"], "--seed -1"),
    (["cohort.size=-1"], "cohort.size"), (["regime=bogus"], "regime/bogus"),
    (["--out", "/proc/no/such"], "--out"),
])
def test_calibrate_refuses_bad_arguments_in_one_line(run_cli, tmp_path, args, named):
    code, _, err = run_cli("calibrate", *args)
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


@pytest.mark.parametrize("args, named", [
    (["--patterns", "9"], "no pattern 9"), (["--patterns", "abc"], "--patterns 'abc'"),
    (["--patterns", "3-1"], "--patterns '3-1'"), (["--size", "0"], "--size 0"),
    (["--replicates", "1"], "--replicates 1"), (["--processes", "0"], "--processes 0"),
    (["cohort.size=-1"], "cohort.size"), (["regime=bogus"], "regime/bogus"), (["+foo=1"], "foo"),
    (["--targets", "nowhere"], "targets"),
])
def test_validate_refuses_bad_arguments_in_one_line(run_cli, tmp_path, args, named):
    code, _, err = run_cli("validate", *args)
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


def test_validate_patterns_accepts_lists_and_ranges():
    assert validation.parse_patterns("1-3,5") == [1, 2, 3, 5]
    assert validation.parse_patterns("8") == [8]


@pytest.mark.parametrize("name", ["../../../tmp/x", "a/b", "..", "x" * 65, "", "-x"])
def test_regime_name_must_be_an_identifier(run_cli, tmp_path, name):
    code, _, err = run_cli(f"regime.name='{name}'", *TINY)
    assert_one_line_refusal(code, err, "regime.name", "identifier")
    assert written(tmp_path) == []
    assert not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("override, named", [
    ("hydra.callbacks.x._target_=os.system", "_target_"),
    ("+hydra.callbacks.x.foo=1", "callbacks"),
    ("hydra.job_logging.handlers.file.filename=/tmp/elsewhere.log", "filename"),
    ("hydra.job_logging.handlers.console.class=os.system", "class"),
    ("hydra.launcher._target_=os.system", "hydra.launcher._target_"),
    ("hydra.output_subdir=../../elsewhere", "hydra.output_subdir"),
    ("+hydra.job.env_set.LD_PRELOAD=/tmp/x.so", "env_set"),
])
def test_overrides_that_run_code_or_write_elsewhere_are_refused(run_cli, tmp_path, override, named):
    code, _, err = run_cli(override, *TINY)
    assert_one_line_refusal(code, err, named)
    assert written(tmp_path) == []


@pytest.mark.parametrize("relpath, text, select", [
    ("calibration/evil.yaml", "# @package _global_\nhydra:\n  callbacks:\n    x:\n      _target_: os.system\n",
     "+calibration=evil"),
    ("hydra/job_logging/evil.yaml", "version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n"
     "    filename: /tmp/elsewhere.log\nroot:\n  handlers: [file]\n", "hydra/job_logging=evil"),
])
def test_config_dir_files_that_run_code_or_write_elsewhere_are_refused(run_cli, tmp_path, relpath, text, select):
    path = tmp_path / "input" / relpath
    path.parent.mkdir(parents=True)
    path.write_text(text)
    code, _, err = run_cli("--config-dir", str(tmp_path / "input"), select, *TINY)
    assert_one_line_refusal(code, err, "hydra.")
    assert written(tmp_path) == []


def test_an_unwritable_output_folder_is_one_line(run_cli, tmp_path):
    (tmp_path / "input").write_text("a file where a folder should be")
    code, _, err = run_cli(*TINY, f"hydra.run.dir={tmp_path / 'input' / 'run'}")
    assert_one_line_refusal(code, err, "hydra.run.dir", "not a folder")
    code, _, err = run_cli("-m", "replicate=0,1", *TINY, f"hydra.sweep.dir={tmp_path / 'input' / 'sweep'}")
    assert_one_line_refusal(code, err, "hydra.sweep.dir")
    assert written(tmp_path) == []


def test_report_into_an_unwritable_folder_is_one_line(sweep_dir, tmp_path, capsys):
    (tmp_path / "input").write_text("a file where a folder should be")
    code = report_main([str(sweep_dir), "--no-figures", "--out", str(tmp_path / "input" / "report")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "report: error:" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_folder_is_a_failure_not_an_old_ok_run(sweep_copy):
    d = sweep_copy
    run = next(iter(summaries(d)))
    run.chmod(0o555)
    try:
        proc = dropout_sim("-m", *SWEEP, *SMALL, f"hydra.sweep.dir={d}", cwd=d.parent, DROPOUT_SIM_RESUME="0")
        assert proc.returncode == 1
        assert progress_counts(proc.stdout)["failed"] == 1
        runs = gather(d).runs.set_index("run")
        assert runs.loc[str(run.relative_to(d)), "status"] == "failed"
    finally:
        run.chmod(0o755)


def test_a_run_whose_folder_could_not_be_written_is_counted_failed(sweep_copy):
    """What the job records when it cannot write its folder (see the test above, for non-root)."""
    d = sweep_copy
    run = next(iter(summaries(d)))
    record = failure_record_path(d, run)
    assert record.parent == d / FAILURES_DIR
    record.parent.mkdir()
    record.write_text(json.dumps({"error": "PermissionError", "message": "cannot write the run folder"}))
    runs = gather(d).runs.set_index("run")
    assert runs.loc[str(run.relative_to(d)), "status"] == "failed"
    assert (runs["status"] == "ok").sum() == 7


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_figure(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_SIM_MEMORY_MB", "1000")
    code, _, err = run_cli("cohort.size=1000000", "horizon_months=12")
    assert_one_line_refusal(code, err, "cohort.size = 1000000 needs about", "GB", "at most about")
    code, _, err = run_cli("-m", "cohort.size=1000,2000000", f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_refusal(code, err, "cohort.size = 2000000")
    code, _, err = run_cli("validate", "--size", "500000")
    assert_one_line_refusal(code, err, "--size")
    assert written(tmp_path) == []


def test_memory_estimate_grows_with_the_cohort():
    from dropout_sim.runs.api import memory_need_mb

    small = memory_need_mb(compose_config(["cohort.size=1000"]))
    large = memory_need_mb(compose_config(["cohort.size=5000000", "county.nonfocal_share=1"]))
    assert 150 < small < 200 and large > 10_000  # 5 million students per cohort, all simulated: over 10 GB
    sampled = memory_need_mb(compose_config(["cohort.size=5000000", "county.nonfocal_share=0.25"]))
    assert sampled < 0.5 * large                 # a quarter of the non-focal cohorts: under half the rows


def test_ctrl_c_is_a_clean_exit(tmp_path):
    # A shell starts background jobs with SIGINT ignored and children inherit that (then Python
    # installs no KeyboardInterrupt handler): give the command the terminal's default, as Ctrl-C finds it.
    proc = subprocess.Popen([*dropout_sim_command(), "cohort.size=200000", "county.warmup_years=2",
                             f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (tmp_path / "run").exists() and time.time() < deadline:  # the run has started
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "dropout-sim: interrupted"
    assert not (tmp_path / "run" / SUMMARY_FILE).exists()


def test_a_closed_pipe_is_a_clean_exit(tmp_path):
    proc = subprocess.Popen([*dropout_sim_command(), "--version"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (| head) is gone before anything is printed
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# ======================================================================================
# 3. valid input that crashed or misreported
# ======================================================================================
def test_report_on_a_sweep_where_one_scenario_has_no_finished_runs(sweep_copy, capsys):
    d = sweep_copy
    for path, s in summaries(d).items():
        if "regime=siloed" in str(path) and "risk_threshold=0.3" in str(path):
            (path / SUMMARY_FILE).unlink()
    code = report_main([str(d), "--no-figures"])
    out = capsys.readouterr().out
    assert code == 0
    assert "has no finished runs" in out and "incomplete" in out
    table = pd.read_csv(d / "report" / "summary.csv").set_index("scenario")
    assert len(table) == 4 and table.loc["regime=siloed risk_threshold=0.3", "runs"] == 0
    assert table.loc["regime=siloed risk_threshold=0.3", "not_ok"] == 2


@pytest.mark.parametrize("overrides", [["cohort.vocational_share=0"], ["cohort.vocational_share=1"],
                                       ["cohort.size=1"]])
def test_degenerate_cohorts_run_and_print_from_the_command_line(tmp_path, overrides):
    proc = dropout_sim(*overrides, "county.warmup_years=2", "horizon_months=60", f"hydra.run.dir={tmp_path / 'r'}",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "completion within 60 months" in proc.stdout and "None" not in proc.stdout
    s = json.loads((tmp_path / "r" / SUMMARY_FILE).read_text())
    assert summary_problem(s, tmp_path / "r") is None
    assert describe_completion(s) in proc.stdout


def test_a_short_horizon_writes_null_and_says_why(tmp_path):
    result = run_simulation(compose_config(TINY), out_dir=tmp_path)
    s = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert s["completion_5y"] is None and "60 months" in s["completion_5y_note"]
    assert "not observed" in describe_completion(result.summary)
    assert summary_problem(s, tmp_path) is None, "a null with its note is a valid 'not observed'"


def test_default_baseline_is_siloed_when_regime_and_another_key_are_swept(sweep_dir, tmp_path, capsys):
    assert report_main([str(sweep_dir), "--no-figures", "--out", str(tmp_path / "r")]) == 0
    table = pd.read_csv(tmp_path / "r" / "summary.csv")
    base = table.loc[table["baseline"], "scenario"].iloc[0]
    assert "regime=siloed" in base, f"baseline {base!r}; the first scenario is colocated"
    assert table["scenario"].iloc[0].startswith("regime=colocated")


def _damage(d: Path) -> dict[str, Path]:
    runs = list(summaries(d))
    s = json.loads((runs[0] / SUMMARY_FILE).read_text())
    del s["completion_5y"]
    (runs[0] / SUMMARY_FILE).write_text(json.dumps(s))
    s = json.loads((runs[1] / SUMMARY_FILE).read_text())
    s["completion_5y"] = math.nan
    (runs[1] / SUMMARY_FILE).write_text(json.dumps(s))
    lines = (runs[2] / "monthly.csv").read_text().splitlines(keepends=True)
    (runs[2] / "monthly.csv").write_text("".join(lines[:-10]))  # truncated, still parses
    return {"missing": runs[0], "nan": runs[1], "truncated": runs[2]}


def test_damaged_runs_are_listed_not_averaged(sweep_copy, capsys):
    d = sweep_copy
    damaged = _damage(d)
    sweep = gather(d)
    status = sweep.runs.set_index("run")["status"]
    for path in damaged.values():
        assert status[str(path.relative_to(d))] == "damaged"
    assert (sweep.runs["status"] == "ok").sum() == 5
    errors = " ".join(sweep.runs["error"])
    assert "lacks completion_5y" in errors and "completion_5y = nan" in errors and "monthly.csv" in errors
    # the summary's track columns average the same runs as the headline
    assert report_main([str(d), "--no-figures"]) == 0
    table = pd.read_csv(d / "report" / "summary.csv")
    assert table["runs"].sum() == 5 and table["not_ok"].sum() == 3
    assert "damaged" in capsys.readouterr().out


def test_damaged_runs_are_not_reused_by_a_rerun(sweep_copy):
    d = sweep_copy
    _damage(d)
    proc = dropout_sim("-m", *SWEEP, *SMALL, f"hydra.sweep.dir={d}", cwd=d.parent)
    assert progress_counts(proc.stdout) == {"ran": 3, "skipped": 5, "failed": 0}
    assert (gather(d).runs["status"] == "ok").all()


@pytest.mark.parametrize("metric", ["regime_name", "status", "code_fingerprint", "no_such_column"])
def test_report_metric_must_be_a_numeric_outcome(sweep_dir, tmp_path, capsys, metric):
    assert report_main([str(sweep_dir), "--no-figures", "--metric", metric, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and metric in err and "allowed" in err and "Traceback" not in err


def test_run_lock_is_exclusive(tmp_path):
    with run_lock(tmp_path) as held:
        assert held
        child = subprocess.run([sys.executable, "-c", "import sys\nfrom dropout_sim.runs.results import run_lock\n"
                                f"with run_lock({str(tmp_path)!r}, wait=False) as held: sys.exit(0 if held else 3)"],
                               timeout=60)
        assert child.returncode == 3, "another process holds the lock"
    child = subprocess.run([sys.executable, "-c", "import sys\nfrom dropout_sim.runs.results import run_lock\n"
                            f"with run_lock({str(tmp_path)!r}, wait=False) as held: sys.exit(0 if held else 3)"],
                           timeout=60)
    assert child.returncode == 0, "released at the end of the block"


@pytest.mark.slow
def test_two_identical_sweeps_at_once_compute_each_run_once(tmp_path):
    d = tmp_path / "sweep"
    args = [*dropout_sim_command(), "-m", "regime=siloed,colocated", "replicate=0,1,2", *SMALL, f"hydra.sweep.dir={d}"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    counts = [progress_counts(out) for out, _ in outs]
    assert sum(c["failed"] for c in counts) == 0
    assert sum(c["ran"] for c in counts) == 6 and sum(c["skipped"] for c in counts) == 6
    assert (gather(d).runs["status"] == "ok").all() and len(gather(d).runs) == 6


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the workers")
def test_killing_a_joblib_sweep_leaves_no_workers_running(tmp_path):
    proc = subprocess.Popen([*dropout_sim_command(), "-m", "replicate=range(0,6)", "cohort.size=30000",
                             "county.warmup_years=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             f"hydra.sweep.dir={tmp_path / 's'}"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and not (list((tmp_path / "s").rglob("monthly.csv")) and workers):
        workers = _children(proc.pid)
        time.sleep(0.5)
    assert workers, "the sweep started its workers"
    proc.kill()
    proc.wait()
    deadline = time.time() + 60
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.5)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, "workers outlived the killed sweep"


def test_report_warns_when_runs_mix_numpy_versions(sweep_copy, capsys):
    d = sweep_copy
    path = next(iter(summaries(d)))
    s = json.loads((path / SUMMARY_FILE).read_text())
    s["meta"]["provenance"]["numpy"] = "1.0.0"
    (path / SUMMARY_FILE).write_text(json.dumps(s))
    assert report_main([str(d), "--no-figures", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "WARNING: the ok runs were computed with 2 numpy versions" in out and "1.0.0 (1 runs)" in out
    runs = pd.read_csv(d / "report" / "runs.csv")
    assert set(runs["numpy_version"]) == {"1.0.0", __import__("numpy").__version__}


def test_sweep_values_from_an_experiment_file_are_checked_too(run_cli, tmp_path):
    path = tmp_path / "input" / "experiment" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("# @package _global_\nhydra:\n  sweeper:\n    params:\n      cohort.size: 300,-4\n"
                    "      replicate: range(0,70)\n")
    code, _, err = run_cli("-m", "--config-dir", str(tmp_path / "input"), "experiment=bad",
                           f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_refusal(code, err, "cohort.size = -4")
    assert written(tmp_path) == []


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parent.parent / "configs" / "experiment")
                                        .glob("*.yaml")))
def test_shipped_experiments_pass_the_start_up_checks(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cli.prevalidate(["-m", f"experiment={name}"])  # raises SystemExit(2) on any refusal


@pytest.mark.parametrize("args", [["report"], ["report", "x", "--format", "xls"], ["validate", "--size", "abc"],
                                  ["calibrate", "--max-evals", "many"], ["validate", "--bogus"]])
def test_subcommand_argument_errors_are_one_line(run_cli, tmp_path, args):
    code, _, err = run_cli(*args)
    assert_one_line_refusal(code, err, f"dropout-sim {args[0]}: error:", "--help")
    assert written(tmp_path) == []


def test_parallel_workers_count_in_the_memory_check(run_cli, tmp_path, monkeypatch):
    from dropout_sim.runs.api import memory_need_mb

    one = memory_need_mb(compose_config(["cohort.size=200000"]))
    monkeypatch.setenv("DROPOUT_SIM_MEMORY_MB", str(int(one * 1.5)))  # one run fits, two do not
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    code, _, err = run_cli("-m", "cohort.size=200000", "replicate=0,1", "hydra/launcher=joblib",
                           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_refusal(code, err, "for 2 runs at once")
    assert written(tmp_path) == []
    from dropout_sim.app.cli import prevalidate

    prevalidate(["-m", "cohort.size=200000", "replicate=0,1", f"hydra.sweep.dir={tmp_path / 's'}"])  # one at a time
