#!/usr/bin/env python3
"""Capacity: PPT x health staff posts per 1,000 students at half, default and double (pattern 6).

Sweeps ``configs/experiment/capacity.yaml`` into ``multirun/capacity`` and reports against the
default staffing, with a heat map of completion and hours used against capacity per agency
(``report/figures/heatmap.png``, ``agency_hours.png``).

    python experiments/capacity.py [--workers 2] [--fresh] [regime=colocated ...]
"""

import sys

from dropout_sim.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("capacity", ["--baseline", "ppt.posts_per_1000=1 health.posts_per_1000=2"]))
