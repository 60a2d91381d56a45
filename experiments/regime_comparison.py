#!/usr/bin/env python3
"""Regime comparison, the main job: siloed vs the NAV pilot vs all five co-located vs a lead worker.

Sweeps ``configs/experiment/regime_comparison.yaml`` (4 regimes x 20 paired replicates of a
county with 3,000 students per cohort, all cores through the batch runner) into ``multirun/regime_comparison`` and reports:
the summary table (completion within 60 months with 95 % intervals and the paired difference
against siloed) and the path of the completion-curve figure come last. Re-running skips the
runs already finished with the same config.

    python experiments/regime_comparison.py [--workers 2] [--fresh] [cohort.size=10000 ...]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("regime_comparison", ["--baseline", "siloed"]))
