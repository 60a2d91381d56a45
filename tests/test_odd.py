"""docs/ODD.md's parameter tables are generated from the schema and configs and must not drift."""

from dropout_sim.analysis import odd
from dropout_sim.schema import iter_params


def test_committed_tables_equal_generated():
    text = odd.ODD_PATH.read_text(encoding="utf-8")
    assert odd.render(text) == text, "docs/ODD.md is out of date: run python -m dropout_sim.analysis.odd"


def test_every_parameter_has_a_row_with_unit_and_source():
    table = odd.parameter_table()
    for row in iter_params():
        assert f"| `{row['key']}` |" in table
        assert row["unit"] and row["source"]


def test_the_committed_fit_is_the_schema_default_and_marked_calibrated():
    """Every parameter of configs/calibration/section9.yaml is a schema default marked 'calibrated'."""
    import importlib.resources as res

    import pytest
    import yaml

    fit = yaml.safe_load((res.files("dropout_sim.configs") / "calibration" / "section9.yaml").read_text())
    fitted = {f"{group}.{key}": value for group, values in fit.items() for key, value in values.items()}
    rows = {r["key"]: r for r in iter_params()}
    assert len(fitted) >= 6
    for key, value in fitted.items():
        assert rows[key]["source"].startswith("calibrated"), key
        assert float(rows[key]["default"]) == pytest.approx(value, rel=1e-3), key


def test_check_mode_detects_drift(tmp_path):
    stale = odd.ODD_PATH.read_text(encoding="utf-8").replace("| `seed` |", "| `seed_renamed` |")
    path = tmp_path / "ODD.md"
    path.write_text(stale, encoding="utf-8")
    assert odd.main(["--check", "--path", str(path)]) == 1
    assert odd.main(["--path", str(path)]) == 0
    assert odd.main(["--check", "--path", str(path)]) == 0
