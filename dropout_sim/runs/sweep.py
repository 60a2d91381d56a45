"""Sweeps: the job Hydra runs for every run of a sweep, resume, failure records, progress.

``dropout-sim -m regime=siloed,nav_pilot,colocated replicate='range(0,20)'`` is a Hydra
multirun. The default launcher (``dropout_sim``, ``hydra_plugins/dropout_sim_launcher``) hands the
jobs to the batch runner (:mod:`dropout_sim.runs.batch`; ``cluster`` and ``cluster_local`` send
its chunks through submitit), which writes the same folder per job as :func:`run_task` does
under Hydra's own launchers (``basic`` = one process, ``joblib`` = local cores): in
``<sweep dir>/<hydra.sweep.subdir>/``:

``.hydra/``
    written by Hydra when the job starts: the composed config and the job's overrides
``config.yaml``, ``monthly.csv``, ``students.csv``, ``summary.json``
    the results (:func:`dropout_sim.runs.results.write_run`); ``summary.json`` is written last and
    atomically, so it is the completion marker
``failed.json``
    written (atomically) instead of ``summary.json`` when the job raised: error, traceback

**Resume.** A job whose folder already holds a whole ``summary.json`` with the same config
hash (sha256 of the resolved, validated config) and the same code fingerprint (a hash of the
package's source and configs, :func:`dropout_sim.runs.results.code_fingerprint`) is skipped
(:func:`dropout_sim.runs.results.finished_run`), so re-running a sweep into the same
``hydra.sweep.dir`` only runs what is missing, failed, changed, or computed by other code.
``DROPOUT_SIM_RESUME=0`` in the environment forces every run.

**Locks.** Each job holds an exclusive lock on its folder from the resume check to the last
write (:func:`dropout_sim.runs.results.run_lock`): two sweeps into one folder never clobber
each other's files; the second waits for a run in progress, then skips it as finished.

**Unwritable folders.** A job whose folder cannot be written fails with one line; since it
cannot write ``failed.json`` there, the record goes to ``<sweep dir>/.failures/`` and the
report counts that run as failed (an old ``summary.json`` it could not remove is not ok).

**Kills.** Before a run starts, its old ``summary.json``/``failed.json`` and any temporary file
left by a killed write are removed; every result file is renamed into place when complete.
A run killed midway therefore leaves no ``summary.json``: ``dropout-sim report`` lists it as
incomplete and the next sweep re-runs it.

**Failures.** In a multirun a failing job is recorded (``failed.json``, a ``FAILED`` progress
line) and the sweep goes on; the command exits with code 1 at the end if any job failed.

**Progress.** After each job one line is printed::

    [ 12/60  20%] ran 11  skipped 1  failed 0 | 0:07 elapsed, ~0:28 left | #11 regime=nav_pilot replicate=3: completion 75.1% (0.31 s)

Counts come from ``<sweep dir>/.progress/<session>/{ran,skipped,failed}``, files to which
every job appends one byte (``O_APPEND``), so any launcher and any number of processes can
count without locks. The session id, start time and total number of jobs are passed to the
jobs in environment variables set by :func:`prepare_sweep` (inherited by joblib workers,
submitit processes and, with SLURM's default ``--export=ALL``, cluster jobs).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import fail
from .results import (RESULT_FILES, SUMMARY_FILE, atomic_write_text, code_fingerprint, config_hash, config_yaml,
                      finished_run, run_lock)

FAILED_FILE = "failed.json"
PROGRESS_DIR = ".progress"
FAILURES_DIR = ".failures"
"""Failure records of runs whose own folder could not be written (one JSON file per run)."""
ENV_SESSION = "DROPOUT_SIM_SWEEP_SESSION"
ENV_START = "DROPOUT_SIM_SWEEP_START"
ENV_TOTAL = "DROPOUT_SIM_SWEEP_TOTAL"
ENV_RESUME = "DROPOUT_SIM_RESUME"
ENV_LAUNCHER_PID = "DROPOUT_SIM_LAUNCHER_PID"
STATUSES = ("ran", "skipped", "failed")


def describe_completion(summary: dict) -> str:
    """One line on completion within 60 months; says why when the run was too short to tell."""
    share = summary.get("completion_5y")
    if share is None:
        return "completion within 60 months: not observed (" + (summary.get("completion_5y_note") or "no focal students") + ")"
    by_track = summary.get("completion_5y_by_track") or {}
    tracks = ", ".join(f"{name} {value:.1%}" for name, value in by_track.items() if value is not None)
    return f"completion within 60 months {share:.1%}" + (f" ({tracks})" if tracks else "")


GROUP_KEYS = (("on time", "completion_on_time_by_track"), ("gender", "completion_5y_by_gender"),
              ("parents' education", "completion_5y_by_parents_education"),
              ("grade points", "completion_5y_by_grade_points"))
"""The groups :func:`describe_groups` lists (summary.json keys)."""


def describe_groups(summary: dict) -> str:
    """Completion by group, one line per grouping (equity: who completes); empty when the run was
    too short to observe completion within 60 months."""
    if summary.get("completion_5y") is None:
        return ""
    lines = []
    for title, key in GROUP_KEYS:
        groups = summary.get(key) or {}
        cells = ", ".join(f"{name} {'-' if value is None else format(value, '.1%')}" for name, value in groups.items())
        if cells:
            if key == "completion_on_time_by_track":
                total = summary.get("completion_on_time")
                cells = (f"all {total:.1%}, " if total is not None else "") + cells
                lines.append(f"  completed on time (36 months academic, 48 vocational): {cells}")
            else:
                lines.append(f"  within 60 months by {title}: {cells}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# planning (in the launching process, before Hydra starts)
# --------------------------------------------------------------------------------------
@dataclass
class SweepPlan:
    """What a multirun will do: its folder and, for the basic sweeper, every job's overrides."""

    sweep_dir: Path | None
    jobs: list[list[str]] | None
    """Overrides of every job in launch order (None when the sweeper is not Hydra's basic one)."""


def is_multirun_flag(argv: Sequence[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in argv)


def basic_sweeper_jobs(hydra_cfg: Any, task_overrides: Sequence[str]) -> list[list[str]] | None:
    """The job list of a sweep whose ``hydra`` config node uses the basic sweeper; None for
    any other sweeper (its jobs cannot be known in advance)."""
    from omegaconf import OmegaConf

    if not str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="") or "").endswith("BasicSweeper"):
        return None
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None)
    return expand_jobs(OmegaConf.to_container(params) if params else None, task_overrides)


def expand_jobs(params: dict[str, str] | None, task_overrides: Sequence[str]) -> list[list[str]]:
    """The job list of Hydra's basic sweeper: ``hydra.sweeper.params`` then the command line.

    Uses Hydra's own parser and :meth:`BasicSweeper.split_arguments`, so the list (and its
    order, i.e. the job numbers) is exactly the one the sweeper launches.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(task_overrides)
    parsed = OverridesParser.create().parse_overrides(lines)
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(job) for job in batches[0]]


def plan_sweep(argv: Sequence[str], hydra_cfg: Any = None) -> SweepPlan | None:
    """Resolve the sweep folder and job list of ``argv``; None if this is not a multirun.

    The hydra section is composed without the sweep values (they cannot be composed), so
    ``hydra.sweep.dir`` and ``hydra.sweeper.params`` reflect config files, experiment and
    command line; ``hydra_cfg``: that section already composed (the CLI's start-up check has).
    Returns None when composition fails: Hydra then reports the error itself.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from .api import CONFIG_MODULE, CONFIG_NAME
    from ..schema import register_configs

    from .overrides import command_overrides, normalize_argv, search_path

    argv = normalize_argv(argv)  # posterior=<path> -> posterior_path=<path> (run_main has done it already)
    try:
        parsed = OverridesParser.create().parse_overrides(command_overrides(list(argv)))
    except Exception:  # noqa: BLE001 - Hydra reports bad overrides itself
        return None
    plain = [ov.input_line for ov in parsed if not ov.is_sweep_override()]
    task = [ov.input_line for ov in parsed if not ov.get_key_element().startswith("hydra")]
    register_configs()
    try:
        if hydra_cfg is None:
            GlobalHydra.instance().clear()
            with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
                cfg = compose(config_name=CONFIG_NAME, overrides=search_path(list(argv)) + plain,
                              return_hydra_config=True)
            hydra_cfg = cfg.hydra
        multirun = is_multirun_flag(argv) or str(OmegaConf.select(hydra_cfg, "mode")).endswith("MULTIRUN")
        if not multirun:
            return None
        sweep_dir = Path(str(hydra_cfg.sweep.dir))
        return SweepPlan(sweep_dir, basic_sweeper_jobs(hydra_cfg, task))
    except Exception:  # noqa: BLE001 - composition errors are Hydra's (or prevalidate's) to report
        return None
    finally:
        GlobalHydra.instance().clear()


def prepare_sweep(argv: list[str], plan: SweepPlan) -> list[str]:
    """Set the progress environment for the jobs; pin the sweep folder into ``argv``.

    The folder is pinned (``hydra.sweep.dir=<resolved path>``) so a ``${now:...}`` in it
    resolves once, and the launching process knows where the jobs write.
    """
    session = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    os.environ[ENV_SESSION] = session
    os.environ[ENV_START] = repr(time.time())
    os.environ[ENV_TOTAL] = str(len(plan.jobs)) if plan.jobs is not None else "?"
    os.environ[ENV_LAUNCHER_PID] = str(os.getpid())
    return pin_sweep_dir(argv, plan.sweep_dir)


def pin_sweep_dir(args: list[str], sweep_dir: Path | None) -> list[str]:
    """``args`` with ``hydra.sweep.dir=<sweep_dir>`` at the end, unless they name the folder."""
    if sweep_dir is not None and not any(a.startswith("hydra.sweep.dir=") for a in args):
        return [*args, f"hydra.sweep.dir={sweep_dir}"]
    return list(args)


def finish_sweep(plan: SweepPlan) -> int:
    """Print the sweep's last line; return the exit code (1 if any job failed)."""
    if plan.sweep_dir is None:
        return 0
    counts = progress_counts(plan.sweep_dir, os.environ.get(ENV_SESSION, ""))
    elapsed = time.time() - float(os.environ.get(ENV_START, time.time()))
    total = sum(counts.values())
    print(f"sweep done: {total} runs (ran {counts['ran']}, skipped {counts['skipped']} already finished, "
          f"failed {counts['failed']}) in {_clock(elapsed)} -> {plan.sweep_dir}\n"
          f"report: dropout-sim report {plan.sweep_dir}", flush=True)
    if counts["failed"]:
        print(f"dropout-sim: {counts['failed']} run(s) failed; see failed.json in their folders "
              f"(dropout-sim report lists them)", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_counts(sweep_dir: Path, session: str) -> dict[str, int]:
    """Jobs of ``session`` finished so far, by status (file sizes: one byte per job)."""
    base = Path(sweep_dir) / PROGRESS_DIR / session
    counts = {}
    for status in STATUSES:
        try:
            counts[status] = (base / status).stat().st_size
        except OSError:
            counts[status] = 0
    return counts


def record_progress(sweep_dir: Path, status: str, message: str) -> str:
    """Count this job under ``status`` and print (and return) the progress line."""
    session = os.environ.get(ENV_SESSION, "unknown")
    base = Path(sweep_dir) / PROGRESS_DIR / session
    base.mkdir(parents=True, exist_ok=True)
    fd = os.open(base / status, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    counts = progress_counts(sweep_dir, session)
    done = sum(counts.values())
    total_text = os.environ.get(ENV_TOTAL, "?")
    total = int(total_text) if total_text.isdigit() else None
    elapsed = time.time() - float(os.environ.get(ENV_START, time.time()))
    if total:
        left = elapsed / done * max(0, total - done) if done else 0.0
        head = f"[{done:>{len(str(total))}}/{total} {done / total:4.0%}]"
        eta = f", ~{_clock(left)} left"
    else:
        head, eta = f"[{done}/?]", ""
    line = (f"{head} ran {counts['ran']}  skipped {counts['skipped']}  failed {counts['failed']} | "
            f"{_clock(elapsed)} elapsed{eta} | {message}")
    # one write per line: parallel workers share the terminal, and print() on an unbuffered
    # stream writes the text and the newline separately, so lines could interleave
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return line


# --------------------------------------------------------------------------------------
# the job
# --------------------------------------------------------------------------------------
_watching = False


def watch_launcher() -> None:
    """In a worker process the sweep's launching process started (joblib, submitit local),
    exit when that process is gone, so killing a sweep never leaves workers running on.

    Only a direct child of the launcher watches (its parent pid is the launcher's): a cluster
    job, whose parent is the scheduler on another machine, never does. Once per process.
    """
    global _watching
    text = os.environ.get(ENV_LAUNCHER_PID, "")
    if _watching or not text.isdigit() or int(text) == os.getpid() or os.getppid() != int(text):
        return
    _watching = True
    launcher = int(text)

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(1.0)
        print(f"dropout-sim: the sweep's launching process {launcher} is gone; worker {os.getpid()} exits",
              file=sys.stderr, flush=True)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="dropout-sim-watch-launcher", daemon=True).start()


def _resume_enabled() -> bool:
    return os.environ.get(ENV_RESUME, "1").strip().lower() not in ("0", "false", "no", "off")


def finished_with_hash(run_dir: Path, cfg_hash: str) -> bool:
    """True if ``run_dir`` holds a whole run of the config with hash ``cfg_hash`` computed by
    the running code (:func:`dropout_sim.runs.results.finished_run`)."""
    return finished_run(run_dir, cfg_hash, code_fingerprint()["fingerprint"])


def failure_record_path(sweep_dir: Path, run_dir: Path) -> Path:
    """Where the failure of a run whose folder is unwritable is recorded, in the sweep folder."""
    try:
        rel = Path(run_dir).resolve().relative_to(Path(sweep_dir).resolve()).as_posix()
    except ValueError:
        rel = Path(run_dir).name
    return Path(sweep_dir) / FAILURES_DIR / (rel.replace("/", "__") + ".json")


def record_unwritable(sweep_dir: Path, run_dir: Path, message: str, overrides: Sequence[str],
                      cfg_hash: str) -> None:
    """Record in the sweep folder that ``run_dir`` could not be written (the report counts it failed)."""
    record = {"error": "PermissionError", "message": message, "overrides": list(overrides),
              "config_hash": cfg_hash, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(failure_record_path(sweep_dir, run_dir), json.dumps(record, indent=2))


def folder_problem(run_dir: Path) -> str | None:
    """Why a run cannot write its folder (exists but read-only, or cannot be created), or None."""
    run_dir = Path(run_dir)
    probe = run_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not _can_write(probe):
        return f"{probe} is not writable"
    return None


def _can_write(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried: permission bits say nothing to root,
    nor about read-only mounts)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write-test."):
            return True
    except OSError:
        return False


def clear_run_dir(run_dir: Path) -> None:
    """Remove the results, failure marker and temp files of an earlier attempt in ``run_dir``.

    ``summary.json`` goes first, so from here until the new run finishes the folder does not
    look complete; the other result files go too, so a re-run that writes fewer files (say
    without ``students.csv``) leaves none from the older config beside its own.
    """
    run_dir = Path(run_dir)
    for name in (SUMMARY_FILE, FAILED_FILE):
        (run_dir / name).unlink(missing_ok=True)
    for name in RESULT_FILES:
        try:
            (run_dir / name).unlink()
        except OSError:  # missing, or not removable: then writing it fails and is recorded
            pass
    if run_dir.is_dir():
        for tmp in run_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def write_failure(run_dir: Path, exc: BaseException, overrides: Sequence[str],
                  cfg_hash: str | None = None, config: Any = None) -> None:
    """Record a failed job in ``run_dir/failed.json`` (atomic write)."""
    record = {
        "error": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "overrides": list(overrides),
        "config_hash": cfg_hash,
        "seed": getattr(config, "seed", None),
        "replicate": getattr(config, "replicate", None),
        "dropout_sim_version": __version__,
        "code_fingerprint": code_fingerprint()["fingerprint"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_text(Path(run_dir) / FAILED_FILE, json.dumps(record, indent=2))


def run_task(cfg: Any) -> dict | None:
    """One Hydra job: validate, skip if already finished, run, write; record any failure.

    In a single run (no ``-m``) a bad config exits with code 2 and other errors propagate;
    in a multirun they are recorded in ``failed.json`` and the sweep continues.
    """
    import logging

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .api import run_simulation
    from ..schema import ConfigError, to_config

    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    out_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    job_num = int(hc.job.num) if multirun else None
    sweep_dir = Path(hc.sweep.dir) if multirun else None
    what = (f"#{job_num} " if multirun else "") + (" ".join(overrides) or "(defaults)")
    t0 = time.perf_counter()
    if multirun:
        watch_launcher()

    try:
        config = to_config(cfg)
    except ConfigError as exc:
        if not multirun:
            fail(str(exc))
        with run_lock(out_dir):
            clear_run_dir(out_dir)
            write_failure(out_dir, exc, overrides)
        record_progress(sweep_dir, "failed", f"{what}: FAILED bad config: {exc}")
        return None

    cfg_hash = config_hash(config_yaml(config))
    problem = folder_problem(out_dir)
    if problem is not None:
        message = f"cannot write the run folder: {problem}"
        if not multirun:
            fail(message)
        record_unwritable(sweep_dir, out_dir, message, overrides, cfg_hash)
        record_progress(sweep_dir, "failed", f"{what}: FAILED {message}")
        return None

    with run_lock(out_dir):  # another process working in this folder: wait, then look again
        if multirun and _resume_enabled() and finished_with_hash(out_dir, cfg_hash):
            record_progress(sweep_dir, "skipped", f"{what}: already finished (same config hash {cfg_hash} "
                            "and code fingerprint)")
            return {"status": "skipped", "config_hash": cfg_hash}

        clear_run_dir(out_dir)
        if multirun:
            failure_record_path(sweep_dir, out_dir).unlink(missing_ok=True)
        try:
            result = run_simulation(config, out_dir=out_dir,
                                    extra_meta={"overrides": overrides, "job_num": job_num})
        except Exception as exc:  # noqa: BLE001 - the task wrapper records every failure
            write_failure(out_dir, exc, overrides, cfg_hash, config)
            if not multirun:
                raise
            logging.getLogger(__name__).error("run failed: %s\n%s", what, traceback.format_exc())
            record_progress(sweep_dir, "failed", f"{what}: FAILED {type(exc).__name__}: {exc}")
            return None

    s = result.summary
    seconds = time.perf_counter() - t0
    headline = describe_completion(s)
    if multirun:
        record_progress(sweep_dir, "ran", f"{what}: {headline} ({seconds:.2f} s)")
    else:
        print(f"{config.regime.name} seed={config.seed} replicate={config.replicate} n={config.cohort.size}: "
              f"{headline} -> {out_dir}")
        groups = describe_groups(s)
        if groups:
            print(groups)
    return {"status": "ran", "completion_5y": s["completion_5y"], "config_hash": cfg_hash}


# --------------------------------------------------------------------------------------
# experiments (the scripts under experiments/)
# --------------------------------------------------------------------------------------
def dropout_sim_command() -> list[str]:
    """The command line that runs the installed ``dropout-sim`` with this interpreter.

    ``-P`` keeps the current directory off ``sys.path``, so running from a source checkout
    uses the installed package (whose configs are ``dropout_sim.configs``), not the tree.
    """
    return [sys.executable, "-P", "-m", "dropout_sim"]


def run_experiment(name: str, overrides: Sequence[str] = (), sweep_dir: str | Path | None = None,
                   report_args: Sequence[str] = (), workers: int | None = None, fresh: bool = False) -> int:
    """Run ``configs/experiment/<name>.yaml`` as a multirun, then ``dropout-sim report`` on it.

    Output goes to ``sweep_dir`` (default ``multirun/<name>`` under the current directory);
    finished runs with an identical config are kept (resume) unless ``fresh``. ``workers``
    sets the launcher's ``n_jobs`` (default: all cores). Returns the exit code.
    """
    import shlex
    import shutil
    import subprocess

    sweep_dir = Path(sweep_dir or Path("multirun") / name)
    if fresh and sweep_dir.exists():
        shutil.rmtree(sweep_dir)
    cmd = [*dropout_sim_command(), "-m", f"experiment={name}", f"hydra.sweep.dir={sweep_dir}"]
    if workers:
        cmd.append(f"hydra.launcher.n_jobs={int(workers)}")
    cmd += list(overrides)
    print("$ dropout-sim " + shlex.join(cmd[4:]), flush=True)
    code = subprocess.call(cmd)
    if code not in (0, 1):  # 1 = some runs failed: the report lists them
        return code
    report = [*dropout_sim_command(), "report", str(sweep_dir), *report_args]
    print("$ dropout-sim " + shlex.join(report[4:]), flush=True)
    return subprocess.call(report) or code


def experiment_main(name: str, report_args: Sequence[str] = (), argv: Sequence[str] | None = None) -> int:
    """Command line of the scripts in ``experiments/``: run one canonical experiment and report.

    ``python experiments/<name>.py [--workers N] [--out DIR] [--fresh] [override ...]``
    """
    import argparse

    parser = argparse.ArgumentParser(
        description=f"Run configs/experiment/{name}.yaml as a sweep (resuming finished runs), then report.")
    parser.add_argument("--workers", type=int, default=None, help="parallel runs (default: all cores)")
    parser.add_argument("--out", default=None, help=f"sweep folder (default: multirun/{name})")
    parser.add_argument("--fresh", action="store_true", help="delete the sweep folder first (no resume)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. cohort.size=10000")
    args = parser.parse_args(argv)
    return run_experiment(name, args.overrides, args.out, report_args, args.workers, args.fresh)
