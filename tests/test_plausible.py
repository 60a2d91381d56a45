"""Every numeric schema parameter declares a plausible range (or why it is a design choice),
with a source, inside its valid range (configs/plausible_ranges.yaml, dropout_sim/plausible.py)."""

from __future__ import annotations

import pytest

from dropout_sim import compose_config
from dropout_sim import plausible as P
from dropout_sim.schema import ConfigError


def test_every_numeric_schema_leaf_has_an_entry():
    missing = P.missing_entries()
    assert not missing, f"add these keys to configs/plausible_ranges.yaml: {missing}"


def test_absolute_ranges_lie_inside_the_valid_range_and_hold_the_default():
    fields = P.schema_fields()
    for key, e in P.load_table().items():
        if "design" in e or "scale" in e:
            continue
        m = fields[key]
        assert e["lo"] < e["hi"], key
        assert m["lo"] is None or e["lo"] >= m["lo"], key
        assert m["hi"] is None or e["hi"] <= m["hi"], key
        assert str(e["source"]).strip(), key
        if isinstance(m["default"], (int, float)) and e.get("kind", "model") == "model":
            assert e["lo"] <= m["default"] <= e["hi"], (key, m["default"])


@pytest.mark.parametrize("agencies", ["default", "with_child_welfare"])
def test_relative_agency_ranges_lie_inside_the_valid_range(agencies):
    cfg = compose_config([f"agencies={agencies}"])
    fields = P.schema_fields()
    ranges = P.resolve(cfg, kinds=P.KINDS)
    for r in ranges:  # relative ranges are clipped to the valid range (an office count stays >= 1)
        m = fields[r.key if not r.key.startswith("agencies.") or r.key.count(".") == 1
                   else "agencies.<name>." + r.key.rsplit(".", 1)[1]]
        assert m["lo"] is None or r.lo >= m["lo"], r
        assert m["hi"] is None or r.hi <= m["hi"], r
        assert r.source.strip(), r
    ranges = P.resolve(cfg)
    keys = [r.key for r in ranges]
    assert len(keys) == len(set(keys))
    assert "agencies.ot.reentry_prob" in keys and "agencies.school.reentry_prob" not in keys  # 0 = unused
    for r in ranges:
        assert r.lo < r.hi and r.kind == "model"
    assert not {"seed", "cohort.size", "agencies.staffing_scale"} & set(keys)  # design and policy left out


def test_a_bad_table_is_refused_in_one_line(tmp_path):
    cases = {"dynamics.nope: {lo: 0, hi: 1, source: x}\n": "not a config key",
             "dynamics.learning_rate: {lo: 0.5, hi: 2, source: x}\n": "outside the valid range",
             "dynamics.learning_rate: {lo: 0.02, hi: 0.04}\n": "needs a source",
             "dynamics.learning_rate: {lo: 0.04, hi: 0.02, source: x}\n": "lo < hi"}
    for text, message in cases.items():
        path = tmp_path / "ranges.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            P.load_table(path)
        assert "\n" not in str(info.value)
