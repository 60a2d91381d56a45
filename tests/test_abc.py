"""calibrate --method abc: priors in YAML, the effect-size target, a posterior that posterior=<path>
draw=<k> reads back, and one-line refusals of bad input (checked before pyabc is needed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from dropout_sim import compose_config
from dropout_sim.analysis import calibrate as cal
from dropout_sim.analysis import effects
from dropout_sim.posterior import load

HAS_PYABC = importlib.util.find_spec("pyabc") is not None
SMALL = ["county.warmup_years=2", "horizon_months=60"]


def _spec(tmp_path, parameters: str, **extra) -> str:
    body = {"targets": "[default, effect_size]", "overrides": "[regime=siloed]", "seed": 3, "replicates": 1,
            "cohort_size": 200, "population_size": 6, "generations": 2, "min_epsilon": 0.5,
            "budget_minutes": 5, "predictive_draws": 3, **extra}
    text = "parameters:\n" + parameters + "".join(f"{k}: {v}\n" for k, v in body.items())
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("parameters, extra, message", [
    ("  progression.pass_threshold: {lo: 0.3, hi: 1.5}\n", {}, "outside the valid range"),
    ("  dynamics.no_such_thing: {lo: 0, hi: 1}\n", {}, "not a numeric config key"),
    ("  regime.name: {lo: 0, hi: 1}\n", {}, "not a numeric config key"),
    ("  agencies.nobody.posts_per_1000: {lo: 0.5, hi: 2}\n", {}, "not a key of the composed config"),
    ("  dynamics.dropout_intercept: {lo: -8, hi: -7, prior: cauchy}\n", {}, "allowed: uniform, normal"),
    ("  dynamics.dropout_intercept: {lo: -8, hi: -7}\n", {"budget_minutes": 0}, "budget-minutes = 0"),
    ("  dynamics.dropout_intercept: {lo: -8, hi: -7}\n", {"loss": "outside"}, "not allowed with --method abc"),
])
def test_bad_abc_input_is_one_line_and_writes_nothing(tmp_path, capsys, parameters, extra, message):
    out = tmp_path / "out"
    code = cal.main(["--method", "abc", "--spec", _spec(tmp_path, parameters, **extra), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_budget_zero_on_the_command_line(tmp_path, capsys):
    code = cal.main(["--method", "abc", "--budget-minutes", "0", "--out", str(tmp_path / "o")])
    assert code == 2 and "budget-minutes" in capsys.readouterr().err


def test_targets_files_combine_and_the_effect_target_is_a_statistic():
    targets = cal.load_targets(["default", "effect_size"])
    effect = [t for t in targets if t.key == "help_odds_ratio"][0]
    assert effect.statistic == "help_odds_ratio" and effect.value == pytest.approx(1.7)
    assert effect.counterfactual == {"agencies.staffing_scale": 0}
    spec = cal.load_spec("abc")
    assert {t.key for t in spec.targets} >= {"completion_5y", "help_odds_ratio"}
    assert spec.parameters and all(p.lo < p.hi for p in spec.parameters)


def test_odds_ratio_of_matched_students():
    fact = {"gid": np.arange(6), "at_risk": np.array([1, 1, 1, 1, 0, 1], bool),
            "helped": np.array([1, 1, 1, 1, 1, 0], bool), "done5": np.array([1, 1, 1, 0, 1, 0], bool)}
    cf = {"gid": np.arange(6), "at_risk": np.ones(6, bool), "helped": np.zeros(6, bool),
          "done5": np.array([1, 0, 0, 0, 1, 1], bool)}
    # students 0-3: factual 3 of 4 complete, counterfactual 1 of 4 (+0.5 each cell)
    assert effects.odds_ratio(fact, cf) == pytest.approx((3.5 / 1.5) / (1.5 / 3.5))


def test_help_odds_ratio_is_paired_and_moves_with_the_help_effect():
    cfg = compose_config(["cohort.size=1500", *SMALL])
    strong, summary = effects.help_odds_ratio(cfg)
    assert summary["completion_5y"] > 0 and strong > 1.5
    weak, _ = effects.help_odds_ratio(compose_config(["cohort.size=1500", "intervention.support_intensity=0.2",
                                                      *SMALL]))
    assert 0.8 < weak < strong
    assert effects.help_odds_ratio(cfg)[0] == strong  # same config and seed: same number


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PYABC, reason="pyabc not installed (pip install '.[calibration]')")
def test_tiny_abc_writes_a_posterior_that_draw_overrides_read(tmp_path, capsys):
    spec = _spec(tmp_path, "  dynamics.dropout_intercept: {lo: -8.0, hi: -6.5}\n"
                           "  intervention.support_intensity: {lo: 0.1, hi: 1.5}\n")
    out = tmp_path / "out"
    code = cal.main(["--method", "abc", "--spec", spec, "--out", str(out), "--name", "tiny", *SMALL])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    # progress per generation (an hour's run shows where it is): the epsilon, then accepted / evaluated and ESS
    progress = [line for line in printed.out.splitlines() if " min] " in line]
    assert any("generation 1: epsilon" in line for line in progress), printed.out
    assert any("effective sample size" in line for line in progress), printed.out
    folder = out / "tiny"
    for name in ("particles.csv", "parameters.csv", "pairplot.png", "predictive.png", "abc_log.txt"):
        assert (folder / name).is_file(), name
    particles = pd.read_csv(folder / "particles.csv")
    assert list(particles.columns) == ["dynamics.dropout_intercept", "intervention.support_intensity", "weight"]
    assert len(particles) == 6 and (particles["weight"] >= 0).all()
    assert particles["dynamics.dropout_intercept"].between(-8.0, -6.5).all()
    params = pd.read_csv(folder / "parameters.csv")
    assert list(params.columns) == ["parameter", "mean", "q05", "q50", "q95"]
    assert (params["q05"] <= params["q50"]).all() and (params["q50"] <= params["q95"]).all()
    post = load(folder)
    cfg = compose_config([f"posterior={folder}", "draw=2"])
    assert cfg.dynamics.dropout_intercept == pytest.approx(post.draw(2)["dynamics.dropout_intercept"])
    point = compose_config([f"hydra.searchpath=[file://{out}]", "+calibration=tiny"])
    assert -8.0 <= point.dynamics.dropout_intercept <= -6.5
