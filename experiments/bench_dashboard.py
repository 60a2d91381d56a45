#!/usr/bin/env python3
"""Dashboard speed: time to first numbers and to 20 paired replicates of a 3,000-student county.

Measures what the page waits for after a control changes, through the same code path:
validation (:meth:`Scenario.check`, which composes scenario and baseline with Hydra) and the
background runner (:class:`~dropout_sim.app.scenarios.LocalScenarioRunner`, worker processes
already started, as in ``dropout-sim dashboard``). Two cases:

* **cold**: neither scenario nor baseline has run (the page's first load): 2 x N runs;
* **slider moved**: screening start 4 -> 0 with the baseline cached: N runs.

"First numbers" = the first pair (scenario and baseline replicate 0) is in. The page adds up to
0.3 s of debounce and 0.25 s of polling on top. Wall times depend on the machine's load (the
load average is printed beside them); the CPU seconds per run do much less, so the last two
columns estimate an idle machine: validation plus one run's CPU time for the first pair (the
scenario's and the baseline's first runs go to two workers at once), and the runs' CPU time
spread over the workers for all pairs.

    python experiments/bench_dashboard.py [--size 3000] [--replicates 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from dropout_sim.app.planner import BASELINE, SCENARIO, Results, Scenario, build_controls
from dropout_sim.app.scenarios import LocalScenarioRunner
from dropout_sim.runs.api import compose_config


def measure(runner: LocalScenarioRunner, sc: Scenario, label: str) -> None:
    t0 = time.perf_counter()
    errors = sc.check()
    assert not errors, errors
    t_check = time.perf_counter() - t0
    handle = runner.start({BASELINE: sc.composed[BASELINE], SCENARIO: sc.composed[SCENARIO]}, range(sc.replicates))
    res = Results()
    first = None
    cpu: list[float] = []
    for r in handle.results(timeout=600):
        res.add(r.scenario, r.replicate, r.summary, r.curve)
        if not r.cached:
            cpu.append(r.cpu_seconds)
        if first is None and res.pairs():
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    # on an idle machine: validation + one run per uncached scenario for the first pair, and the
    # runs' CPU time spread over the workers for all pairs
    per_run = sum(cpu) / len(cpu) if cpu else 0.0
    first_idle = t_check + per_run
    all_idle = t_check + sum(cpu) / runner.workers
    print(f"{label:<14} {t_check:>8.2f} {first:>13.2f} {total:>12.2f} {len(cpu):>5} {per_run:>10.2f} "
          f"{first_idle:>11.1f} {all_idle:>10.1f}  {res.headline():<24} load {os.getloadavg()[0]:.1f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3000, help="students per cohort")
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    args = parser.parse_args(argv)
    base = [f"cohort.size={args.size}"]
    controls = build_controls(compose_config(base))
    values = {c.key: c.default for c in controls}
    values["replicates"] = args.replicates
    runner = LocalScenarioRunner(args.workers)
    t0 = time.perf_counter()
    runner.warm_up()
    print(f"dashboard runner: {args.size:,}-student county (warm-up {compose_config(base).county.warmup_years} y, "
          f"72 months), {args.replicates} paired replicates, {runner.workers} workers, {os.cpu_count()} CPUs; "
          f"workers started in {time.perf_counter() - t0:.1f} s")
    print(f"{'case':<14} {'check s':>8} {'first pair s':>13} {'all pairs s':>12} {'runs':>5} {'CPU s/run':>10} "
          f"{'idle first':>11} {'idle all':>10}  {'headline':<24}")
    try:
        # nothing cached: a scenario (screening from month 8) and the baseline, 2 x N runs. (The page's
        # very first load shows today's services against themselves: one config, N runs.)
        measure(runner, Scenario(controls, dict(values, **{"intervention.screening_start_month": 8}), base), "cold")
        measure(runner, Scenario(controls, dict(values, **{"intervention.screening_start_month": 0}), base),
                "slider moved")
    finally:
        runner.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
