#!/usr/bin/env python3
"""Capacity: school x OT staff posts per 1,000 students at half, default and double (pattern 6).

Sweeps ``configs/experiment/capacity.yaml`` into ``multirun/capacity`` and reports against the
default staffing, with a heat map of completion (``report/figures/heatmap.png``) and hours
used against capacity per agency (``agency_hours.png``). Whether gains shrink as capacity
grows is read off the heat map here; ``dropout-sim validate --patterns 6`` checks saturation.

    python experiments/capacity.py [--workers 2] [--fresh] [regime=colocated ...]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("capacity", ["--baseline", "school.posts_per_1000=2 ot.posts_per_1000=1"]))
