#!/usr/bin/env python3
"""Sweep cost: overhead share, n_jobs=2 vs 1 speed-up, and resume time of ``dropout-sim -m``.

The sweep is the main job's shape (its 4 regimes, from ``configs/experiment/regime_comparison.yaml``,
x ``--replicates`` paired replicates of ``--size`` students, 72 months; 80 runs at the defaults),
run as users run it: ``dropout-sim -m ...`` in a subprocess, timed from start to end (Python and
Hydra start-up, the start-up check, composition, every run folder written; the report is not
included). It prints

* **simulation** - the same runs' model construction + ``model.run()`` alone, one after another
  in this process (configs built beforehand, not timed);
* **overhead share** - ``(sweep with n_jobs=1 - simulation) / sweep with n_jobs=1``: everything
  but the simulation (start-up, composition, writing results), in wall time and in CPU time
  (the command's and its workers'; robust to a busy machine), the CPU split into a fixed part
  (the resume's CPU: start-up and planning, no runs) and a part per run;
* **speed-up** - sweep time with ``n_jobs=1`` over ``n_jobs=2``;
* **resume** - the ``n_jobs=2`` sweep run again into its finished folder (every run skipped);
* **runner's own work per run** - 8 runs through ``BatchRunner(n_jobs=1)`` writing run folders
  against the same 8 bare simulations, CPU in this process (less noisy than the sweeps).

``--compare joblib`` repeats the sweeps with Hydra's joblib launcher (the path before the batch
runner: one Hydra composition per run). Timings on a shared machine vary from run to run.

    python experiments/bench_sweep.py [--replicates 20] [--size 3000] [--compare joblib]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dropout_sim.runs.sweep import dropout_sim_command, plan_sweep


def main_job_regimes() -> tuple[str, ...]:
    """The regimes the main job sweeps, in its order (``experiment=regime_comparison``, planned
    as the CLI plans it)."""
    plan = plan_sweep(["-m", "experiment=regime_comparison"])
    regimes = [ov.split("=", 1)[1] for job in plan.jobs for ov in job if ov.startswith("regime=")]
    return tuple(dict.fromkeys(regimes))


REGIMES = main_job_regimes()


def sweep(sweep_dir: Path, workers: int, replicates: int, size: int,
          launcher: str | None) -> tuple[int, float, float]:
    """(finished runs, wall seconds, CPU seconds of the command and its workers) of ``dropout-sim -m``."""
    cmd = [*dropout_sim_command(), "-m", f"regime={','.join(REGIMES)}", f"replicate=range(0,{replicates})",
           f"cohort.size={size}", f"hydra.launcher.n_jobs={workers}", f"hydra.sweep.dir={sweep_dir}"]
    if launcher:
        cmd.insert(-2, f"hydra/launcher={launcher}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    before = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=sweep_dir.parent, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return len(list(sweep_dir.rglob("summary.json"))), seconds, _children_cpu() - before


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes and their reaped children."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def simulation_seconds(replicates: int, size: int) -> tuple[float, float]:
    """Model construction + run of every run of the sweep, serially, nothing written."""
    import logging

    from dropout_sim.model.model import DropoutModel
    from dropout_sim.runs.batch import Composer

    logging.getLogger("MESA").setLevel(logging.WARNING)
    composer = Composer([f"cohort.size={size}"])
    configs = [composer.config([f"regime={r}", f"replicate={i}"]) for r in REGIMES for i in range(replicates)]
    wall = cpu = 0.0
    for cfg in configs:
        t0, c0 = time.perf_counter(), time.process_time()
        DropoutModel(cfg).run()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    return wall, cpu


def runner_cpu_per_run(size: int, n: int = 8) -> tuple[float, float]:
    """(simulation, batch runner) CPU seconds per run, in this process: ``n`` bare simulations, then
    the same ``n`` runs through one ``BatchRunner(n_jobs=1)`` batch writing run folders."""
    import logging

    from dropout_sim.model.model import DropoutModel
    from dropout_sim.runs.batch import BatchRunner, Composer

    logging.getLogger("MESA").setLevel(logging.WARNING)
    base = [f"cohort.size={size}"]
    runs = [[f"regime={REGIMES[i % len(REGIMES)]}", f"replicate={i}"] for i in range(n)]
    composer = Composer(base)
    configs = [composer.config(r) for r in runs]
    with tempfile.TemporaryDirectory(prefix="bench_runner_") as tmp, BatchRunner(base, n_jobs=1) as runner:
        # warm-up: one run per regime, so the compositions (the fixed part) are not counted per run
        runner.run([[f"regime={r}", "replicate=999"] for r in REGIMES], [Path(tmp) / f"warm-{r}" for r in REGIMES])
        c0 = time.process_time()
        for cfg in configs:
            DropoutModel(cfg).run()
        sim = time.process_time() - c0
        c0 = time.process_time()
        runner.run(runs, [Path(tmp) / f"run{i}" for i in range(n)])
        batch = time.process_time() - c0
    return sim / n, batch / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=20, help="replicates per regime (the main job: 20)")
    parser.add_argument("--size", type=int, default=3000, help="students per run (the main job: 3000)")
    parser.add_argument("--compare", choices=["joblib"], default=None,
                        help="also time Hydra's joblib launcher (the path before the batch runner)")
    args = parser.parse_args(argv)
    if args.replicates < 1 or args.size < 1:
        parser.error("--replicates and --size must be >= 1")
    n = len(REGIMES) * args.replicates
    print(f"sweep: {len(REGIMES)} regimes x {args.replicates} replicates x {args.size:,} students x 72 months "
          f"= {n} runs; {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start)", flush=True)
    sim, sim_cpu = simulation_seconds(args.replicates, args.size)
    print(f"simulation alone (serial, this process): {sim:.1f} s wall, {sim_cpu:.1f} s CPU "
          f"({sim_cpu / n:.2f} s CPU per run)", flush=True)
    sim_run, batch_run = runner_cpu_per_run(args.size)
    print(f"runner's own work per run (config, validation, run folder), one process: "
          f"{(batch_run - sim_run) * 1000:.0f} ms CPU = {(batch_run - sim_run) / batch_run:.1%} of a run", flush=True)
    launchers = [("dropout_sim (batch runner)", None)] + ([("joblib (before)", "joblib")] if args.compare else [])
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for name, launcher in launchers:
            times, cpus = {}, {}
            for workers in (1, 2):
                d = Path(tmp) / f"{launcher or 'batch'}_{workers}"
                runs, times[workers], cpus[workers] = sweep(d, workers, args.replicates, args.size, launcher)
                assert runs == n, f"{runs} of {n} runs finished"
            _, resume, resume_cpu = sweep(Path(tmp) / f"{launcher or 'batch'}_2", 2, args.replicates, args.size,
                                          launcher)
            overhead, overhead_cpu = times[1] - sim, cpus[1] - sim_cpu
            per_run = max(0.0, overhead_cpu - resume_cpu) / n
            print(f"\n{name}\n"
                  f"  n_jobs=1: {times[1]:6.1f} s wall, {cpus[1]:6.1f} s CPU; everything but the simulation: "
                  f"{overhead / times[1]:5.1%} of wall, {overhead_cpu / cpus[1]:5.1%} of CPU "
                  f"(fixed ~{resume_cpu:.1f} s CPU + {per_run * 1000:.0f} ms CPU per run)\n"
                  f"  n_jobs=2: {times[2]:6.1f} s wall, {cpus[2]:6.1f} s CPU; speed-up {times[1] / times[2]:.2f}x (wall)\n"
                  f"  resume of the finished sweep: {resume:.1f} s wall, {resume_cpu:.1f} s CPU", flush=True)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f} (wall times and the speed-up need an idle machine;"
              f" CPU shares do not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
