#!/usr/bin/env python3
"""Co-location against slack: the paired co-location gain over agencies.staffing_scale (pattern 8).

Sweeps ``configs/experiment/slack.yaml`` into ``multirun/slack`` (siloed and co-located at a
quarter to double today's staff) and reports against siloed services at today's staffing; the
figure ``report/figures/gain_curve.png`` shows the gain at each staffing level with its 95 %
interval, ``agency_hours.png`` where the hours go.

    python experiments/slack.py [--workers 2] [--fresh] [cohort.size=10000 ...]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("slack", ["--baseline", "regime=siloed agencies.staffing_scale=1.0"]))
