#!/usr/bin/env python3
"""The model beside every calibration target, as the Markdown table of ``docs/calibration.md``.

Runs ``--replicates`` replicates of ``--size`` students (the calibrated scenario: regime siloed,
the seed of the calibration spec) through the batch runner and prints, per target of
``--targets``, the register value, its tolerance, the model's mean with a 95 % t-interval over
replicates, whether the mean is within the tolerance, and the source. A band target from another
cohort shows its tolerance as ``source ⊕ cohort allowance = used`` (added in quadrature).

    python experiments/calibration_table.py [--targets section9] [--replicates 4] [--size 10000] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import time

from dropout_sim.analysis.calibrate import load_targets, summary_value
from dropout_sim.analysis.intervals import mean_ci
from dropout_sim.runs.batch import BatchRunner

SPEC_SEED = 20130801
"""The seed of ``configs/calibration_spec/section9.yaml``."""


def fmt(value: float, key: str) -> str:
    return f"{value:.1f}" if key.startswith("grade_points_mean") else f"{100 * value:.1f} %"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="section9")
    ap.add_argument("--replicates", type=int, default=4)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (default scenario: regime=siloed)")
    args = ap.parse_args(argv)
    targets = [t for t in load_targets(args.targets) if t.statistic is None]
    base = ["regime=siloed", f"seed={SPEC_SEED}", f"cohort.size={args.size}", "output.students_table=false",
            *args.overrides]
    t0 = time.perf_counter()
    with BatchRunner(base, n_jobs=args.workers) as runner:
        outcomes = runner.run([[f"replicate={r}"] for r in range(args.replicates)])
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise SystemExit(f"{len(bad)} runs failed: {bad[0].error}")
    print(f"{args.replicates} replicates x {args.size:,} students, {' '.join(base)}: "
          f"{time.perf_counter() - t0:.0f} s\n")
    print("| target (summary.json key) | register | tolerance | model [95% CI] | met | source |")
    print("| --- | ---: | ---: | ---: | :---: | --- |")
    met = 0
    for t in targets:
        mean, lo, hi, _ = mean_ci([summary_value(o.summary, t.key) for o in outcomes])
        ok = t.met(mean)
        met += ok
        tol = t.tolerance_text(lambda x: fmt(x, t.key)).replace("(+)", "⊕")
        print(f"| `{t.key}` | {fmt(t.value, t.key)} | {tol} | {fmt(mean, t.key)} "
              f"[{fmt(lo, t.key)}, {fmt(hi, t.key)}] | {'yes' if ok else '**no**'} | {t.source} |")
    print(f"\n{met} of {len(targets)} met")


if __name__ == "__main__":
    main()
