"""The dashboard's scenario logic without a browser: controls, overrides, validation, Reproduce,
paired statistics, and the background runner (streaming, cache, cancellation)."""

from __future__ import annotations

import math
import subprocess

import pytest

from dropout_sim.app.planner import (BASELINE, SCENARIO, Results, Scenario, build_controls, check_overrides,
                                     command, experiment_yaml)
from dropout_sim.app.scenarios import BatchScenarioRunner, pair_overrides
from dropout_sim.runs.api import compose_config, run_simulation
from dropout_sim.runs.batch import BatchRunner, Composer, completion_curve
from dropout_sim.runs.results import config_hash, config_yaml
from dropout_sim.runs.sweep import dropout_sim_command

BASE = ["cohort.size=200", "county.warmup_years=2", "horizon_months=60"]


@pytest.fixture(scope="module")
def controls():
    return build_controls(compose_config(BASE))


def scenario(controls, extra=(), **values) -> Scenario:
    vals = {c.key: c.default for c in controls}
    vals.update({k.replace("__", "."): v for k, v in values.items()})
    return Scenario(controls, vals, list(BASE), list(extra))


def test_controls_carry_the_schema_range_and_the_county_default(controls):
    by_key = {c.key: c for c in controls}
    for key in ("cohort.size", "cohort.vocational_share", "agencies.staffing_scale", "agencies.ppt.posts_per_1000",
                "regime.colocated", "regime.lead_worker.enabled", "intervention.screening_start_month",
                "intervention.info_transfer", "intervention.risk_threshold", "intervention.review_interval_months",
                "intervention.support_intensity", "intervention.queue_order", "laereplass.contracts_per_1000"):
        assert key in by_key, key
        assert key in by_key[key].title
    assert by_key["cohort.size"].default == 200 and by_key["cohort.size"].shared
    assert (by_key["intervention.risk_threshold"].lo, by_key["intervention.risk_threshold"].hi) == (0, 1)
    assert by_key["intervention.queue_order"].choices == ("fifo", "risk")
    assert by_key["regime.colocated"].choices == ("school", "health", "ppt", "nav", "ot")


def test_scenario_overrides_and_the_siloed_baseline_in_the_same_county(controls):
    sc = scenario(controls, cohort__size=500, intervention__screening_start_month=0,
                  regime__colocated=["ppt", "school"])
    assert sc.overrides() == [*BASE, "cohort.size=500", "regime.colocated=[school,ppt]", "regime.name=custom",
                              "intervention.screening_start_month=0"]
    assert sc.baseline_overrides() == [*BASE, "cohort.size=500", "regime=siloed"]
    assert scenario(controls, regime__colocated=["school", "health", "ppt", "nav", "ot"]).overrides()[-1] \
        == "regime=colocated"
    assert scenario(controls, regime__lead_worker__enabled=True).overrides()[-1] == "regime=lead_worker"
    assert sc.check() == {}
    cfg, err = check_overrides(sc.overrides())
    assert err is None and cfg.regime.colocated == ["school", "ppt"] and cfg.cohort.size == 500
    assert config_yaml(cfg) == config_yaml(compose_config(sc.overrides())), "the batch runner's composition = the CLI's"


def test_a_bad_value_gives_the_clis_line_next_to_its_control(controls, tmp_path):
    sc = scenario(controls, intervention__risk_threshold=1.5)
    errors = sc.check()
    assert list(errors) == ["intervention.risk_threshold"]
    proc = subprocess.run([*dropout_sim_command(), *BASE, "intervention.risk_threshold=1.5"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert errors["intervention.risk_threshold"] == proc.stderr.strip()
    # a cross-key rule (screening after the horizon) is the composed config's message
    late = scenario(controls, intervention__screening_start_month=70).check()
    assert list(late) == ["intervention.screening_start_month"] and "past the horizon" in late[
        "intervention.screening_start_month"]
    assert list(scenario(controls, cohort__size=0).check()) == ["cohort.size"]
    assert list(scenario(controls, agencies__ppt__posts_per_1000=-1.0).check()) == ["agencies.ppt.posts_per_1000"]
    typo = scenario(controls, extra=["cohort.sizee=3"]).check()
    assert list(typo) == [""] and typo[""].startswith("dropout-sim: error: ")


def test_reproduce_command_and_yaml_give_the_same_config(controls, tmp_path):
    sc = scenario(controls, intervention__screening_start_month=0, regime__lead_worker__enabled=True,
                  agencies__staffing_scale=1.5)
    overrides = sc.overrides()
    want = config_hash(config_yaml(compose_config(overrides)))
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "dash.yaml").write_text(experiment_yaml(overrides, "dash"))
    got = compose_config([f"hydra.searchpath=[file://{tmp_path}]", "experiment=dash"])
    assert config_hash(config_yaml(got)) == want
    assert command(overrides, 20).startswith("dropout-sim -m cohort.size=200 ")
    assert command(overrides, 20).endswith("'replicate=range(0,20)'")


def test_runner_streams_the_batch_runners_paired_numbers_pair_first_caches_and_cancels():
    base = [*BASE, "regime=siloed"]
    scen = [*BASE, "intervention.screening_start_month=0"]
    runner = BatchScenarioRunner(workers=2)
    try:
        runner.warm_up()
        handle = runner.start({BASELINE: base, SCENARIO: scen}, range(2))
        results, first_pair = Results(), None
        for r in handle.results(timeout=120):
            results.add(r.scenario, r.replicate, r.summary, r.curve)
            first_pair = results.pairs()[0] if first_pair is None and results.pairs() else first_pair
            assert not r.cached
        assert results.pairs() == [0, 1]
        assert first_pair == 0, "pair 0 of both scenarios is worked on first"
        # the page's numbers are the batch runner's for the same overrides (and run_simulation's)
        with BatchRunner(n_jobs=1, probe=completion_curve) as batch:
            outs = batch.run([[*ov, f"replicate={i}"] for ov in (base, scen) for i in range(2)])
        for out, (name, i) in zip(outs, [(n, i) for n in (BASELINE, SCENARIO) for i in range(2)]):
            assert results.summaries[name][i] == out.summary
            assert results.curves[name][i] == out.value
        cfg = compose_config([*scen, "replicate=1"])
        direct = run_simulation(cfg).summary
        assert results.summaries[SCENARIO][1]["completion_5y"] == direct["completion_5y"]
        assert results.curves[SCENARIO][1][59] == pytest.approx(direct["completion_5y"])
        diff = 100 * (results.summaries[SCENARIO][0]["completion_5y"] - results.summaries[BASELINE][0]["completion_5y"]
                      + results.summaries[SCENARIO][1]["completion_5y"] - results.summaries[BASELINE][1]["completion_5y"]) / 2
        shown = results.headline()
        assert shown.split(" pp [")[0] in {f"{diff - 0.01:+.1f}", f"{diff + 0.01:+.1f}"}, shown  # rounding at .x5

        before = runner.runs_started
        again = list(runner.start({BASELINE: base, "same config, other words": [*BASE]}, range(2)).results(timeout=30))
        assert [r.cached for r in again] == [True] * 4, "the baseline is cached (by config hash, not wording)"
        assert runner.runs_started == before
        assert {r.config_hash for r in again} == {outs[0].config_hash, outs[1].config_hash}

        stale = [*BASE, "intervention.risk_threshold=0.2"]
        handle = runner.start({SCENARIO: stale}, range(2, 12))
        stream = handle.results(timeout=120)
        next(stream)
        handle.cancel()
        assert list(stream) == [], "a cancelled run yields nothing more"
        # the runner is free at once for the next scenario: runs in progress were stopped
        nxt = list(runner.start({SCENARIO: [*BASE, "intervention.risk_threshold=0.3"]}, range(1)).results(timeout=120))
        assert len(nxt) == 1 and not nxt[0].cached
        ran = sum(runner.cached(stale, r) is not None for r in range(2, 12))
        assert 1 <= ran <= 1 + runner.workers, "runs not yet started when cancelled never run"
    finally:
        runner.shutdown()


def test_one_worker_still_runs_in_a_worker_process_and_a_bad_scenario_reports_instead_of_hanging():
    with BatchScenarioRunner(workers=1) as runner:
        got = list(runner.start({SCENARIO: [*BASE, "cohort.sizee=3"], BASELINE: [*BASE, "regime=siloed"]},
                                range(1)).results(timeout=120))
        ok = list(runner.start({BASELINE: [*BASE, "regime=siloed"]}, range(1)).results(timeout=120))
        assert runner.batch._pool is not None, "the page's process stays free for the page"
    assert len(ok) == 1 and "completion_5y" in ok[0].summary
    assert len(got) == 2 and all("error" in r.summary for r in got)
    assert "cohort.sizee" in got[0].summary["error"]


def test_a_newer_handle_goes_first_and_the_older_one_resumes_from_the_cache_without_repeats():
    older = {BASELINE: [*BASE, "regime=siloed"], SCENARIO: [*BASE, "intervention.review_interval_months=2"]}
    with BatchScenarioRunner(workers=2) as runner:
        first = runner.start(older, range(20))   # e.g. a tab left open
        stream = first.results(timeout=120)
        got = [next(stream)]
        newer = list(runner.start({SCENARIO: [*BASE, "intervention.review_interval_months=3"]},
                                  range(1)).results(timeout=120))
        assert len(newer) == 1 and "completion_5y" in newer[0].summary
        assert not first.finished.is_set(), "the older handle waits for the newer one"
        got += list(stream)
    keys = [(r.scenario, r.replicate) for r in got]
    assert len(keys) == len(set(keys)) == 40 and all("completion_5y" in r.summary for r in got)


def test_a_killed_worker_fails_its_runs_and_the_next_scenario_gets_new_workers():
    import os
    import signal

    with BatchScenarioRunner(workers=2) as runner:
        handle = runner.start({SCENARIO: [*BASE, "intervention.review_interval_months=4"]}, range(30))
        stream = handle.results(timeout=120)
        next(stream)
        for proc in list(runner.batch._pool._processes.values()):
            os.kill(proc.pid, signal.SIGKILL)
        rest = list(stream)
        assert any("error" in r.summary for r in rest), "the runs lost are reported, not waited for"
        again = list(runner.start({SCENARIO: [*BASE, "intervention.review_interval_months=5"]},
                                  range(1)).results(timeout=120))
    assert len(again) == 1 and "completion_5y" in again[0].summary


def test_results_headline_costs_and_groups_from_whatever_breakdowns_the_summary_has():
    res = Results()
    assert res.headline() == "waiting for the first pair of runs"

    def summary(done, nok, female):
        return {"completion_5y": done, "completed_5y_per_cohort": done * 1000, "costs": {"nok_per_year": nok},
                "completion_5y_by_track": {"academic": done + 0.1, "vocational": done - 0.1},
                "completion_5y_by_gender": {"female": female, "male": done}}

    res.add(BASELINE, 0, summary(0.70, 1e6, 0.75), [0.0])
    res.add(SCENARIO, 0, summary(0.72, 1.2e6, 0.79), [0.0])
    assert res.headline() == "+2.0 pp [interval from 2 replicates]"
    res.add(BASELINE, 1, summary(0.71, 1e6, 0.76), [0.0])
    res.add(SCENARIO, 1, summary(0.74, 1.2e6, 0.78), [0.0])
    assert res.headline() == "+2.5 pp [-3.9, +8.9]"
    groups = {(b, g): p for b, g, p in res.groups()}
    assert set(groups) == {("track", "academic"), ("track", "vocational"), ("gender", "female"), ("gender", "male")}
    assert groups["gender", "female"].diff == pytest.approx(3.0)
    costs = res.costs()
    assert costs["nok_per_extra_completer"] == pytest.approx(2e5 / 25)
    assert math.isnan(costs["benefit_cost_ratio"])
    assert set(res.table()["scenario"]) == {BASELINE, SCENARIO} and "completion_5y_by_gender.female" in res.csv()


def test_dashboard_command_refuses_bad_arguments_with_one_line(capsys):
    from dropout_sim.app.dashboard import main

    assert main(["--port", "70000", "--no-browser"]) == 2
    assert capsys.readouterr().err.strip() == ("dropout-sim: error: --port = 70000 is not allowed; "
                                               "allowed: between 1 and 65535")
    assert main(["--no-browser", "cohort.size=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dropout-sim: error: ") and "\n" not in err


def test_with_a_shipped_posterior_pairs_run_draws_and_the_headline_gets_a_parameter_interval(controls):
    from dropout_sim.app.planner import posterior_pair, shipped_posteriors
    from dropout_sim.posterior import load

    names = shipped_posteriors()
    if not names:
        pytest.skip("no posterior shipped in configs/posterior/")
    by_key = {c.key: c for c in controls}
    assert by_key["posterior"].choices[1:] == tuple(names) and by_key["posterior"].shared
    sc = scenario(controls, posterior=names[0], intervention__screening_start_month=0, replicates=4)
    assert sc.check() == {}
    assert f"posterior={names[0]}" in sc.baseline_overrides(), "scenario and baseline share the posterior"
    assert pair_overrides(3, posterior=True) == ["draw=1", "replicate=1"] and posterior_pair(3) == (1, 1)
    cfg = Composer().config([*sc.overrides(), *pair_overrides(3, posterior=True)])
    assert (cfg.draw, cfg.replicate) == (1, 1)
    for key, value in load(names[0]).draw(1).items():
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == pytest.approx(value), key
    assert "'draw=range(0,2)' 'replicate=range(0,2)'" in command(sc.overrides(), 4, posterior=True)

    with BatchScenarioRunner(workers=2) as runner:
        res = Results(posterior=sc.posterior)
        handle = runner.start({SCENARIO: sc.overrides(), BASELINE: sc.baseline_overrides()}, range(4), posterior=True)
        for r in handle.results(timeout=300):
            res.add(r.scenario, r.replicate, r.summary, r.curve)
    stats = res.draw_stats()
    assert stats["draws"] == 2
    assert res.headline() == (f"{stats['diff_pp']:+.1f} pp [{stats['diff_replicate_lo']:+.1f}, "
                              f"{stats['diff_replicate_hi']:+.1f}]")
    assert res.parameter_interval().startswith(f"Parameter interval ({names[0]}, 2 draws): [")
