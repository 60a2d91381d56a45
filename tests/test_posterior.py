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


# --------------------------------------------------------------------------------------
# posterior=<name> is a config group (configs/posterior/), posterior=<path> the key posterior_path
# --------------------------------------------------------------------------------------
import subprocess
import sys

from dropout_sim.runs.overrides import normalize_argv, normalize_posterior

SHIPPED = "section9_abc"
TINY = ["cohort.size=300", "county.warmup_years=2"]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dropout_sim", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_the_shipped_posterior_is_an_option_of_the_posterior_config_group():
    root = post.packaged_dir()
    assert root.name == "posterior" and (root / f"{SHIPPED}.yaml").is_file()
    assert (root / SHIPPED / "particles.csv").is_file()
    assert post.shipped_names() == [SHIPPED] or SHIPPED in post.shipped_names()
    from dropout_sim.runs.batch import Composer

    assert Composer().is_group(f"posterior={SHIPPED}"), "Hydra reads posterior=<name> as a group choice"
    p = post.load(SHIPPED)
    for k in (0, 1, 5):
        cfg = compose_config([f"posterior={SHIPPED}", f"draw={k}"])
        assert cfg.posterior == SHIPPED and cfg.posterior_path is None
        for key, value in p.draw(k).items():
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == pytest.approx(value), key


@pytest.mark.parametrize("line, expected", [
    (f"posterior={SHIPPED}", f"posterior={SHIPPED}"),  # an option: stays the group choice
    (f"posterior={SHIPPED},{SHIPPED}", f"posterior={SHIPPED},{SHIPPED}"),
    ("posterior=/tmp/fit/particles.csv", "posterior_path=/tmp/fit/particles.csv"),
    ("posterior=./fit", "posterior_path=./fit"),
    ("posterior=fit.csv", "posterior_path=fit.csv"),
    ("posterior=no_such_name", "posterior_path=no_such_name"),  # refused later, listing the names
    ("posterior=~/cal/fit", "posterior_path='~/cal/fit'"),  # Hydra cannot parse an unquoted ~
    (f"posterior={SHIPPED},./fit", f"posterior_path={SHIPPED},./fit"),  # mixed: swept as posterior_path
    ("posterior=/a,/b", "posterior_path=/a,/b"),
    ("+posterior=./fit", "posterior_path=./fit"),
    ("posterior=null", "~posterior"),
    ("posterior_path=./fit", "posterior_path=./fit"),
    ("~posterior", "~posterior"),
    ("regime=colocated", "regime=colocated"),
    ("cohort.posterior=x", "cohort.posterior=x"),
])
def test_normalize_posterior_rewrites_paths_only(line, expected):
    assert normalize_posterior([line]) == [expected]
    assert normalize_posterior([expected]) == [expected], "idempotent"


def test_normalize_argv_leaves_flags_alone_and_knows_config_dir_options(tmp_path):
    (tmp_path / "posterior").mkdir()
    (tmp_path / "posterior" / "mine.yaml").write_text("# @package _global_\nposterior: /x\n")
    argv = ["-m", "--config-dir", str(tmp_path), "posterior=mine", "draw=0,1", "hydra.run.dir=posterior=x"]
    assert normalize_argv(argv) == argv
    assert normalize_argv(["posterior=mine"]) == ["posterior_path=mine"]
    assert normalize_argv(["-cd", "/x/y", "posterior=/x/y"]) == ["-cd", "/x/y", "posterior_path=/x/y"]


def test_path_forms_compose_like_the_name(particles, tmp_path, monkeypatch):
    p = post.load(particles)
    want = p.values[p.particle(4), 0]
    monkeypatch.chdir(particles.parent)
    for form in (str(particles), str(particles.parent), "./particles.csv", ".", f"'{particles}'"):
        cfg = compose_config([f"posterior={form}", "draw=4"])
        assert cfg.dynamics.dropout_intercept == pytest.approx(want), form
        assert cfg.posterior_path is None and cfg.posterior == form.strip("'")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert compose_config(["posterior=~", "draw=4"]).dynamics.dropout_intercept == pytest.approx(want)
    # the key itself works too, and so does a Config built by hand with it
    assert compose_config([f"posterior_path={particles}", "draw=4"]).dynamics.dropout_intercept == \
        pytest.approx(want)
    from dropout_sim.schema import to_config

    cfg = compose_config()
    cfg.posterior_path, cfg.draw = str(particles), 4
    cfg = to_config(cfg)
    assert cfg.posterior == str(particles) and cfg.dynamics.dropout_intercept == pytest.approx(want)


def test_name_and_path_forms_in_the_batch_runner(particles, tmp_path):
    from dropout_sim.runs.batch import BatchRunner, Composer

    shipped = post.packaged_dir() / SHIPPED
    composer = Composer(TINY)
    runs = [[f"posterior={SHIPPED}", "draw=2"], [f"posterior={shipped}", "draw=2"],
            [f"posterior={shipped / 'particles.csv'}", "draw=2"], [f"posterior={particles}", "draw=2"]]
    assert composer.split(runs[0]) == ((f"posterior={SHIPPED}",), ("draw=2",))
    assert composer.split(runs[1]) == ((), (f"posterior_path={shipped}", "draw=2"))
    a, b, c, d = (composer.config(r) for r in runs)
    assert a.dynamics.dropout_intercept == b.dynamics.dropout_intercept == c.dynamics.dropout_intercept
    assert a.progression.pass_threshold == b.progression.pass_threshold
    assert d.dynamics.dropout_intercept == pytest.approx(post.load(particles).draw(2)["dynamics.dropout_intercept"])
    # a base with the name, runs with draws; and runs over paths: every run is validated and runs
    with BatchRunner([*TINY, "horizon_months=12", f"posterior={SHIPPED}"], n_jobs=1) as runner:
        runner.check([["draw=0"], ["draw=1"]])
        out = runner.run([["draw=0"], ["draw=1"]], out_dirs=[tmp_path / "d0", tmp_path / "d1"])
        assert [o.status for o in out] == ["ran", "ran"]
        again = runner.run([["draw=0"], ["draw=1"]], out_dirs=[tmp_path / "d0", tmp_path / "d1"])
        assert [o.status for o in again] == ["skipped", "skipped"], "a finished posterior run is resumed"
    with BatchRunner([*TINY, "horizon_months=12"], n_jobs=1) as runner:
        out = runner.run([[f"posterior={particles}", "draw=1"], [f"posterior={particles.parent}", "draw=1"]])
        assert [o.status for o in out] == ["ran", "ran"]
        with pytest.raises(ConfigError, match="not found; allowed: .*section9_abc"):
            runner.check([["posterior=no_such_posterior"]])
        with pytest.raises(ConfigError, match="both set"):
            runner.check([[f"posterior={SHIPPED}", f"posterior_path={particles}"]])


def test_both_set_is_one_line():
    with pytest.raises(ConfigError, match="posterior = 'section9_abc' and posterior_path = .* are both set") as info:
        compose_config([f"posterior={SHIPPED}", "posterior_path=/x/particles.csv"])
    assert "\n" not in str(info.value)


def test_cli_name_and_path_forms_and_one_line_refusals(particles, tmp_path):
    shipped = post.packaged_dir() / SHIPPED
    for i, form in enumerate((SHIPPED, str(shipped), str(shipped / "particles.csv"))):
        proc = _cli(f"posterior={form}", "draw=1", *TINY, "horizon_months=12", f"hydra.run.dir={tmp_path / str(i)}")
        assert proc.returncode == 0, proc.stderr
        text = (tmp_path / str(i) / "config.yaml").read_text()
        assert f"posterior: {form}\n" in text and "posterior_path: null" in text
    for args, message in (
            (["posterior=no_such_posterior"], "posterior = 'no_such_posterior' not found; allowed: .*section9_abc"),
            ([f"posterior={SHIPPED}", f"posterior_path={particles}"], "are both set"),
            ([f"posterior={tmp_path / 'nothing'}"], "no particles.csv"),
            (["-m", f"posterior={SHIPPED},no_such_posterior"], "not found"),
    ):
        proc = _cli(*args, *TINY, f"hydra.run.dir={tmp_path / 'bad'}", f"hydra.sweep.dir={tmp_path / 'bad'}")
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        import re

        assert re.search(message, proc.stderr), proc.stderr
        assert not (tmp_path / "bad").exists()


def test_cli_sweeps_over_paths_and_mixed_lists(particles, tmp_path):
    sweep = tmp_path / "s"
    proc = _cli("-m", f"posterior={SHIPPED},{particles.parent}", "draw=0,1", *TINY, "horizon_months=12",
                f"hydra.sweep.dir={sweep}", "hydra.launcher.n_jobs=1")
    assert proc.returncode == 0, proc.stderr
    configs = sorted(sweep.rglob("config.yaml"))
    configs = [c for c in configs if c.parent.name != ".hydra"]
    assert len(configs) == 4
    used = sorted({line for c in configs for line in c.read_text().splitlines() if line.startswith("posterior:")})
    assert used == sorted({f"posterior: {SHIPPED}", f"posterior: {particles.parent}"})


def test_a_sweep_over_draws_of_the_shipped_name_reports_two_intervals_and_resumes(tmp_path):
    import pandas as pd

    sweep = tmp_path / "s"
    args = ["-m", "regime=siloed,colocated", "replicate=range(0,2)", "draw=range(0,2)", f"posterior={SHIPPED}",
            *TINY, "horizon_months=60", f"hydra.sweep.dir={sweep}", "hydra.launcher.n_jobs=1"]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "ran 8, skipped 0" in proc.stdout
    assert any(f"posterior={SHIPPED}" in d.name for d in sweep.iterdir()), "run folders named by the name"
    again = _cli(*args)
    assert again.returncode == 0 and "ran 0, skipped 8" in again.stdout, again.stdout[-400:]
    rep = subprocess.run([sys.executable, "-m", "dropout_sim", "report", str(sweep), "--no-figures"],
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    df = pd.read_csv(sweep / "report" / "summary.csv")
    row = df.dropna(subset=["diff_pp"]).iloc[0]
    assert row["scenario"] == "colocated" and row["draws"] == 2
    assert row["diff_replicate_lo"] <= row["diff_pp"] <= row["diff_replicate_hi"]
    assert row["diff_parameter_lo"] <= row["diff_pp"] <= row["diff_parameter_hi"]


def test_a_posterior_option_in_a_config_dir_is_a_name(particles, tmp_path):
    from types import SimpleNamespace

    from dropout_sim.analysis.abc import option_yaml, posterior_places

    root = tmp_path / "cal" / "posterior"
    folder, option, point, use = posterior_places("mine", str(root))
    assert (folder, option, point) == (root / "mine", root / "mine.yaml", tmp_path / "cal" / "calibration" / "mine.yaml")
    assert use == f"dropout-sim --config-dir {(tmp_path / 'cal').resolve()} posterior=mine draw=<k>"
    other = posterior_places("mine", str(tmp_path / "elsewhere"))
    assert other[1] is None and other[3] == f"dropout-sim posterior={(tmp_path / 'elsewhere' / 'mine').resolve()} draw=<k>"
    assert posterior_places(SHIPPED, None)[1] == post.packaged_dir() / f"{SHIPPED}.yaml"
    assert posterior_places(SHIPPED, None)[3] == f"dropout-sim posterior={SHIPPED} draw=<k>"

    folder.mkdir(parents=True)
    (folder / "particles.csv").write_text(particles.read_text())
    option.write_text(option_yaml("mine", str(folder), SimpleNamespace(targets_source="t"), ["a.b"], "cmd", use))
    cfg = compose_config([f"hydra.searchpath=[file://{tmp_path / 'cal'}]", "posterior=mine", "draw=3"])
    assert cfg.posterior == str(folder)
    assert cfg.dynamics.dropout_intercept == pytest.approx(post.load(particles).draw(3)["dynamics.dropout_intercept"])


def test_info_defaults_lists_the_chosen_posterior_option():
    from dropout_sim.runs.overrides import command_overrides

    assert command_overrides(["--info", "defaults", "posterior=x"]) == ["posterior=x"]
    assert command_overrides(["--info", "posterior=x"]) == ["posterior=x"]
    proc = _cli("--info", "defaults", f"posterior={SHIPPED}")
    assert proc.returncode == 0, proc.stderr
    assert f"posterior/{SHIPPED}" in proc.stdout
    help_text = _cli("--help").stdout
    assert f"posterior: {SHIPPED}" in help_text, "--help lists the group and its options"


def test_an_experiment_sweeping_names_and_paths_in_its_sweeper_params(particles, tmp_path):
    (tmp_path / "cfg" / "experiment").mkdir(parents=True)
    (tmp_path / "cfg" / "experiment" / "p.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n"
        f"      posterior: {particles.parent},{SHIPPED}\n      draw: 0,1\n")
    sweep = tmp_path / "s"
    proc = _cli("-m", "--config-dir", str(tmp_path / "cfg"), "experiment=p", *TINY, "horizon_months=12",
                f"hydra.sweep.dir={sweep}", "hydra.launcher.n_jobs=1")
    assert proc.returncode == 0, proc.stderr
    used = [line for c in sweep.rglob("config.yaml") if c.parent.name != ".hydra"
            for line in c.read_text().splitlines() if line.startswith("posterior:")]
    assert sorted(used) == sorted([f"posterior: {particles.parent}"] * 2 + [f"posterior: {SHIPPED}"] * 2)
