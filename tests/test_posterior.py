"""posterior=<name or path> draw=<k>: weighted resampling of calibration particles, deterministic in k."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_sim import compose_config
from dropout_sim import posterior as post
from dropout_sim.schema import ConfigError


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def particles(tmp_path):
    return _write(tmp_path / "particles.csv",
                  "dynamics.dropout_intercept,progression.pass_threshold,weight\n"
                  "-7.0,0.30,0.1\n-7.2,0.33,0.0\n-7.4,0.36,0.6\n-7.6,0.39,0.3\n")


def test_draw_is_deterministic_in_k_and_follows_the_weights(particles):
    p = post.load(particles)
    first = [p.particle(k) for k in range(400)]
    assert first == [p.particle(k) for k in range(400)]  # same k, same particle
    counts = np.bincount(first, minlength=4) / 400
    assert counts[1] == 0  # weight 0 is never drawn
    assert counts[2] > counts[3] > counts[0]  # 0.6 > 0.3 > 0.1
    assert abs(counts[2] - 0.6) < 0.08


def test_draw_override_sets_the_particle_values(particles):
    p = post.load(particles)
    for k in (0, 1, 7):
        cfg = compose_config([f"posterior={particles}", f"draw={k}"])
        i = p.particle(k)
        assert cfg.dynamics.dropout_intercept == pytest.approx(p.values[i, 0])
        assert cfg.progression.pass_threshold == pytest.approx(p.values[i, 1])
        assert cfg.draw == k
    # the folder works as well as the file; no draw = draw 0
    assert compose_config([f"posterior={particles.parent}"]).dynamics.dropout_intercept == \
        pytest.approx(p.values[p.particle(0), 0])


def test_every_scenario_of_a_draw_shares_the_particle(particles):
    a = compose_config([f"posterior={particles}", "draw=3", "regime=siloed"])
    b = compose_config([f"posterior={particles}", "draw=3", "regime=colocated"])
    assert a.dynamics.dropout_intercept == b.dynamics.dropout_intercept


@pytest.mark.parametrize("text, message", [
    ("dynamics.dropout_intercept\n-7.0\n", "no 'weight' column"),
    ("dynamics.dropout_intercept,weight\n-7.0,-0.5\n-7.2,1\n", "weights must be finite and >= 0"),
    ("dynamics.dropout_intercept,weight\n-7.0,0\n", "weights sum to 0"),
    ("dynamics.dropout_intercept,weight\n", "no particles"),
    ("dynamics.nope,weight\n-7.0,1\n", "not a config key"),
    ("regime.name,weight\n1,1\n", "not a numeric config key"),
    ("dynamics.dropout_intercept,weight\nabc,1\n", "numbers only"),
    ("dynamics.dropout_intercept,weight\n99,1\n", "dynamics.dropout_intercept"),  # outside the valid range
])
def test_bad_posterior_files_are_one_line_errors(tmp_path, text, message):
    path = _write(tmp_path / "particles.csv", text)
    with pytest.raises(ConfigError, match=message) as info:
        compose_config([f"posterior={path}", "draw=0"])
    assert "\n" not in str(info.value)


def test_bad_names_and_draw_without_posterior(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        compose_config(["posterior=no_such_posterior"])
    with pytest.raises(ConfigError, match="no particles.csv"):
        compose_config([f"posterior={tmp_path}"])
    with pytest.raises(ConfigError, match="needs a posterior"):
        compose_config(["draw=2"])


def test_cli_refuses_a_bad_posterior_in_one_line(tmp_path):
    import subprocess
    import sys

    path = _write(tmp_path / "particles.csv", "dynamics.dropout_intercept,weight\n-7.0,-1\n")
    proc = subprocess.run([sys.executable, "-m", "dropout_sim", f"posterior={path}", "draw=1", "cohort.size=100",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "weights" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_summary_table_is_weighted(particles):
    rows = {r["parameter"]: r for r in post.summary_table(post.load(particles))}
    r = rows["dynamics.dropout_intercept"]
    assert r["mean"] == pytest.approx(0.1 * -7.0 + 0.6 * -7.4 + 0.3 * -7.6)
    assert r["q05"] <= r["q50"] <= r["q95"] and r["q50"] == -7.4
