"""Fuzz: configs drawn across the schema's whole valid range run to the end with every monthly
invariant intact.

A seeded sampler (numpy Generator: the same configs every time, so a failure reproduces) draws
every parameter of :mod:`dropout_sim.schema` from its declared range - often its very edges -
and every list from its allowed choices. Only the keys that set how much work a run is
(cohort size, horizon, warm-up, focal cohorts, trajectory sample) are drawn from a small part
of their range, so the test stays fast; the large values are covered by the memory check and
``experiments/bench_scale.py``. A draw that breaks a cross-field rule (say a screening start
past the horizon) must be refused in one line, and is drawn again.
"""

from __future__ import annotations

import copy
import math
from dataclasses import fields, is_dataclass

import numpy as np
import pytest

from dropout_sim import ConfigError, DropoutModel, compose_config
from dropout_sim.model.metrics import summary
from dropout_sim.model.students import COMPLETED, NO_MONTH
from dropout_sim.runs.results import summary_problem
from dropout_sim.schema import AgencySettings, agency_configs, min_warmup_years, validate

CHEAP = {"cohort.size": (1, 300), "horizon_months": (1, 72), "county.focal_cohorts": (1, 2),
         "output.trajectory_sample": (0, 50)}
"""Keys drawn from part of their range: they set the amount of work, not what can happen."""


def _draw(rng: np.random.Generator, key: str, value, meta: dict):
    choices, lo, hi = meta.get("choices"), meta.get("lo"), meta.get("hi")
    if isinstance(value, bool):
        return bool(rng.random() < 0.5)
    if choices is not None:
        if isinstance(value, list):
            return [c for c in choices if rng.random() < 0.5]
        return str(rng.choice(list(choices)))
    if lo is None and hi is None:
        return value
    lo, hi = CHEAP.get(key, (lo, hi))
    if value is None and rng.random() < 0.5:  # an optional key: unset
        return None
    u = rng.random()
    if isinstance(value, int) or (value is None and float(lo).is_integer() and float(hi).is_integer()):
        lo, hi = int(lo), int(hi)
        return lo if u < 0.15 else hi if u < 0.3 else int(rng.integers(lo, hi, endpoint=True))
    if u < 0.15:
        return float(lo)
    if u < 0.3:
        return float(hi)
    if lo > 0 and hi / lo > 1e3:  # wide positive ranges: every order of magnitude
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def _fill(rng: np.random.Generator, obj, prefix: str = "") -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            _fill(rng, value, key + ".")
        elif isinstance(value, dict):
            for name, sub in value.items():
                if is_dataclass(sub):
                    _fill(rng, sub, f"{key}.{name}.")
        elif f.metadata and key != "regime.name":
            setattr(obj, f.name, _draw(rng, key, value, f.metadata))


def sample_config(rng: np.random.Generator, base):
    """One valid config with every parameter drawn; cross-field rules satisfied by redrawing."""
    for _ in range(200):
        cfg = copy.deepcopy(base)
        _fill(rng, cfg)
        agencies = agency_configs(cfg)
        names = list(agencies)
        cfg.agencies["staffing_scale"] = _draw(rng, "agencies.staffing_scale", 1.0,
                                               fields(AgencySettings)[0].metadata)
        cfg.regime.colocated = [n for n in names if rng.random() < 0.5]
        # roles held by at most one agency: keep the drawn flag on one of them
        for role in ("screens", "hub"):
            holders = [n for n in names if getattr(agencies[n], role)]
            for n in holders[1:]:
                setattr(agencies[n], role, False)
        cfg.county.warmup_years = min_warmup_years(agencies) + int(rng.integers(0, 2))
        try:
            return validate(cfg)
        except ConfigError as exc:
            assert "\n" not in str(exc) and "allowed" in str(exc)
    raise AssertionError("no valid config in 200 draws")


def check_month(model: DropoutModel, t: int) -> None:
    st = model.students
    n = st.n
    counts = np.bincount(st.status, minlength=4)
    assert counts.sum() == n and counts.size == 4
    assert np.array_equal(st.status == COMPLETED, st.completion_month != NO_MONTH)
    assert np.all(st.completion_month[st.completion_month != NO_MONTH] <= t)
    assert len(np.unique(st.gid)) == n
    for state in (st.mastery, st.strain, st.belonging, st.engagement, st.trust):
        assert np.all(np.isfinite(state)) and np.all((state >= 0) & (state <= 1))
    for agency in model.staffed():
        led = agency.ledger
        assert math.isfinite(agency.capacity) and agency.capacity >= 0
        assert led.hours_used <= agency.capacity * (1 + 1e-9) + 1e-9, (agency.name, t)
        assert min(led.hours_help, led.hours_assessment, led.hours_coordination, led.hours_meetings) >= 0
        assert not np.any((agency.case_left > 0) & (agency.queued_since != NO_MONTH))
        assert agency.case_left.shape[0] == n
    assert model.referrals.wants.shape[0] == n


def _run(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    cfg = sample_config(rng, compose_config([]))
    model = DropoutModel(cfg)
    while model.month < model.months:
        t = model.month
        model.step()
        check_month(model, t)
    s = summary(model)
    s["meta"] = {}
    assert summary_problem(s) is None, summary_problem(s)
    assert s["students"] == cfg.cohort.size * cfg.county.focal_cohorts
    return s


@pytest.mark.parametrize("seed", range(8))
def test_drawn_configs_run_and_keep_the_monthly_invariants(seed):
    _run(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8, 60))
def test_many_drawn_configs_run_and_keep_the_monthly_invariants(seed):
    _run(seed)


def test_the_sampler_reaches_the_edges_and_is_seeded():
    base = compose_config([])
    a = sample_config(np.random.default_rng(1), base)
    b = sample_config(np.random.default_rng(1), base)
    assert a == b
    draws = [sample_config(np.random.default_rng(s), base) for s in range(120)]  # an empty co-located set is 1 in 32
    shares = [d.cohort.vocational_share for d in draws]
    assert 0.0 in shares and 1.0 in shares  # both edges of a share are drawn
    assert len({d.intervention.queue_order for d in draws}) == 2
    assert any(not d.regime.colocated for d in draws) and any(len(d.regime.colocated) >= 3 for d in draws)


@pytest.mark.parametrize("sd, skew", [(17.66, 20.0), (25.0, 20.0), (25.0, -20.0), (25.0, 0.0)])
def test_grade_points_with_extreme_spread_and_skew_are_drawn(sd, skew):
    """Found by the fuzz: at a wide, skewed spread the location search ran off the scale (its
    truncated mean of an empty window was 0) and redrawing onto 10-60 never ended."""
    from dropout_sim.model.intake import draw_grade_points
    from dropout_sim.schema import PopulationConfig

    pop = PopulationConfig(grade_points_sd=sd, grade_points_skew=skew)
    n = 4000
    gender = np.zeros(n, dtype=int)
    education = np.full(n, 3)                                  # higher_long: the highest mean (47.7)
    gp = draw_grade_points(pop, np.random.default_rng(0), gender, education)
    assert np.all((gp >= 10) & (gp <= 60))
    target = pop.grade_points_by_parents_education["higher_long"] + pop.grade_points_gender_gap / 2
    # the group's mean on the scale holds roughly (the location search uses a 64 x 64 quadrature,
    # coarse when only ~3 % of the distribution lies on the scale)
    assert abs(gp.mean() - target) < 5.0
