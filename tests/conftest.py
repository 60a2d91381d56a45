"""Shared fixtures: composed configs shrunk to tiny cohorts (lightning-hydra-template style)."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import DropoutModel, compose_config

TINY = ["cohort.size=400"]


@pytest.fixture
def make_cfg():
    """Compose the packaged config with overrides (validated); tiny cohort unless overridden."""

    def make(*overrides: str, size: int = 400):
        return compose_config([f"cohort.size={size}", *overrides])

    return make


@pytest.fixture
def make_model(make_cfg):
    def make(*overrides: str, size: int = 400) -> DropoutModel:
        return DropoutModel(make_cfg(*overrides, size=size))

    return make


def completion_rates(summary: dict) -> np.ndarray:
    """(all, academic, vocational) completion within 60 months from a summary dict."""
    t = summary["completion_5y_by_track"]
    return np.array([summary["completion_5y"], t["academic"], t["vocational"]])


def pytest_collection_modifyitems(config, items):
    """Run the modules that set ``RUN_FIRST = True`` first (stable otherwise): under ``pytest -n
    --dist loadfile`` the longest experiment then starts at once on one worker instead of last."""
    items.sort(key=lambda item: not getattr(getattr(item, "module", None), "RUN_FIRST", False))
