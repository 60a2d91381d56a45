"""Runs: composing configs, running the model, writing results, sweeps and resume.

Uses :mod:`dropout_sim.model`; used by :mod:`dropout_sim.analysis` and :mod:`dropout_sim.app`.
"""
