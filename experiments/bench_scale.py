"""Benchmark: student-months per second and peak memory of one run, by cohort size.

    python experiments/bench_scale.py                 # 10k, 100k, 1M students, 60 months, co-located
    python experiments/bench_scale.py 10000 100000    # chosen sizes

Each size runs in a fresh subprocess (so peak RSS is that run's own), single-threaded BLAS,
all five agencies active. Prints wall time, student-months per second and peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from dropout_sim import compose_config, DropoutModel
size = int(sys.argv[1])
cfg = compose_config([f"cohort.size={size}", "regime=colocated", "horizon_months=60",
                      "output.students_table=false"])
t0 = time.perf_counter()
model = DropoutModel(cfg)
t1 = time.perf_counter()
model.run()
t2 = time.perf_counter()
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": size, "build_s": t1 - t0, "run_s": t2 - t1, "peak_mb": peak_mb}))
"""


def main(sizes: list[int]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"{'students':>10} {'build s':>8} {'run s':>8} {'student-months/s':>17} {'peak MB':>8}")
    for size in sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(size)], env=env, check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rate = size * 60 / r["run_s"]
        print(f"{size:>10,} {r['build_s']:>8.2f} {r['run_s']:>8.2f} {rate:>17,.0f} {r['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
