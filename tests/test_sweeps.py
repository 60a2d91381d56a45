"""Sweeps run as users run them: ``dropout-sim -m ...`` in a subprocess, outputs under tmp_path.

Covers the joblib launcher (local cores), the cluster launcher's code path through submitit's
local executor, resume (finished runs with an identical config are skipped), failure records
(one failing run does not stop the sweep; exit code 1; the report names it), kills (a run
killed while writing leaves nothing that looks complete) and the experiment delta files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dropout_sim import compose_config
from dropout_sim.analysis.report import gather
from dropout_sim.runs.results import SUMMARY_FILE, is_complete
from dropout_sim.runs.sweep import FAILED_FILE, clear_run_dir, dropout_sim_command, plan_sweep

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["cohort.size=300", "horizon_months=60", "county.warmup_years=2"]  # 60 months is the least that measures completion


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def dropout_sim(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*dropout_sim_command(), *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def sweep(sweep_dir: Path, *overrides: str, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return dropout_sim("-m", *overrides, *SMALL, *launcher, f"hydra.sweep.dir={sweep_dir}", cwd=sweep_dir.parent)


def progress(stdout: str) -> str:
    """The sweep's last line ('sweep done: N runs (ran a, skipped b ..., failed c) ...')."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("sweep done:")]
    assert lines, stdout
    return lines[-1]


def mtimes(sweep_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(sweep_dir)): p.stat().st_mtime_ns for p in sweep_dir.rglob(SUMMARY_FILE)}


JOBLIB2 = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


def test_parallel_sweep_then_report(tmp_path):
    d = tmp_path / "sweep"
    proc = sweep(d, "regime=siloed,colocated", "replicate=0,1,2", launcher=JOBLIB2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(ran 6, skipped 0 already finished, failed 0)" in progress(proc.stdout)
    assert len(re.findall(r"^\[\s*\d+/6 ", proc.stdout, flags=re.M)) == 6, "one progress line per run"
    assert "[6/6 100%]" in proc.stdout
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    assert len(list(d.rglob(SUMMARY_FILE))) == 6

    rep = dropout_sim("report", str(d), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    out = rep.stdout
    for scenario in ("siloed", "colocated"):
        assert scenario in out
    assert "vs siloed, paired" in out and "baseline" in out
    assert "WARNING" not in out
    png = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    assert png.name == "completion_curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_csv(d / "report" / "runs.csv")
    assert len(runs) == 6 and set(runs["status"]) == {"ok"}
    assert sorted(runs["regime"].unique()) == ["colocated", "siloed"]
    assert len(pd.read_csv(d / "report" / "monthly.csv")) == 6 * 60


def test_rerun_skips_finished_runs_and_reruns_changed_ones(tmp_path):
    d = tmp_path / "sweep"
    args = ("regime=siloed,colocated", "replicate=0,1")
    assert sweep(d, *args).returncode == 0
    before = mtimes(d)
    assert len(before) == 4

    again = sweep(d, *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(ran 0, skipped 4 already finished, failed 0)" in progress(again.stdout)
    assert mtimes(d) == before, "a skipped run must not be rewritten"

    extended = sweep(d, "regime=siloed,colocated", "replicate=0,1,2")  # folders named by overrides
    assert "(ran 2, skipped 4 already finished, failed 0)" in progress(extended.stdout)
    assert {k: v for k, v in mtimes(d).items() if k in before} == before

    changed = sweep(d, *args, "intervention.risk_threshold=0.4")  # new config hash for every run
    assert "(ran 4, skipped 0" in progress(changed.stdout)
    summaries = [json.loads(p.read_text()) for p in d.rglob(SUMMARY_FILE)]
    assert sum("intervention.risk_threshold=0.4" in s["meta"]["overrides"] for s in summaries) == 4


def test_rerun_into_job_number_folders_reruns_a_changed_config(tmp_path):
    """With folders named by job number, a changed config lands in a finished folder: re-run it."""
    d = tmp_path / "sweep"
    layout = "hydra.sweep.subdir=${hydra.job.num}"
    assert sweep(d, "regime=siloed,colocated", layout).returncode == 0
    assert sorted(mtimes(d)) == ["0/summary.json", "1/summary.json"]
    changed = sweep(d, "regime=siloed,colocated", "intervention.risk_threshold=0.4", layout)
    assert "(ran 2, skipped 0" in progress(changed.stdout)
    summaries = [json.loads(p.read_text()) for p in d.rglob(SUMMARY_FILE)]
    assert len(summaries) == 2
    assert all("intervention.risk_threshold=0.4" in s["meta"]["overrides"] for s in summaries)


def test_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    d = tmp_path / "sweep"
    job1 = d / ",".join(sorted([*SMALL, "regime=siloed", "replicate=1"]))  # folders named by overrides
    obstacle = job1 / "monthly.csv"
    obstacle.mkdir(parents=True)  # job 1 cannot write its monthly.csv: a real I/O failure
    proc = sweep(d, "regime=siloed,colocated", "replicate=0,1")
    assert proc.returncode == 1, "a sweep with a failed run exits with 1"
    assert "(ran 3, skipped 0 already finished, failed 1)" in progress(proc.stdout)
    assert "FAILED" in proc.stdout
    failure = json.loads((job1 / FAILED_FILE).read_text())
    assert failure["overrides"][:2] == ["regime=siloed", "replicate=1"]
    assert "monthly.csv" in failure["traceback"]
    assert not is_complete(job1)

    rep = dropout_sim("report", str(d), "--strict", "--no-figures", cwd=tmp_path)
    assert rep.returncode == 1
    assert "WARNING: 1 of 4 runs are NOT in these numbers" in rep.stdout
    assert "failed     regime=siloed replicate=1" in rep.stdout

    obstacle.rmdir()
    fixed = sweep(d, "regime=siloed,colocated", "replicate=0,1")
    assert fixed.returncode == 0
    assert "(ran 1, skipped 3 already finished, failed 0)" in progress(fixed.stdout)
    assert not (job1 / FAILED_FILE).exists()
    assert dropout_sim("report", str(d), "--strict", "--no-figures", cwd=tmp_path).returncode == 0


KILL_WHILE_WRITING = r"""
import sys, time
from pathlib import Path
import dropout_sim.runs.results as results
from dropout_sim import compose_config, run_simulation

out, flag = Path(sys.argv[1]), Path(sys.argv[2])
original = results.write_csv
def slow_write_csv(path, columns=None, rows=None):
    if Path(path).name != "students.csv":
        return original(path, columns, rows)
    def write(fh):
        fh.write("student_id,track\n0,academic\n")
        fh.flush()
        flag.write_text("writing")
        time.sleep(120)
    results.atomic_write(path, write)
results.write_csv = slow_write_csv
run_simulation(compose_config(["cohort.size=300", "horizon_months=60"]), out_dir=out)
"""


def test_run_killed_while_writing_leaves_nothing_that_looks_complete(tmp_path):
    run_dir, flag = tmp_path / "run", tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", KILL_WHILE_WRITING, str(run_dir), str(flag)], env=_env())
    try:
        deadline = time.time() + 120
        while not flag.exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    names = {p.name for p in run_dir.iterdir()}
    assert SUMMARY_FILE not in names and "students.csv" not in names
    assert "monthly.csv" in names, "files finished before the kill are complete"
    assert any(n.startswith(".students.csv.") and n.endswith(".tmp") for n in names), names
    assert not is_complete(run_dir)
    runs = gather(tmp_path).runs
    assert list(runs["status"]) == ["incomplete"]
    clear_run_dir(run_dir)  # what the next attempt does first
    assert not any(n.endswith(".tmp") for n in os.listdir(run_dir))


@pytest.mark.slow
def test_sweep_killed_midway_resumes_to_a_complete_report(tmp_path):
    d = tmp_path / "sweep"
    args = ["-m", "regime=siloed,colocated", "replicate=0,1,2,3", "cohort.size=3000", "horizon_months=60",
            f"hydra.sweep.dir={d}"]
    proc = subprocess.Popen([*dropout_sim_command(), *args], cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while len(list(d.rglob(SUMMARY_FILE))) < 2:
            assert proc.poll() is None, "the sweep finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = {p.parent.name for p in d.rglob(SUMMARY_FILE)}
    assert 2 <= len(finished) < 8
    for name in finished:  # whatever looks complete is complete
        run = d / name
        assert len(pd.read_csv(run / "monthly.csv")) == 60
        assert len(pd.read_csv(run / "students.csv")) == 3000

    runs = gather(d).runs
    assert len(runs) == 8, "the report knows the whole sweep, including runs never started"
    assert set(runs.loc[runs["status"] == "ok", "run"]) == finished
    assert set(runs["status"]) - {"ok"} <= {"incomplete", "missing"} and (runs["status"] != "ok").any()
    assert (runs["status"] == "missing").sum() + (runs["status"] == "incomplete").sum() == 8 - len(finished)

    resumed = subprocess.run([*dropout_sim_command(), *args], cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(ran {8 - len(finished)}, skipped {len(finished)} already finished, failed 0)" in progress(resumed.stdout)
    final = gather(d).runs
    assert len(final) == 8 and set(final["status"]) == {"ok"}


@pytest.mark.slow
def test_cluster_launcher_path_through_submitit_local(tmp_path):
    """The shipped SLURM config's twin: submitit pickles the job and runs it in its own process."""
    d = tmp_path / "sweep"
    proc = sweep(d, "regime=siloed,colocated", "replicate=0", launcher=("hydra/launcher=cluster_local",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    assert "(ran 2, skipped 0 already finished, failed 0)" in progress(proc.stdout)
    logs = "".join(p.read_text() for p in (d / ".submitit").rglob("*_log.out"))
    assert len(re.findall(r"completion within 60 months \d+\.\d%", logs)) == 2, "each job printed its progress line in its process"
    runs = gather(d).runs
    assert list(runs["status"]) == ["ok", "ok"] and list(runs["regime"]) == ["siloed", "colocated"]

    again = sweep(d, "regime=siloed,colocated", "replicate=0", launcher=("hydra/launcher=cluster_local",))
    assert "(ran 0, skipped 2" in progress(again.stdout)


def test_cluster_launcher_config_is_the_slurm_launcher(tmp_path):
    proc = dropout_sim("hydra/launcher=cluster", "--cfg", "hydra", "-p", "hydra.launcher", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SlurmLauncher" in proc.stdout
    for key in ("timeout_min: 30", "cpus_per_task: 1", "mem_gb: 2", "array_parallelism: 256"):
        assert key in proc.stdout


def test_bad_sweep_value_is_still_a_one_line_start_up_error(tmp_path):
    d = tmp_path / "sweep"
    proc = dropout_sim("-m", "regime=siloed,colocated", "cohort.size=300,-5", f"hydra.sweep.dir={d}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cohort.size" in proc.stderr
    assert not d.exists(), "nothing is written before the config is valid"


EXPERIMENTS = sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_every_swept_value_is_valid(name):
    plan = plan_sweep(["-m", f"experiment={name}"])
    assert plan is not None and plan.jobs, "an experiment defines its sweep"
    assert str(plan.sweep_dir) == f"multirun/{name}"
    assert (ROOT / "experiments" / f"{name}.py").is_file(), "each experiment has a script"
    seen = set()
    for job in plan.jobs:
        scenario = tuple(o for o in job if not o.startswith("replicate="))
        if scenario in seen:
            continue
        seen.add(scenario)
        assert f"experiment={name}" in job
        cfg = compose_config(job)
        assert cfg.cohort.size >= 3000
    assert len(plan.jobs) >= 2 * len(seen) >= 4, "several scenarios, several paired replicates each"


def test_the_jobs_hydra_sections_are_taken_over_and_are_the_ones_hydra_composes(tmp_path, monkeypatch):
    """The start-up check composes each combination with the Hydra overrides the sweep's config
    will record and keeps its hydra section; the launcher takes it over instead of composing the
    combination again, and every ``.hydra/hydra.yaml`` is what Hydra's own composition writes."""
    import shutil

    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from dropout_sim.app import cli
    from dropout_sim.runs import sweep as sweep_mod
    from dropout_sim.runs.results import ENV_COMMAND

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    for key in (ENV_COMMAND, sweep_mod.ENV_SESSION, sweep_mod.ENV_START, sweep_mod.ENV_TOTAL, sweep_mod.ENV_LAUNCHER_PID):
        monkeypatch.setenv(key, "")  # restored after the test (the command sets them)
    composed = []
    real = ConfigLoaderImpl.load_sweep_config
    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config",
                        lambda self, master, combo: composed.append(combo) or real(self, master, combo))
    # an experiment (its file sets hydra keys) with the sweep folder it names, pinned by the CLI
    args = ["-m", "experiment=regime_comparison", "replicate=0", *SMALL, "hydra.launcher.n_jobs=1"]

    def hydra_yamls() -> dict[str, str]:
        files = sorted((tmp_path / "multirun").rglob("hydra.yaml"))
        assert len(files) == 4
        return {str(f.relative_to(tmp_path)): f.read_text() for f in files}

    cli.main(args)
    assert composed == []
    taken = hydra_yamls()
    shutil.rmtree(tmp_path / "multirun")
    cli.main(["--config-name", "config", *args])  # the check composes another primary config: Hydra composes
    assert len(composed) == 4
    assert hydra_yamls() == taken


def test_a_hydra_section_composed_from_other_inputs_is_not_taken_over():
    from omegaconf import OmegaConf

    from dropout_sim.runs.batch import same_hydra_inputs

    def section(**changes):
        node = OmegaConf.create({
            "overrides": {"hydra": ["hydra.sweep.dir=s", "hydra.mode=MULTIRUN"], "task": ["regime=siloed"]},
            "runtime": {"config_sources": [{"path": "pkg://dropout_sim.configs", "provider": "main"}],
                        "cwd": "/w", "version": "1.3.2", "version_base": "1.3"},
            "job": {"name": "cli", "config_name": "config", "env_set": {}}})
        for key, value in changes.items():
            OmegaConf.update(node, key, value, merge=False)
        return node

    combo = ("regime=siloed",)
    assert same_hydra_inputs(section(), section(), combo)
    assert not same_hydra_inputs(section(), section(), ("regime=colocated",))
    for key, value in [("overrides.hydra", ["hydra.sweep.dir=s"]), ("runtime.cwd", "/x"), ("job.name", "app"),
                       ("runtime.config_sources", []), ("job.env_set", {"A": "1"}), ("job.config_name", "other")]:
        assert not same_hydra_inputs(section(**{key: value}), section(), combo), key


def test_the_launcher_takes_over_the_start_up_checks_compositions(tmp_path):
    """The start-up check composes each config-group combination of a sweep once; the batch
    launcher in the same process takes those compositions over instead of composing them again
    (Hydra's composition is most of a resumed sweep's start-up)."""
    from dropout_sim.app.cli import prevalidate
    from dropout_sim.runs.batch import Composer

    argv = ["-m", "regime=siloed,colocated", "replicate=0,1", *SMALL, f"hydra.sweep.dir={tmp_path / 's'}"]
    checked = prevalidate(argv).composer
    assert set(checked._nodes) == {("regime=siloed",), ("regime=colocated",)}

    class NoComposing:
        def load_sweep_config(self, *args):
            raise AssertionError("the launcher composed a combination the start-up check had composed")

    launcher = Composer(loader=NoComposing(), master=None, reuse=checked)
    for combo, node in checked._nodes.items():
        assert launcher.node(combo) is node
    fresh = Composer(loader=NoComposing(), master=None)  # without reuse it would compose
    with pytest.raises(AssertionError, match="composed a combination"):
        fresh.node(("regime=siloed",))
