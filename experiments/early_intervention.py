#!/usr/bin/env python3
"""Early intervention: screening start month x risk threshold (brief section 4, pattern 5).

Sweeps ``configs/experiment/early_intervention.yaml`` into ``multirun/early_intervention``
and reports against today's practice (screening after first grades, month 4; threshold 0.35),
with a heat map of completion within 60 months over the two keys
(``report/figures/heatmap.png``).

    python experiments/early_intervention.py [--workers 2] [--fresh] [regime=colocated ...]
"""

import sys

from dropout_sim.runs.sweep import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("early_intervention",
                             ["--baseline", "screening_start_month=4 risk_threshold=0.35"]))
