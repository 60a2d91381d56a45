#!/usr/bin/env python3
"""Does simulating a sample of the non-focal cohorts change the answer? (``county.nonfocal_share``)

The focal cohorts' students draw the same numbers whatever the share (draws are keyed by
student), so the only way a thinned county can move their outcomes is through the scarcity it
sets: posts, queues, waits, caseloads, contracts and collaboration, all counted with each
simulated non-focal student standing for ``1 / share`` students. This experiment runs the same
replicates with every share given (the first is the reference, normally 1 = everyone) under two
regimes, and prints per share and measure the mean over replicates, the mean paired difference
from the reference with its 95 % t-interval, and that difference in units of the replicate-to-
replicate SD of the measure (how large the change is against a run's own noise).

    python experiments/nonfocal_share.py [--shares 1 0.5] [--replicates 20] [--size 3000] [--workers 2] [OVERRIDE ...]

Measures: completion within normert tid (siloed, co-located), the paired co-location gain, and per
agency the share of working months with a queue, the mean wait (months) and the utilisation (siloed).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from dropout_sim.analysis.intervals import mean_ci
from dropout_sim.runs.batch import BatchRunner

REGIMES = ("siloed", "colocated")
AGENCIES = ("school", "ppt", "health", "nav", "ot")


def measures(summaries: dict[tuple[str, str], list[dict]], share: str) -> dict[str, np.ndarray]:
    """Per measure, one value per replicate."""
    sil, col = summaries[(share, "siloed")], summaries[(share, "colocated")]
    out = {"completion_5y siloed (pp)": np.array([100 * s["completion_5y"] for s in sil]),
           "completion_5y co-located (pp)": np.array([100 * s["completion_5y"] for s in col])}
    out["co-location gain (pp)"] = out["completion_5y co-located (pp)"] - out["completion_5y siloed (pp)"]
    for agency in AGENCIES:
        for key, label, scale in (("queue_month_share", "months with a queue (%)", 100),
                                  ("mean_wait_months", "mean wait (months)", 1),
                                  ("utilisation", "utilisation (%)", 100)):
            vals = [s["agency_hours"][agency].get(key) for s in sil]
            out[f"{agency} {label}"] = np.array([np.nan if v is None else scale * v for v in vals])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shares", nargs="+", default=["1", "0.5"], help="county.nonfocal_share values; the first is the reference")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="further config overrides for every run (e.g. agencies.staffing_scale=0.5)")
    args = ap.parse_args(argv)

    keys, runs = [], []
    for share in args.shares:
        for regime in REGIMES:
            for r in range(args.replicates):
                keys.append((share, regime))
                runs.append([f"county.nonfocal_share={share}", f"regime={regime}", f"replicate={r}"])
    t0 = time.perf_counter()
    with BatchRunner([f"cohort.size={args.size}", "output.students_table=false", *args.overrides], n_jobs=args.workers) as runner:
        outcomes = runner.run(runs)
    summaries: dict[tuple[str, str], list[dict]] = {}
    for key, out in zip(keys, outcomes):
        if not out.ok:
            raise SystemExit(f"run {key} {out.status}: {out.error}")
        summaries.setdefault(key, []).append(out.summary)
    print(f"{len(runs)} runs of {args.size:,} students per cohort in {time.perf_counter() - t0:.0f} s; "
          f"{args.replicates} paired replicates per share and regime\n")

    ref = measures(summaries, args.shares[0])
    print(f"{'measure':<38} {'share ' + args.shares[0]:>12}", end="")
    for share in args.shares[1:]:
        print(f" | {'share ' + share:>12} {'diff [95% CI]':>24} {'diff/SD':>8}", end="")
    print()
    for name, base in ref.items():
        print(f"{name:<38} {np.nanmean(base):12.3f}", end="")
        sd = np.nanstd(base, ddof=1)
        for share in args.shares[1:]:
            other = measures(summaries, share)[name]
            mean, lo, hi, _ = mean_ci(other - base)  # paired by replicate; NaN pairs left out
            print(f" | {np.nanmean(other):12.3f} {f'{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]':>24} "
                  f"{mean / sd if sd > 0 else math.nan:8.2f}", end="")
        print()


if __name__ == "__main__":
    main()
