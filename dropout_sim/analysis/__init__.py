"""Analyses over runs: reports and figures, validation patterns, calibration, the ODD tables.

Uses :mod:`dropout_sim.runs` and :mod:`dropout_sim.model`; used only by :mod:`dropout_sim.app`.
"""
