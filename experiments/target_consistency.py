#!/usr/bin/env python3
"""Can the section-9 targets all hold at once? Overall completion implied by the grade-point bands.

Overall completion is the band completions weighted by the share of students in each band. The
band targets of ``configs/targets/section9.yaml`` come from other cohorts (2003/2005, a 2022
report) than the headline (the 2013 cohort), so with the grade-point distribution the model
draws (fitted to the 2020 register means) they need not add up to the headline. This script
draws a large intake with the composed config (no simulation) and prints each band's share and
target, and the overall completion the bands imply at their targets and at the lower and upper
edges of their tolerances, beside the headline target.

    python experiments/target_consistency.py [--targets section9] [--students 200000] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse

import numpy as np

from dropout_sim import compose_config
from dropout_sim.analysis.calibrate import cohort_allowances, load_targets
from dropout_sim.model.intake import draw_cohort
from dropout_sim.model.metrics import band_shares
from dropout_sim.rng import Streams

BAND_KEY = "completion_5y_by_grade_points."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="section9")
    ap.add_argument("--students", type=int, default=200_000)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    cfg = compose_config(args.overrides)
    targets = {t.key: t for t in load_targets(args.targets)}
    gp = draw_cohort(cfg.cohort, Streams(cfg.seed, 0).generator("cohort.0"), args.students, cfg.population)["grade_points"]
    rows, shares, mid, lo, hi = [], [], [], [], []
    for name, share in band_shares(gp).items():
        t = targets.get(BAND_KEY + name)
        if t is None:
            raise SystemExit(f"targets {args.targets!r} have no {BAND_KEY}{name}")
        shares.append(share)
        mid.append(t.value)
        src_tol = t.source_tolerance
        lo.append(max(0.0, t.value - src_tol))
        hi.append(min(1.0, t.value + src_tol))
        rows.append((name, share, t.value, src_tol))
    print(f"grade points drawn: {args.students:,} students, mean {gp.mean():.1f}\n")
    delta, allowance = cohort_allowances(list(targets.values()), gp, BAND_KEY)
    print(f"{'band':>6} {'share':>7} {'target':>7} {'tol':>6} {'allowance':>10} {'used':>6}")
    for name, share, value, tol in rows:
        a = allowance[BAND_KEY + name]
        print(f"{name:>6} {100 * share:6.1f}% {100 * value:6.1f}% {100 * tol:5.1f}% {100 * a:9.1f}% "
              f"{100 * np.hypot(tol, a):5.1f}%")
    s = np.array(shares)
    print(f"\noverall completion the bands imply: {100 * s @ np.array(mid):.1f} % at their targets "
          f"[{100 * s @ np.array(lo):.1f} %, {100 * s @ np.array(hi):.1f} %] over their tolerances")
    head = targets.get("completion_5y")
    if head is not None:
        print(f"headline target completion_5y: {100 * head.value:.1f} % +/- {100 * head.tolerance:.1f} "
              f"[{100 * (head.value - head.tolerance):.1f} %, {100 * (head.value + head.tolerance):.1f} %]")
    print(f"common logit shift that makes the bands imply the headline: {delta:+.3f}; 'allowance' is each "
          "band's change under it,\n'used' the tolerance with the allowance in quadrature "
          "(tol = the source's tolerance, without the allowance)")


if __name__ == "__main__":
    main()
