"""Plausible ranges of the schema's parameters (``configs/plausible_ranges.yaml``).

The schema (:mod:`dropout_sim.schema`) declares each parameter's *valid* range: what the
code accepts. The table declares, for every numeric parameter, what is *plausible* and why
(a source, or "assumption"), or that it is a design choice and not uncertain. Sensitivity
analysis samples these ranges; calibration priors are checked against the valid range.

The table is a separate YAML keyed by dotted config key (not metadata on the dataclass
fields) so that branches adding schema fields merge without touching the same lines.
Agency fields are declared once for every agency (``agencies.<name>.posts_per_1000``) as a
*relative* range (``scale: [a, b]`` around the composed config's value), since agencies
differ in size; an agency whose value is 0 does not use the mechanism and is left out.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError

FILE_NAME = "plausible_ranges.yaml"
KINDS = ("model", "policy", "cost")
"""model: an uncertain mechanism parameter; policy: a planner's lever; cost: moves costs only."""
AGENCY_PREFIX = "agencies.<name>."


@dataclass(frozen=True)
class Range:
    """A resolved plausible range of one config key."""

    key: str
    lo: float
    hi: float
    integer: bool
    source: str
    kind: str = "model"

    @property
    def width(self) -> float:
        return self.hi - self.lo


def default_path() -> Path:
    import dropout_sim.configs as pkg

    return Path(pkg.__file__).resolve().parent / FILE_NAME


def schema_fields() -> dict[str, dict]:
    """Every parameter of the schema by dotted key (agency fields as ``agencies.<name>.<field>``):
    ``{lo, hi, default, numeric, integer}``; numeric = has a valid range (lo or hi)."""
    from dataclasses import MISSING, fields, is_dataclass

    from .schema import AgencyConfig, AgencySettings, Config

    out: dict[str, dict] = {}

    def walk(cls: type, prefix: str) -> None:
        for f in fields(cls):
            key = f"{prefix}{f.name}"
            if not f.metadata and f.default_factory is not MISSING:
                sub = f.default_factory()
                if is_dataclass(sub):
                    walk(type(sub), key + ".")
                elif isinstance(sub, dict):
                    walk(AgencySettings, key + ".")
                    walk(AgencyConfig, key + ".<name>.")
                continue
            m = f.metadata
            default = f.default if f.default is not MISSING else None
            numeric = (m.get("lo") is not None or m.get("hi") is not None) and not isinstance(default, bool)
            integer = isinstance(default, int) and not isinstance(default, bool) or "int" in str(f.type)
            out[key] = {"lo": m.get("lo"), "hi": m.get("hi"), "default": default, "numeric": numeric,
                        "integer": bool(integer and "float" not in str(f.type))}

    walk(Config, "")
    return out


def load_table(path: str | Path | None = None) -> dict[str, dict]:
    """The table as ``key -> entry`` (entries checked; one-line ConfigError naming the key)."""
    import yaml

    p = Path(os.path.expanduser(str(path))) if path else default_path()
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"plausible ranges {p}: unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"plausible ranges {p}: expected a mapping of config keys")
    known = schema_fields()
    for key, e in raw.items():
        where = f"plausible ranges {p.name}: {key}"
        if key not in known:
            raise ConfigError(f"{where} is not a config key")
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected {{lo, hi, source}}, {{scale: [a, b], source}} or {{design: why}}")
        if e.get("kind", "model") not in KINDS:
            raise ConfigError(f"{where}: kind = {e['kind']!r}; allowed: {', '.join(KINDS)}")
        if "design" in e:
            continue
        if "source" not in e or not str(e["source"]).strip():
            raise ConfigError(f"{where}: needs a source (or 'assumption')")
        if "scale" in e:
            s = e["scale"]
            if not (isinstance(s, list) and len(s) == 2 and all(isinstance(v, (int, float)) for v in s)
                    and 0 <= s[0] <= s[1]):
                raise ConfigError(f"{where}: scale = {s!r}; allowed: [a, b] with 0 <= a <= b")
            continue
        lo, hi = e.get("lo"), e.get("hi")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or not lo < hi:
            raise ConfigError(f"{where}: lo = {lo!r}, hi = {hi!r}; allowed: numbers with lo < hi")
        vlo, vhi = known[key]["lo"], known[key]["hi"]
        if (vlo is not None and lo < vlo) or (vhi is not None and hi > vhi):
            raise ConfigError(f"{where}: [{lo:g}, {hi:g}] is outside the valid range "
                              f"[{vlo if vlo is not None else '-inf'}, {vhi if vhi is not None else 'inf'}]")
    return raw


def _get(cfg: Any, key: str) -> Any:
    obj = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def resolve(cfg: Any, kinds: Iterable[str] = ("model",), table: dict | None = None) -> list[Range]:
    """The plausible ranges of ``cfg``'s parameters of the given kinds, in table order.

    Relative agency entries become one range per agency of ``cfg`` (clipped to the valid
    range); parameters whose range is a single value (an agency value of 0) are left out.
    """
    from .schema import agency_configs

    table = load_table() if table is None else table
    known = schema_fields()
    kinds = tuple(kinds)
    out: list[Range] = []
    for key, e in table.items():
        if "design" in e or e.get("kind", "model") not in kinds:
            continue
        meta = known[key]
        keys = ([key.replace("<name>", name) for name in agency_configs(cfg)] if "<name>" in key else [key])
        for k in keys:
            if "scale" in e:
                value = _get(cfg, k)
                if value is None:
                    continue
                lo, hi = sorted((value * e["scale"][0], value * e["scale"][1]))
            else:
                lo, hi = float(e["lo"]), float(e["hi"])
            if meta["lo"] is not None:
                lo = max(lo, meta["lo"])
            if meta["hi"] is not None:
                hi = min(hi, meta["hi"])
            if meta["integer"]:
                lo, hi = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
            if hi - lo <= 1e-12:
                continue
            out.append(Range(k, float(lo), float(hi), meta["integer"], str(e["source"]), e.get("kind", "model")))
    return out


def missing_entries(table: dict | None = None) -> list[str]:
    """Numeric schema parameters without an entry in the table (the test keeps this empty)."""
    table = load_table() if table is None else table
    return [k for k, m in schema_fields().items() if m["numeric"] and k not in table]
