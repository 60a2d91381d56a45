#!/usr/bin/env python3
"""Agencies per case (brief pattern 4): outcomes of helped students by the number of agencies
involved, siloed versus co-located.

Sweeps ``configs/experiment/agencies_per_case.yaml`` into ``multirun/agencies_per_case`` and
reports; the figure is ``report/figures/agencies_per_case.png`` (completion, meetings and
students by 1, 2, 3, 4+ agencies; the per-run numbers are the ``by_agencies_involved.*``
columns of ``report/runs.csv``).

    python experiments/agencies_per_case.py [--workers 2] [--fresh]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("agencies_per_case", ["--baseline", "siloed"]))
