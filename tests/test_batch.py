"""The batch runner (dropout_sim/runs/batch.py): same configs and run folders as Hydra's path,
each distinct value checked once, resume before any work, failures recorded, cancellation,
probes, and the SLURM path through submitit's local executor."""

from __future__ import annotations

import json

import pytest

from dropout_sim.runs.api import compose_config, run_simulation
from dropout_sim.runs.batch import BatchRunner, Composer, default_chunk_size, field_meta, run_batch
from dropout_sim.runs.results import SUMMARY_FILE, config_yaml, config_yaml_omegaconf
from dropout_sim.runs.sweep import FAILED_FILE
from dropout_sim.schema import ConfigError

SMALL = ["cohort.size=200", "horizon_months=60", "county.warmup_years=2"]


@pytest.mark.parametrize("overrides", [
    [], ["regime=colocated", "replicate=3"], ["+calibration=section9", "agencies.ppt.posts_per_1000=2"],
    ["experiment=slack"], ["agencies=with_child_welfare", "regime.colocated=[school,health,child_welfare]"],
    ["intervention=early", "output=full", "seed=7"],
])
def test_applied_overrides_give_the_config_compose_gives(overrides):
    composer = Composer(SMALL)
    mine, hydra = composer.config(overrides), compose_config([*SMALL, *overrides])
    assert config_yaml(mine) == config_yaml(hydra)
    assert config_yaml(hydra) == config_yaml_omegaconf(hydra), "fast YAML = OmegaConf's YAML"


def test_config_yaml_put_together_from_kept_sections_is_the_whole_dump():
    """config_yaml keeps each top-level section's YAML by the section's value; one after another the
    texts are the dump of the whole config, also for values that are equal but written otherwise."""
    import dataclasses

    from dropout_sim.runs.results import _dump_yaml

    composer = Composer(SMALL)
    runs = [["regime=colocated", "replicate=3"], ["regime=colocated", "replicate=4"], ["regime=siloed"],
            ["intervention.risk_threshold=0.3"], ["intervention.risk_threshold=0.30000000000000004"],
            ["agencies.ppt.posts_per_1000=0.0"], ["agencies.ppt.posts_per_1000=-0.0"],
            ["agencies=with_child_welfare", "regime.colocated=[school,health,child_welfare]"], ["seed=7"], []]
    for _ in range(2):  # the second time every section comes from what was kept
        for run in runs:
            cfg = composer.config(run)
            assert config_yaml(cfg) == _dump_yaml(dataclasses.asdict(cfg)) == config_yaml_omegaconf(cfg), run


def test_group_combinations_are_composed_once():
    composer = Composer(SMALL)
    for r in range(5):
        for regime in ("siloed", "colocated"):
            composer.config([f"regime={regime}", f"replicate={r}"])
    assert len(composer._nodes) == 2
    assert composer.config(["regime=siloed"]).replicate == 0, "a run's values do not stay in the shared node"
    assert composer.config(["regime=siloed", "cohort.size=500"]).cohort.size == 500
    assert composer.config([]).cohort.size == 200


def test_each_distinct_value_is_checked_even_after_the_64th_combination():
    runs = [[f"cohort.size={size}", f"replicate={r}"] for size in (100, -1) for r in range(65)]
    with pytest.raises(ConfigError, match=r"cohort.size = -1 .*allowed"):
        BatchRunner(SMALL).check(runs)
    with pytest.raises(ConfigError, match="cohort.sise is not a config key"):
        BatchRunner(SMALL).check([["+cohort.sise=10"]])
    with pytest.raises(ConfigError, match="regime"):
        BatchRunner(SMALL).check([["regime=nonexistent"]])
    BatchRunner(SMALL).check([[f"replicate={r}", "regime=colocated"] for r in range(100)])  # valid: no error


def test_field_meta_finds_nested_and_agency_keys():
    assert field_meta("cohort.size")["lo"] == 1
    assert field_meta("agencies.ppt.posts_per_1000")["unit"].startswith("posts")
    assert field_meta("agencies.staffing_scale")["hi"] == 100
    assert field_meta("cohort.nope") is None


def test_runs_write_the_same_folders_and_numbers_then_resume(tmp_path):
    runs = [["regime=siloed", "replicate=0"], ["regime=colocated", "replicate=0"], ["regime=siloed", "replicate=1"]]
    dirs = [tmp_path / f"run{i}" for i in range(len(runs))]
    out = run_batch(runs, SMALL, n_jobs=2, out_dirs=dirs)
    assert [o.status for o in out] == ["ran"] * 3
    for run, d, o in zip(runs, dirs, out):
        assert {"config.yaml", "monthly.csv", "students.csv", SUMMARY_FILE} <= {p.name for p in d.iterdir()}
        assert (d / ".hydra" / "overrides.yaml").read_text().split() == ["-", run[0], "-", run[1]]
        assert (d / ".hydra" / "config.yaml").read_text() == _hydra_compose_yaml([*SMALL, *run])
        summary = json.loads((d / SUMMARY_FILE).read_text())
        direct = run_simulation(compose_config([*SMALL, *run])).summary
        assert summary["completion_5y"] == direct["completion_5y"] == o.summary["completion_5y"]
        assert summary["meta"]["config_hash"] == o.config_hash
        assert summary["meta"]["overrides"] == run
    stamps = [(d / SUMMARY_FILE).stat().st_mtime_ns for d in dirs]

    again = run_batch(runs, SMALL, n_jobs=2, out_dirs=dirs)
    assert [o.status for o in again] == ["skipped"] * 3
    assert [o.summary["completion_5y"] for o in again] == [o.summary["completion_5y"] for o in out]
    assert [(d / SUMMARY_FILE).stat().st_mtime_ns for d in dirs] == stamps

    changed = run_batch(runs, [*SMALL, "intervention.risk_threshold=0.4"], n_jobs=1, out_dirs=dirs)
    assert [o.status for o in changed] == ["ran"] * 3


def _hydra_compose_yaml(overrides):
    """The composed config's YAML straight from Hydra (what a Hydra job writes to .hydra/config.yaml)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="dropout_sim.configs", version_base="1.3"):
        return OmegaConf.to_yaml(compose(config_name="config", overrides=list(overrides)))


def test_hydra_config_file_is_the_composed_node_also_for_lists_and_added_keys(tmp_path):
    runs = [["regime.colocated=[school,health]", "replicate=1"], ["+calibration=section9"]]
    dirs = [tmp_path / "a", tmp_path / "b"]
    assert [o.status for o in run_batch(runs, SMALL, out_dirs=dirs)] == ["ran", "ran"]
    for run, d in zip(runs, dirs):
        assert (d / ".hydra" / "config.yaml").read_text() == _hydra_compose_yaml([*SMALL, *run])


def test_a_failing_run_is_recorded_and_the_batch_goes_on(tmp_path):
    runs = [["replicate=0"], ["replicate=1"], ["county.warmup_years=0"]]  # the last breaks a cross-field rule
    dirs = [tmp_path / f"run{i}" for i in range(3)]
    (dirs[1] / "monthly.csv").mkdir(parents=True)  # run 1 cannot write its monthly.csv
    out = run_batch(runs, SMALL, n_jobs=1, out_dirs=dirs)
    assert [o.status for o in out] == ["ran", "failed", "failed"]
    failure = json.loads((dirs[1] / FAILED_FILE).read_text())
    assert failure["overrides"] == ["replicate=1"] and "monthly.csv" in failure["traceback"]
    assert not (dirs[1] / SUMMARY_FILE).exists()
    assert "warmup_years" in json.loads((dirs[2] / FAILED_FILE).read_text())["message"]


def _months(model) -> int:
    return len(model.recorder.rows)


def test_runs_in_this_process_are_as_quiet_as_in_a_worker(tmp_path, caplog):
    """Mesa logs every model step at INFO; a worker silences it, and so does a batch run in this
    process (n_jobs=1), so a sweep's console and job logs do not get 120 lines a run."""
    import logging

    caplog.set_level(logging.INFO)
    logging.getLogger("MESA").setLevel(logging.NOTSET)
    run_batch([["replicate=0"]], SMALL, n_jobs=1, out_dirs=[tmp_path / "r"])
    assert not [r for r in caplog.records if r.name.startswith("MESA")]


def test_probe_and_in_memory_runs_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run_batch([["replicate=0"], ["replicate=1"]], SMALL, n_jobs=2, probe=_months)
    assert all(o.status == "ran" and o.value == 60 and o.out_dir is None for o in out)
    assert all(0 < o.summary["completion_5y"] < 1 for o in out)
    assert list(tmp_path.iterdir()) == []


def test_closing_the_stream_cancels_the_rest(tmp_path):
    runs = [[f"replicate={r}"] for r in range(8)]
    dirs = [tmp_path / f"run{r}" for r in range(8)]
    with BatchRunner(SMALL, n_jobs=2, chunk_size=1) as runner:
        stream = runner.iter(runs, dirs)
        first = next(stream)
        stream.close()
        assert first.status == "ran"
        finished = sum((d / SUMMARY_FILE).exists() for d in dirs)
        assert finished < 8, "work not started when the stream closed is dropped"
        # the runner is usable again after a cancellation
        assert [o.status for o in runner.run(runs[:2], dirs[:2])] in (["skipped", "skipped"], ["ran", "skipped"],
                                                                       ["skipped", "ran"], ["ran", "ran"])


def test_cancel_from_a_callback_stops_the_batch(tmp_path):
    runs = [[f"replicate={r}"] for r in range(6)]
    with BatchRunner(SMALL, n_jobs=1) as runner:
        seen = []

        def on_result(outcome):
            seen.append(outcome.status)
            runner.cancel()

        out = runner.run(runs, on_result=on_result)
    assert seen == ["ran"] and [o.status for o in out][1:] == ["cancelled"] * 5


def test_chunks_keep_every_worker_busy():
    assert default_chunk_size(8, 2) == 1
    assert default_chunk_size(400, 2) == 16
    assert default_chunk_size(80, 2) == 10


def test_bad_runner_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="executor"):
        BatchRunner(SMALL, executor="mpi")
    with pytest.raises(ConfigError, match="chunk_size"):
        BatchRunner(SMALL, chunk_size=0)


@pytest.mark.slow
def test_slurm_path_through_submitit_local_one_task_per_chunk(tmp_path):
    """The SLURM executor's code path: submitit pickles each chunk as one array task; a re-run
    submits nothing when every run is finished."""
    from dropout_sim.runs.batch import SubmititOptions

    runs = [[f"regime={g}", f"replicate={r}"] for g in ("siloed", "colocated") for r in range(2)]
    dirs = [tmp_path / f"run{i}" for i in range(4)]
    opts = SubmititOptions(folder=str(tmp_path / ".submitit" / "%j"), timeout_min=5)
    with BatchRunner(SMALL, chunk_size=2, executor="submitit_local", submitit=opts) as runner:
        out = runner.run(runs, dirs)
        assert [o.status for o in out] == ["ran"] * 4
        assert len(runner.jobs) == 2, "one array task per chunk of 2 runs"
        again = runner.run(runs, dirs)
        assert [o.status for o in again] == ["skipped"] * 4
        assert runner.jobs == [], "finished runs are not submitted"


def test_cli_checks_every_swept_value_not_only_the_first_64_combinations(tmp_path):
    import os
    import subprocess

    from dropout_sim.runs.sweep import dropout_sim_command

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    d = tmp_path / "sweep"
    proc = subprocess.run([*dropout_sim_command(), "-m", "cohort.size=100,-1", "replicate=range(0,65)",
                           f"hydra.sweep.dir={d}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cohort.size = -1" in proc.stderr
    assert not d.exists()


def test_validation_runs_through_the_runner_once_per_scenario():
    from dropout_sim.analysis import validation as v

    runner = v.Runner(["county.warmup_years=2"], processes=2)
    try:
        (a,) = runner.summaries([("regime=colocated",)], 2, 300)
        (b,) = runner.summaries([("regime=colocated",)], 2, 300)
        assert a is not b and a == b and len(runner.cache) == 2, "cached: the second call runs nothing"
        direct = run_simulation(compose_config(["horizon_months=60", "output.students_table=false",
                                                "county.warmup_years=2", "cohort.size=300", "replicate=1",
                                                "regime=colocated"])).summary
        assert a[1]["completion_5y"] == direct["completion_5y"] and "extra" in a[1]
    finally:
        runner.close()


ORPHAN = r"""
import json, os, sys, time
from dropout_sim.runs.batch import BatchRunner
runner = BatchRunner(["cohort.size=200", "horizon_months=60", "county.warmup_years=2"], n_jobs=2, chunk_size=1)
for outcome in runner.iter([[f"replicate={r}"] for r in range(20)]):
    pids = list(runner._pool._processes)
    with open(sys.argv[1] + ".tmp", "w") as fh:   # renamed when complete: the test never reads it half-written
        fh.write(json.dumps(pids))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(120)
"""


def test_workers_do_not_outlive_a_killed_parent(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    pids_file = tmp_path / "pids.json"
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN, str(pids_file)])
    try:
        deadline = time.time() + 120
        while not pids_file.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.1)
        pids = json.loads(pids_file.read_text())
        assert len(pids) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 30
        alive = pids
        while alive and time.time() < deadline:
            time.sleep(0.2)
            alive = [p for p in pids if _alive(p)]
        assert not alive, f"workers {alive} still running after their parent was killed"
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_cancel_now_stops_a_run_in_progress_between_months_and_slicing_changes_no_number(monkeypatch):
    import threading

    from dropout_sim.model.metrics import summary
    from dropout_sim.model.model import DropoutModel
    from dropout_sim.runs import batch

    cfg = compose_config(SMALL)
    abort = threading.Event()
    monkeypatch.setattr(batch, "_ABORT", abort)  # what a pool worker holds
    sliced = DropoutModel(cfg)
    batch._run_model(sliced)  # in slices of ABORT_CHECK_MONTHS months
    whole = DropoutModel(cfg).run()
    assert sliced.month == sliced.months and summary(sliced) == summary(whole)
    assert batch.completion_curve(sliced)[59] == pytest.approx(summary(whole)["completion_5y"])

    abort.set()  # BatchRunner.cancel(now=True)
    stopped = DropoutModel(cfg)
    with pytest.raises(batch._Aborted):
        batch._run_model(stopped)
    assert stopped.month < stopped.months
