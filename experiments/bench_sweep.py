#!/usr/bin/env python3
"""Sweep throughput: runs per minute of ``dropout-sim -m`` with 1 and 2 joblib workers.

Each measurement is a fresh sweep (3 regimes x ``--replicates`` replicates of ``--size``
students, 72 months) into a temporary folder, timed from the command's start to its end,
so it includes Hydra's start-up (about 2 s), its per-job config composition and the
writing of every run folder; the report is not included.

    python experiments/bench_sweep.py [--replicates 10] [--size 3000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dropout_sim.runs.sweep import dropout_sim_command


def measure(workers: int, replicates: int, size: int, root: Path) -> tuple[int, float]:
    """(runs, seconds) of one fresh sweep (a new folder: nothing to resume) with ``workers`` processes."""
    sweep_dir = Path(tempfile.mkdtemp(prefix=f"w{workers}_", dir=root))
    cmd = [*dropout_sim_command(), "-m", "regime=siloed,nav_pilot,colocated", f"replicate=range(0,{replicates})",
           f"cohort.size={size}", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}",
           f"hydra.sweep.dir={sweep_dir}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    runs = len(list(sweep_dir.rglob("summary.json")))
    return runs, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--size", type=int, default=3000, help="students per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"sweep: 3 regimes x {args.replicates} replicates x {args.size:,} students x 72 months; "
          f"{os.cpu_count()} CPUs")
    print(f"{'workers':>7}  {'runs':>4}  {'seconds':>7}  {'runs/min':>8}")
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for workers in args.workers:
            runs, seconds = measure(workers, args.replicates, args.size, Path(tmp))
            print(f"{workers:>7}  {runs:>4}  {seconds:>7.1f}  {runs / seconds * 60:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
