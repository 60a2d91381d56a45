"""Configs are the interface: every group option composes and runs; bad values fail at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dropout_sim
from dropout_sim import ConfigError, compose_config, run_simulation
from dropout_sim.schema import agency_configs, iter_params

CONFIG_DIR = Path(dropout_sim.__file__).parent.parent / "configs"


def group_options(group: str) -> list[str]:
    import importlib.resources as res

    folder = res.files("dropout_sim.configs") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("group", ["cohort", "population", "dynamics", "progression", "routes", "laereplass",
                                   "agencies", "regime", "intervention", "output"])
def test_every_option_of_every_group_composes_and_runs(group):
    options = group_options(group)
    assert options, f"no options in group {group}"
    for option in options:
        cfg = compose_config([f"{group}={option}", "cohort.size=150", "horizon_months=14", "county.warmup_years=2"])
        result = run_simulation(cfg)
        assert result.model.month == 24 + 14 and len(result.model.recorder.rows) == 14


def test_shipped_regimes():
    assert {"siloed", "nav_pilot", "colocated"} <= set(group_options("regime"))
    assert compose_config(["regime=siloed"]).regime.colocated == []
    assert sorted(compose_config(["regime=nav_pilot"]).regime.colocated) == ["nav", "school"]
    assert sorted(compose_config(["regime=colocated"]).regime.colocated) == ["health", "nav", "ot", "ppt", "school"]


def test_defaults_are_sensible():
    cfg = compose_config([])
    assert cfg.cohort.size == 3000
    assert cfg.horizon_months >= 60
    assert list(agency_configs(cfg)) == ["school", "health", "ppt", "nav", "ot"]
    assert all(a.posts_per_1000 > 0 for a in agency_configs(cfg).values())


@pytest.mark.parametrize("override, key", [
    ("agencies.ppt.posts_per_1000=-1", "agencies.ppt.posts_per_1000"),
    ("dynamics.stress_event_prob=1.5", "dynamics.stress_event_prob"),
    ("regime.colocated=[school,barnevern]", "regime.colocated"),
    ("cohort.size=0", "cohort.size"),
    ("intervention.screening_start_month=80", "intervention.screening_start_month"),
    ("intervention.review_interval_months=0", "intervention.review_interval_months"),
    ("regime.consent_prob_siloed=-0.1", "regime.consent_prob_siloed"),
    ("agencies.nav.serves=[welfare]", "agencies.nav.serves"),
    ("agencies.ot.capacity_basis=pupils", "agencies.ot.capacity_basis"),
    ("agencies.nav.offices=0", "agencies.nav.offices"),
    ("county.warmup_years=1", "county.warmup_years"),
    ("county.focal_cohorts=40", "county.focal_cohorts"),
    ("regime.start_month=300", "regime.start_month"),
    ("regime.mechanisms=[teleport]", "regime.mechanisms"),
    ("intervention.info_transfer=everything", "intervention.info_transfer"),
])
def test_bad_values_raise_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    message = str(err.value)
    assert key in message and "allowed" in message
    assert "\n" not in message


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    return subprocess.run([sys.executable, "-m", "dropout_sim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("override, key", [
    ("agencies.school.posts_per_1000=-2", "agencies.school.posts_per_1000"),
    ("regime.handoff_drop_siloed=1.2", "regime.handoff_drop_siloed"),
    ("regime.colocated=[school,nav,child_welfare]", "regime.colocated"),
    ("cohort.size=0", "cohort.size"),
    ("intervention.screening_start_month=72", "intervention.screening_start_month"),
    ("cohort.sizee=10", "cohort.sizee"),
])
def test_cli_rejects_bad_input_with_one_line_and_writes_nothing(tmp_path, override, key):
    proc = run_cli([override, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert key.split(".")[-1] in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "outputs").exists()


def test_cli_runs_from_any_directory_and_writes_results(tmp_path):
    run_dir = tmp_path / "somewhere" / "run"
    proc = run_cli(["regime=colocated", "cohort.size=300", "seed=7", f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "completion within 60 months" in proc.stdout
    for name in ("summary.json", "monthly.csv", "students.csv", "config.yaml"):
        assert (run_dir / name).is_file(), name
    assert "regime:\n  name: colocated" in (run_dir / "config.yaml").read_text()


def test_sixth_agency_is_one_config_entry():
    """Child welfare (barnevern), asked for by the document's informants: config only, no code."""
    cfg = compose_config(["cohort.size=1500", "county.warmup_years=2", "agencies=with_child_welfare",
                          "regime.colocated=[school,health,child_welfare]"])
    assert list(agency_configs(cfg))[-1] == "child_welfare"
    result = run_simulation(cfg)
    assert result.summary["agency_hours"]["child_welfare"]["admitted"] > 0
    assert result.summary["agency_hours"]["child_welfare"]["colocated"] is True


def test_schema_documents_every_parameter():
    rows = iter_params()
    assert len(rows) > 60
    for row in rows:
        assert row["unit"], row["key"]
        assert row["doc"], row["key"]


def test_command_overrides_skip_flags_and_their_values():
    from dropout_sim.runs.overrides import command_overrides

    argv = ["-m", "--config-dir", "runs/regime=siloed", "+calibration=mine", "-cn", "config",
            "regime=siloed,colocated", "hydra.sweep.dir=x", "~agencies.ppt"]
    assert command_overrides(argv) == ["+calibration=mine", "regime=siloed,colocated", "hydra.sweep.dir=x",
                                       "~agencies.ppt"]


@pytest.mark.parametrize("override, named", [
    ("+cohort.sise=10000", "cohort.sise"),
    ("+foo=1", "foo"),
    ("++foo=1", "foo"),
    ("+agencies.ppt.bogus=3", "agencies.ppt.bogus"),
    ("+regime.colocated_dealy=1", "regime.colocated_dealy"),
])
def test_keys_the_schema_does_not_declare_are_refused_even_with_plus(override, named):
    with pytest.raises(ConfigError, match=rf"^{named} is not a config key"):
        compose_config([override])


def test_an_unknown_key_gets_a_did_you_mean_hint():
    with pytest.raises(ConfigError, match=r"did you mean cohort\.size\?"):
        compose_config(["+cohort.sise=10000"])


def test_staffing_scale_multiplies_every_agencys_capacity():
    from dropout_sim import DropoutModel

    base = DropoutModel(compose_config(["cohort.size=1000", "county.warmup_years=2"])).run(1)
    half = DropoutModel(compose_config(["cohort.size=1000", "county.warmup_years=2",
                                        "agencies.staffing_scale=0.5"])).run(1)
    for a, b in zip(base.agency_list, half.agency_list):
        assert b.capacity == pytest.approx(0.5 * a.capacity)
        assert a.capacity > 0 or a.cfg.capacity_basis == "target_group"   # OT: nobody outside yet


@pytest.mark.parametrize("value", ["-1", "nan", "abc"])
def test_bad_staffing_scale_is_refused_in_one_line(value):
    with pytest.raises(ConfigError, match=r"^agencies\.staffing_scale"):
        compose_config([f"agencies.staffing_scale={value}"])


def test_an_agency_entry_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match=r"^agencies\.ppt = 3 is not allowed"):
        compose_config(["agencies.ppt=3"])
