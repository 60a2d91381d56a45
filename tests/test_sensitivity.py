"""dropout-sim sensitivity: Morris over plausible ranges, Sobol on the Morris top k, paired gains per
CRN replicate, indices.csv in long form, ranked figures, one-line refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dropout_sim.analysis import sensitivity as sens
from dropout_sim.plausible import Range


def _fake_metrics(spec, extra, ranges, X, n_jobs=1):
    """A known model: completion rises with a, colocated adds 2*b (c does nothing); the replicate
    shifts every scenario equally (CRN), so the gain has no replicate noise."""
    out = []
    for x in X:
        v = dict(zip([r.key for r in ranges], x))
        for replicate in range(spec.replicates):
            base = 0.7 + 0.1 * v["a"] + 0.01 * replicate
            out.append({"siloed": base, "colocated": base + 0.02 * v["b"], "early": base + 0.001})
    return out


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(sens, "scenario_metrics", _fake_metrics)
    spec = sens.load_spec("default", quick=True)
    spec.replicates, spec.resamples, spec.trajectories = 3, 50, 6
    ranges = [Range("a", 0.0, 1.0, False, "x"), Range("b", 0.0, 1.0, False, "x"), Range("c", 0.0, 1.0, False, "x")]
    return spec, ranges


def test_gains_are_paired_per_replicate_then_averaged(fake):
    spec, ranges = fake
    X = np.array([[0.5, 1.0, 0.0], [0.0, 0.5, 1.0]])
    Y = sens.evaluate(spec, [], ranges, X)
    assert Y["completion"] == pytest.approx([0.7 + 0.05 + 0.01, 0.7 + 0.01])  # mean over replicates 0, 1, 2
    assert Y["colocation_gain"] == pytest.approx([0.02, 0.01])
    assert Y["early_intervention_gain"] == pytest.approx([0.001, 0.001])


def test_morris_and_sobol_rank_the_parameters_that_matter(fake):
    spec, ranges = fake
    _, _, rows = sens.morris(spec, [], ranges)
    df = pd.DataFrame(rows, columns=sens.INDEX_COLUMNS)
    mu = df[(df["index"] == "mu_star")].set_index(["output", "parameter"])["value"]
    assert mu["completion", "a"] == pytest.approx(0.1) and mu["completion", "b"] == pytest.approx(0)
    assert mu["colocation_gain", "b"] == pytest.approx(0.02) and mu["colocation_gain", "a"] == pytest.approx(0)
    spec.sobol_n = 64
    _, _, rows = sens.sobol(spec, [], ranges)
    df = pd.DataFrame(rows, columns=sens.INDEX_COLUMNS)
    st = df[(df["index"] == "ST") & (df["output"] == "colocation_gain")].set_index("parameter")["value"]
    assert st["b"] > 0.8 and abs(st["a"]) < 0.1 and abs(st["c"]) < 0.1


@pytest.mark.slow
def test_quick_pipeline_writes_indices_and_figures(tmp_path, capsys):
    out = tmp_path / "sens"
    assert sens.main(["--method", "morris", "--quick", "--out", str(out), "--cohort-size", "200"]) == 0
    idx = pd.read_csv(out / "indices.csv")
    assert list(idx.columns) == sens.INDEX_COLUMNS
    quick = sens.load_spec("default", quick=True).parameters
    morris = idx[idx["method"] == "morris"]
    assert set(morris["parameter"]) == set(quick)
    assert set(morris["output"]) == {"completion", "colocation_gain", "early_intervention_gain"}
    assert set(morris["index"]) == {"mu_star", "mu", "sigma"}
    mu = morris[(morris["index"] == "mu_star") & (morris["output"] == "completion")].set_index("parameter")["value"]
    # the students' dynamics move completion most (11-13 pp across their ranges in the full run,
    # docs/sensitivity.md); staffing and consent move it by under 1 pp
    assert mu.idxmax() in {"dynamics.dropout_intercept", "dynamics.attendance_floor", "dynamics.engagement_intercept"}
    assert mu["agencies.school.posts_per_1000"] < mu.max() / 3 and mu["regime.consent_prob_siloed"] < mu.max() / 3
    for name in ("completion", "colocation_gain", "early_intervention_gain"):
        assert (out / "figures" / f"{name}_morris.png").is_file()
    design = pd.read_csv(out / "design_morris.csv")
    assert set(quick) <= set(design.columns) and "colocation_gain" in design

    # Sobol follows on the top k (quick: 2) of the Morris ranking of colocation_gain
    assert sens.main(["--method", "sobol", "--quick", "--out", str(out), "--cohort-size", "200"]) == 0
    idx = pd.read_csv(out / "indices.csv")
    top = (idx[(idx["method"] == "morris") & (idx["index"] == "mu_star") & (idx["output"] == "colocation_gain")]
           .sort_values("value", ascending=False)["parameter"].head(2))
    sob = idx[idx["method"] == "sobol"]
    assert set(sob["parameter"]) == set(top) and set(sob["index"]) == {"S1", "ST"}
    assert len(idx[idx["method"] == "morris"]) == len(morris)  # the Morris rows are kept
    assert (out / "figures" / "colocation_gain_sobol.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--method", "morris", "--parameters", "nothing.like.this"], "matches no parameter"),
    (["--method", "sobol"], "needs the Morris ranking"),
    (["--method", "morris", "--quick", "--replicates", "0"], "replicates = 0"),
    (["--method", "morris", "--kinds", "model,wishful"], "--kinds wishful"),
    (["--method", "morris", "--quick", "--rank-by", "happiness"], "--rank-by"),
    (["--method", "morris", "--quick", "dynamics.learning_rate=7"], "dynamics.learning_rate"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert sens.main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_sobol_refuses_an_indices_file_without_its_columns(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "indices.csv").write_text("parameter,value\nx,1\n")
    assert sens.main(["--method", "sobol", "--out", str(out)]) == 2
    assert "no column(s) output, method, index, conf" in capsys.readouterr().err


def test_a_folder_named_like_a_spec_is_not_taken_for_it(tmp_path, monkeypatch):
    """`--spec colocation --out colocation` twice: the second run found the first's output folder
    and tried to read it as the spec ('Is a directory')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "colocation").mkdir()
    spec = sens.load_spec("colocation")
    assert set(spec.scenarios) == {"siloed", "colocated"} and "colocation_gain" in spec.outputs


@pytest.mark.parametrize("spec_name", ["colocation", "early"])
def test_shipped_results_match_the_spec_and_the_parameter_table(spec_name):
    """docs/sensitivity/<spec>/ is what docs/sensitivity.md and the README quote: every parameter in
    it must still be a key of the plausible-ranges table (a rename would leave the write-up naming
    a parameter that no longer exists), every output of the spec has both methods' indices and
    figures, and Sobol ran on the top 10 of the Morris ranking it names."""
    from pathlib import Path

    from dropout_sim.plausible import KINDS, resolve

    root = Path(__file__).resolve().parents[1] / "docs" / "sensitivity" / spec_name
    spec = sens.load_spec(spec_name)
    known = {r.key for r in resolve(next(iter(sens.scenario_configs(spec).values())), KINDS)}
    idx = pd.read_csv(root / "indices.csv")
    assert list(idx.columns) == ["parameter", "output", "method", "index", "value", "conf"]
    assert set(idx["parameter"]) <= known
    assert set(idx["output"]) == set(spec.outputs)
    for output in spec.outputs:
        for method in ("morris", "sobol"):
            assert (root / "figures" / f"{output}_{method}.png").is_file()
    top = sens.top_parameters(root / "indices.csv", spec.rank_by, 10)
    sobol = set(idx.loc[idx["method"] == "sobol", "parameter"])
    assert sobol == set(top)
    ranges = pd.read_csv(root / "ranges.csv")
    assert set(ranges["parameter"]) <= known
