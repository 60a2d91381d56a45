#!/usr/bin/env python3
"""Decomposition: what each mechanism of co-location contributes, paired, with 95 % intervals.

Sweeps ``configs/experiment/decomposition.yaml`` into ``multirun/decomposition``: all five
agencies co-located with one mechanism at a time taking its co-located value (the rest stay
siloed), none (the baseline) and all twelve together; then the report's table shows each
contribution against the baseline with its paired 95 % interval.

    python experiments/decomposition.py [--workers 2] [--fresh] [cohort.size=10000 ...]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("decomposition", ["--baseline", "regime.mechanisms=[]"]))
