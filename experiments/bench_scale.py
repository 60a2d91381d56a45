"""Benchmark: the cost of a county run against the one-cohort model, and how it scales.

    python experiments/bench_scale.py                      # 3,000 (and the reference), 30k, 300k per cohort
    python experiments/bench_scale.py 3000 1000000         # chosen cohort sizes
    python experiments/bench_scale.py --reference none     # skip the one-cohort reference

Each run is a fresh subprocess (so peak RSS is that run's own) with single-threaded BLAS: the
default county (``county.warmup_years`` of warm-up, one focal cohort followed 72 months, cohorts
entering every August), siloed, without the per-student table. For each cohort size it prints
the build and run time, the county's student-months simulated per second and the peak memory.

``--reference COMMIT`` (default: the last one-cohort commit, e17b038) extracts that version of
the package with ``git archive`` into a temporary folder and times its 3,000-student run under
the same conditions, best of ``--repeat`` runs each, so the ratio "county / one cohort" is
measured on the same machine at the same time (the issue's budget: at most 3x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from dropout_sim import compose_config, DropoutModel
size = int(sys.argv[1])
overrides = [f"cohort.size={size}", "output.students_table=false"]
cfg = compose_config(overrides)
t0 = time.perf_counter()
model = DropoutModel(cfg)
t1 = time.perf_counter()
model.run()
t2 = time.perf_counter()
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": size, "build_s": t1 - t0, "run_s": t2 - t1, "peak_mb": peak_mb,
                  "months": int(getattr(model, "months", 0) or cfg.horizon_months)}))
"""

REPO = Path(__file__).resolve().parents[1]


def run_child(size: int, kind: str, pythonpath: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), kind], env=env, check=True,
                         capture_output=True, text=True, cwd=pythonpath or None).stdout
    return json.loads(out.strip().splitlines()[-1])


def best_of(repeat: int, size: int, kind: str, pythonpath: str | None = None) -> dict:
    runs = [run_child(size, kind, pythonpath) for _ in range(repeat)]
    return min(runs, key=lambda r: r["run_s"] + r["build_s"])


def extract(commit: str, into: Path) -> str:
    """The package at ``commit`` as an importable folder (configs where its installed layout puts them)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    configs = into / "configs"
    if configs.is_dir() and not (into / "dropout_sim" / "configs").exists():
        (into / "dropout_sim" / "configs").symlink_to(configs, target_is_directory=True)
    return str(into)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, help="students per entry cohort (default: 3000 30000 300000)")
    ap.add_argument("--reference", default="e17b038",
                    help="commit of the one-cohort model to time at 3,000 students ('none' to skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size at 3,000 students (best is kept)")
    args = ap.parse_args(argv)
    sizes = args.sizes or [3000, 30_000, 300_000]

    print(f"{'students/cohort':>15} {'build s':>8} {'run s':>8} {'county months':>13} {'peak MB':>8}")
    county = {}
    for size in sizes:
        r = best_of(args.repeat if size <= 10_000 else 1, size, "county")
        county[size] = r
        print(f"{size:>15,} {r['build_s']:>8.2f} {r['run_s']:>8.2f} {r['months']:>13} {r['peak_mb']:>8.0f}")

    if args.reference != "none" and 3000 in county:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = extract(args.reference, Path(tmp))
            except subprocess.CalledProcessError as exc:
                print(f"reference {args.reference}: not available ({exc}); skipped")
                return
            ref = best_of(args.repeat, 3000, "cohort", path)
        total_ref = ref["build_s"] + ref["run_s"]
        total = county[3000]["build_s"] + county[3000]["run_s"]
        print(f"\none-cohort model at {args.reference}, 3,000 students, {ref['months']} months: "
              f"{total_ref:.3f} s (peak {ref['peak_mb']:.0f} MB)")
        print(f"county with one focal cohort of 3,000: {total:.3f} s = {total / total_ref:.2f} x the one-cohort run "
              "(budget: 3 x)")


if __name__ == "__main__":
    main()
