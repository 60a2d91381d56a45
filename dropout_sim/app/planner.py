"""The planner's scenario: controls, overrides, validation, paired statistics and "Reproduce".

Everything the dashboard shows is computed here, without Panel, so it is tested directly and
the page only lays it out (:mod:`dropout_sim.app.dashboard`).

* :func:`build_controls` - the controls, each bound to one config key, with its range, unit
  and default taken from :mod:`dropout_sim.schema` and the composed config. Keys that other
  parts of the model add later (population shares, a læreplass supply) appear when the schema
  has them.
* :class:`Scenario` - control values -> the scenario's and the baseline's Hydra overrides
  (the baseline: today's siloed services in the same county), validated exactly as the CLI
  validates them (:func:`check_overrides` gives the CLI's one-line message).
* :class:`Results` - per-replicate summaries of scenario and baseline -> the headline
  (``+X.X pp [lo, hi]``, paired by replicate), curves with bands, process times, hours per
  agency, NOK per extra completer and gains by group (every ``completion_5y_by_*`` of the
  summary).
* :func:`command`, :func:`experiment_yaml`, :meth:`Results.csv` - Reproduce.
"""

from __future__ import annotations

import copy
import io
import math
import shlex
from collections import OrderedDict
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.intervals import mean_ci
from ..calendar import NORMERT_TID_MONTHS
from ..errors import ConfigError
from ..schema import AgencyConfig, AgencySettings, Config, agency_names

BASELINE = "baseline"
SCENARIO = "scenario"
MAX_REPLICATES = 200


# --------------------------------------------------------------------------------------
# controls
# --------------------------------------------------------------------------------------
@dataclass
class Control:
    """One control of the page, bound to one config key (or ``replicates``)."""

    key: str
    label: str
    kind: str
    """``int``, ``float``, ``choice``, ``bool``, ``agencies`` (check boxes), ``slider``"""
    default: Any
    group: str
    shared: bool = False
    """True: sets the county, so the baseline gets the same value."""
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    choices: tuple = ()
    doc: str = ""
    soft_hi: float | None = None
    """Upper end of a slider's track (values beyond it can still be typed)."""

    @property
    def title(self) -> str:
        """The plain-words label with the config key it sets."""
        return f"{self.label} ({self.key})"


def field_meta(key: str) -> dict[str, Any] | None:
    """The schema metadata (unit, lo, hi, doc, choices) of a dotted config key, or None."""
    parts = key.split(".")
    cls: Any = Config
    meta = None
    for i, part in enumerate(parts):
        if cls is Config and part == "agencies":
            rest = parts[i + 1:]
            if len(rest) == 1:
                cls = AgencySettings
                continue
            if len(rest) == 2:
                return _meta_of(AgencyConfig, rest[1])
            return None
        if cls is AgencySettings:
            return _meta_of(AgencySettings, part)
        f = {f.name: f for f in fields(cls)}.get(part)
        if f is None:
            return None
        if f.metadata:
            meta = dict(f.metadata)
            if i < len(parts) - 1:
                return None
            return meta
        sub = f.default_factory() if f.default_factory is not MISSING else None
        if not is_dataclass(sub):
            return None
        cls = type(sub)
    return meta


def _meta_of(cls: type, name: str) -> dict | None:
    f = {f.name: f for f in fields(cls)}.get(name)
    return dict(f.metadata) if f is not None and f.metadata else None


def get_value(cfg: Config, key: str) -> Any:
    """The value of a dotted key in a :class:`Config` (agencies are a mapping)."""
    obj: Any = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


AGENCY_LABELS = {"school": "school (contact teacher, counsellor)", "health": "school health (nurse)",
                 "ppt": "PPT (educational-psychological service)", "nav": "NAV (youth counsellor)",
                 "ot": "OT (follow-up service)", "child_welfare": "child welfare"}


LAEREPLASS_KEYS = ("laereplass.contracts_per_1000", "progression.laereplass_probability")
"""The læreplass supply, by preference: the county's contracts per year (a limited supply matched
by mastery), or in older schemas the chance a vocational Vg2 passer gets a contract."""


def _laereplass_key() -> str:
    """The læreplass-supply key the schema has (the first of :data:`LAEREPLASS_KEYS`), else one
    whose section or name says læreplass and supply or contracts."""
    for key in LAEREPLASS_KEYS:
        if field_meta(key) is not None:
            return key
    for f in fields(Config):
        section = f.default_factory() if f.default_factory is not MISSING and not f.metadata else None
        if is_dataclass(section):
            for g in fields(section):
                name = f"{f.name}.{g.name}"
                if "laereplass" in name and ("supply" in name or "contracts" in name):
                    return name
    return LAEREPLASS_KEYS[-1]


NO_POSTERIOR = "none"
POSTERIOR_REPLICATES = 2
"""With a posterior, pair i runs draw i // 2, replicate i % 2: two replicates per draw give the
replicate-noise interval within draws, the draws the parameter interval."""


def shipped_posteriors() -> list[str]:
    """Names of the posteriors shipped in the package: options of the config group
    ``configs/posterior/`` (``<name>.yaml``, selected as ``posterior=<name>``) with their
    ``<name>/particles.csv``."""
    from ..posterior import shipped_names

    try:
        return shipped_names()
    except (OSError, ModuleNotFoundError):
        return []


def posterior_pair(i: int) -> tuple[int, int]:
    """(draw, replicate) of pair ``i`` when a posterior is used."""
    return i // POSTERIOR_REPLICATES, i % POSTERIOR_REPLICATES


def build_controls(base: Config) -> list[Control]:
    """The page's controls for a county composed as ``base`` (defaults = its values)."""
    controls: list[Control] = []

    def add(key: str, label: str, group: str, kind: str | None = None, shared: bool = False,
            soft_hi: float | None = None) -> None:
        meta = field_meta(key)
        if meta is None:
            return
        default = get_value(base, key)
        if kind is None:
            if meta.get("choices"):
                kind = "choice"
            elif isinstance(default, bool):
                kind = "bool"
            elif isinstance(default, int):
                kind = "int"
            else:
                kind = "float"
        controls.append(Control(key, label, kind, default, group, shared, meta.get("lo"), meta.get("hi"),
                                meta.get("unit", ""), tuple(meta.get("choices") or ()), meta.get("doc", ""),
                                soft_hi))

    county = "The county"
    add("cohort.size", "Students starting Vg1 each year", county, shared=True)
    add("cohort.vocational_share", "Share starting a vocational programme", county, shared=True)
    # population shares the schema may declare (gender, parents' education, ...): every other share
    for f in fields(type(base.cohort)):
        m = f.metadata or {}
        if f.name.endswith("_share") and f.name != "vocational_share" and m.get("unit") == "share":
            add(f"cohort.{f.name}", (m.get("doc") or f.name).capitalize(), county, shared=True)
    key = _laereplass_key()
    add(key, "Læreplass supply: apprenticeship contracts per year per 1,000 entrants" if "contracts" in key
        else "Læreplass supply: chance a vocational Vg2 passer gets an apprenticeship", county, shared=True)

    staff = "Staffing"
    add("agencies.staffing_scale", "Staffing of every agency (1 = today)", staff)
    for name in agency_names(base):
        add(f"agencies.{name}.posts_per_1000", f"Posts per 1,000 students: {AGENCY_LABELS.get(name, name)}", staff)

    services = "How the services work together"
    names = tuple(agency_names(base))
    controls.append(Control("regime.colocated", "Co-located at the school (elevtjeneste)", "agencies",
                            list(base.regime.colocated), services, choices=names,
                            doc="agencies sitting together; none = siloed"))
    add("regime.lead_worker.enabled", "Lead worker (koordinator) for students referred on", services, kind="bool")

    early = "Early intervention"
    add("intervention.screening_start_month", "Screening starts in month (0 = at intake, 4 = after first grades)",
        early, kind="slider", soft_hi=24)
    add("intervention.info_transfer", "Information transferred from lower secondary", early)
    add("intervention.risk_threshold", "Risk score at which the school acts", early)
    add("intervention.review_interval_months", "Months between screening reviews", early)
    add("intervention.support_intensity", "Intensity of all help (1 = today)", early)
    add("intervention.queue_order", "Order of the school's queue", early)
    controls.append(Control("replicates", "Paired replicates", "int", 20, "Run", lo=1, hi=MAX_REPLICATES,
                            unit="runs per scenario", doc="replicate r of scenario and baseline share draws"))
    posteriors = shipped_posteriors()
    if posteriors and field_meta("posterior") is not None:
        controls.append(Control(
            "posterior", "Parameter uncertainty: run over the draws of a calibration posterior", "choice",
            base.posterior or NO_POSTERIOR, "Run", shared=True, choices=(NO_POSTERIOR, *posteriors),
            doc="pair i runs posterior draw i // 2, replicate i % 2, in scenario and baseline alike; the "
                "drawn parameters replace the controls of the same keys"))
    return controls


# --------------------------------------------------------------------------------------
# scenario -> overrides, validation
# --------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else f"{value:g}" if abs(value) < 1e15 else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def cli_error(exc: BaseException) -> str:
    """The line the CLI prints on stderr for a bad value (``dropout-sim: error: ...``)."""
    from .cli import _one_line

    msg = str(exc) if isinstance(exc, ConfigError) else _one_line(exc)
    return f"dropout-sim: error: {msg}"


_COMPOSED: "OrderedDict[tuple[str, ...], tuple[Config | None, str | None]]" = OrderedDict()
_COMPOSER: list = []


def _fast_config(overrides: Sequence[str]) -> Config | None:
    """The validated config through the batch runner's :class:`~dropout_sim.runs.batch.Composer`
    (Hydra once per config-group combination, values applied: milliseconds instead of a
    composition), or None on any problem (the caller then composes as the CLI does, for its
    exact message). Call with ``HYDRA_LOCK`` held: the composer's nodes are shared."""
    from ..runs.batch import Composer

    if not _COMPOSER:
        _COMPOSER.append(Composer())
    try:
        return _COMPOSER[0].config(list(overrides))
    except Exception:  # noqa: BLE001 - any problem: the CLI's composition gives the message
        return None


def check_overrides(overrides: Sequence[str]) -> tuple[Config | None, str | None]:
    """Compose and validate ``overrides`` as the CLI does: (config, None) or (None, the CLI's line).

    The config is the batch runner's composition (the same config and hash as the CLI's, see
    :class:`~dropout_sim.runs.batch.Composer`); a bad value gets the CLI's own composition and
    message. Results are remembered (the baseline and a scenario the user returns to compose
    once); the caller gets its own copy of the config."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..runs.api import HYDRA_LOCK, compose_config

    key = tuple(overrides)
    with HYDRA_LOCK:  # Hydra's global state and the composer's nodes are not thread-safe
        if key not in _COMPOSED:
            cfg = _fast_config(overrides)
            if cfg is not None:
                _COMPOSED[key] = (cfg, None)
            else:
                try:
                    _COMPOSED[key] = (compose_config(list(overrides)), None)
                except (ConfigError, HydraException, OmegaConfBaseException, ValueError, KeyError) as exc:
                    _COMPOSED[key] = (None, cli_error(exc))
            if len(_COMPOSED) > 256:
                _COMPOSED.popitem(last=False)
        cfg, err = _COMPOSED[key]
    return (copy.deepcopy(cfg) if cfg is not None else None), err


REGIME_GROUPS = {"colocated": None, "nav_pilot": ("school", "nav")}


@dataclass
class Scenario:
    """Control values (key -> value) on top of ``base_overrides`` (the county's starting point)."""

    controls: list[Control]
    values: dict[str, Any]
    base_overrides: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    """Further ``key=value`` overrides of the scenario typed by the user."""
    composed: dict[str, Config] = field(default_factory=dict)
    """The validated configs of scenario and baseline, after a :meth:`check` without errors."""

    def _control(self, key: str) -> Control:
        return next(c for c in self.controls if c.key == key)

    def changed(self, key: str) -> bool:
        c = self._control(key)
        v = self.values.get(key, c.default)
        if c.kind == "agencies":
            return sorted(v) != sorted(c.default)
        return v != c.default

    def _regime(self) -> list[str]:
        colocated = list(self.values.get("regime.colocated", self._control("regime.colocated").default))
        lead = self.values.get("regime.lead_worker.enabled")
        names = list(self._control("regime.colocated").choices)
        out: list[str] = []
        if lead and self.changed("regime.lead_worker.enabled"):
            out.append("regime=lead_worker")
            if colocated:
                out.append(f"regime.colocated={_fmt(colocated)}")
            return out
        if not self.changed("regime.colocated"):
            return out
        ordered = [n for n in names if n in colocated]
        if ordered and set(ordered) == set(names):
            return ["regime=colocated"]
        if set(ordered) == {"school", "nav"}:
            return ["regime=nav_pilot"]
        out.append(f"regime.colocated={_fmt(ordered)}")
        out.append("regime.name=" + ("siloed" if not ordered else "custom"))
        return out

    def county_overrides(self) -> list[str]:
        """The county's values and the posterior: shared by scenario and baseline."""
        out = []
        for c in self.controls:
            if c.shared and c.key in self.values and self.changed(c.key):
                value = self.values[c.key]
                out.append(f"{c.key}=null" if c.key == "posterior" and value == NO_POSTERIOR
                           else f"{c.key}={_fmt(value)}")
        return out

    @property
    def posterior(self) -> str | None:
        value = self.values.get("posterior", NO_POSTERIOR)
        return None if value in (None, NO_POSTERIOR) else str(value)

    def overrides(self) -> list[str]:
        """The scenario: base, county, services and early intervention (only what differs)."""
        out = [*self.base_overrides, *self.county_overrides(), *self._regime()]
        for c in self.controls:
            if c.shared or c.key in ("replicates", "regime.colocated", "regime.lead_worker.enabled"):
                continue
            if c.key in self.values and self.changed(c.key):
                out.append(f"{c.key}={_fmt(self.values[c.key])}")
        return out + list(self.extra)

    def baseline_overrides(self) -> list[str]:
        """Today's siloed services in the same county."""
        return [*self.base_overrides, *self.county_overrides(), "regime=siloed"]

    @property
    def replicates(self) -> int:
        return int(self.values.get("replicates", 20))

    def check(self) -> dict[str, str]:
        """Bad values: control key (or ``""`` for the page) -> the CLI's one-line message.

        Each control's value is first checked alone against the schema's range, so the message
        sits next to the control that caused it; then the whole scenario and baseline are
        composed and validated as the CLI would (cross-key rules)."""
        errors: dict[str, str] = {}
        rep = self.values.get("replicates", 20)
        if not isinstance(rep, int) or isinstance(rep, bool) or not 1 <= rep <= MAX_REPLICATES:
            errors["replicates"] = (f"dropout-sim: error: replicates = {rep!r} is not allowed; allowed: "
                                    f"between 1 and {MAX_REPLICATES}")
        for c in self.controls:
            if c.key == "replicates" or c.key not in self.values:
                continue
            v = self.values[c.key]
            if c.kind in ("int", "float", "slider"):
                if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or (
                        isinstance(v, float) and not math.isfinite(v)):
                    errors[c.key] = (f"dropout-sim: error: {c.key} = {v!r} is not allowed; allowed: a number "
                                     f"{_range(c)}")
                elif (c.lo is not None and v < c.lo) or (c.hi is not None and v > c.hi):
                    errors[c.key] = f"dropout-sim: error: {c.key} = {v!r} is not allowed; allowed: {_range(c)}"
        if errors:
            return errors
        for name, overrides in ((SCENARIO, self.overrides()), (BASELINE, self.baseline_overrides())):
            cfg, err = check_overrides(overrides)
            if err:
                return {self.blame(err): err}
            self.composed[name] = cfg
        return {}

    def blame(self, message: str) -> str:
        """The control a one-line message names (longest key first), else ``""``."""
        text = message.split("error:", 1)[-1].strip()
        for c in sorted(self.controls, key=lambda c: -len(c.key)):
            if text.startswith(c.key) and text[len(c.key):len(c.key) + 1] in (" ", "[", ":", "="):
                return c.key
        return ""


def _range(c: Control) -> str:
    unit = f" ({c.unit})" if c.unit and c.unit != "-" else ""
    if c.lo is not None and c.hi is not None:
        return f"between {c.lo:g} and {c.hi:g}{unit}"
    return f">= {c.lo:g}{unit}" if c.lo is not None else f"<= {c.hi:g}{unit}"


def command(overrides: Sequence[str], replicates: int | None = None, posterior: bool = False) -> str:
    """The ``dropout-sim`` command line of ``overrides`` (a sweep over ``replicates`` pairs if
    given; with ``posterior``, over the draws and replicates those pairs run)."""
    args = ["dropout-sim"]
    if replicates is not None:
        args += ["-m"]
    args += list(overrides)
    if replicates is not None and posterior:
        draws = -(-replicates // POSTERIOR_REPLICATES)
        args += [f"draw=range(0,{draws})", f"replicate=range(0,{min(replicates, POSTERIOR_REPLICATES)})"]
    elif replicates is not None:
        args.append(f"replicate=range(0,{replicates})")
    return " ".join(shlex.quote(a) for a in args)


def config_groups() -> set[str]:
    """Names of the packaged config groups (``regime``, ``agencies``, ``intervention`` ...)."""
    from importlib import resources

    root = resources.files("dropout_sim.configs")
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")}


def experiment_yaml(overrides: Sequence[str], name: str = "dashboard", replicates: int = 20,
                    posterior: bool = False) -> str:
    """``overrides`` as an experiment file (``configs/experiment/`` style) an analyst can sweep."""
    import yaml

    groups = config_groups()
    defaults: list[dict[str, str]] = []
    body: dict[str, Any] = {}
    for line in overrides:
        key, _, value = line.partition("=")
        key = key.lstrip("+~")
        if "." not in key and key in groups:  # a group choice (posterior=null: none)
            defaults.append({f"override /{key}": None if value == "null" else value})
            continue
        node = body
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    head = [
        "# @package _global_",
        "# A scenario from the dashboard (dropout-sim dashboard). Save as <DIR>/experiment/"
        f"{name}.yaml and run its paired replicates:",
        f"#   {command([f'--config-dir <DIR>', f'experiment={name}'], replicates, posterior)} "
        "hydra/launcher=joblib".replace("'--config-dir <DIR>'", "--config-dir <DIR>"),
        "# the same as the command line:",
        f"#   {command(overrides, replicates, posterior)}",
    ]
    text = "\n".join(head) + "\n"
    if defaults:
        text += yaml.safe_dump({"defaults": defaults}, sort_keys=False)
    if body:
        text += yaml.safe_dump(body, sort_keys=False)
    return text


# --------------------------------------------------------------------------------------
# statistics of the streamed replicates
# --------------------------------------------------------------------------------------
def _get(summary: Mapping[str, Any], dotted: str) -> float:
    obj: Any = summary
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return math.nan
        obj = obj[part]
    return float(obj) if isinstance(obj, (int, float)) and not isinstance(obj, bool) and obj is not None else math.nan


@dataclass
class Paired:
    """A paired difference over replicates: baseline and scenario means, the mean difference
    and its 95 % t-interval, the number of pairs."""

    baseline: float
    scenario: float
    diff: float
    lo: float
    hi: float
    n: int


@dataclass
class Results:
    """Per-replicate summaries and curves of the scenario and the baseline, as they stream in."""

    summaries: dict[str, dict[int, dict]] = field(default_factory=lambda: {BASELINE: {}, SCENARIO: {}})
    curves: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {BASELINE: {}, SCENARIO: {}})
    posterior: str | None = None
    """When set, pair i ran posterior draw i // 2, replicate i % 2 (:func:`posterior_pair`)."""

    def add(self, scenario: str, replicate: int, summary: dict, curve: Sequence[float]) -> None:
        self.summaries[scenario][replicate] = summary
        self.curves[scenario][replicate] = list(curve)

    def pairs(self) -> list[int]:
        return sorted(set(self.summaries[BASELINE]) & set(self.summaries[SCENARIO]))

    @property
    def done(self) -> int:
        return len(self.summaries[BASELINE]) + len(self.summaries[SCENARIO])

    def paired(self, metric: str, scale: float = 1.0) -> Paired:
        reps = self.pairs()
        b = np.array([_get(self.summaries[BASELINE][r], metric) for r in reps]) * scale
        s = np.array([_get(self.summaries[SCENARIO][r], metric) for r in reps]) * scale
        d, lo, hi, n = mean_ci(s - b)
        mb = float(np.nanmean(b)) if np.isfinite(b).any() else math.nan
        ms = float(np.nanmean(s)) if np.isfinite(s).any() else math.nan
        return Paired(mb, ms, d, lo, hi, n)

    def headline(self) -> str:
        """``+X.X pp [lo, hi]``: completion within 60 months, scenario minus baseline, paired,
        with the replicate interval (within posterior draws when a posterior is used)."""
        p = self.paired("completion_5y", 100.0)
        if p.n == 0:
            return "waiting for the first pair of runs"
        if self.posterior:
            d = self.draw_stats()
            if d is not None and math.isfinite(d["diff_replicate_lo"]):
                return f"{d['diff_pp']:+.1f} pp [{d['diff_replicate_lo']:+.1f}, {d['diff_replicate_hi']:+.1f}]"
        if p.n < 2:
            return f"{p.diff:+.1f} pp [interval from 2 replicates]"
        return f"{p.diff:+.1f} pp [{p.lo:+.1f}, {p.hi:+.1f}]"

    def draw_stats(self) -> dict[str, float] | None:
        """With a posterior: the report's split of the paired gain (pp) into replicate noise within
        draws and parameter uncertainty across draws (:func:`dropout_sim.analysis.report.draw_intervals`)."""
        import pandas as pd

        from ..analysis.report import draw_intervals

        reps = self.pairs()
        if not self.posterior or not reps:
            return None
        rows = []
        for sc in (BASELINE, SCENARIO):
            for i in reps:
                draw, rep = posterior_pair(i)
                rows.append({"scenario": sc, "seed": 0, "replicate": rep, "draw": draw,
                             "completion_5y": _get(self.summaries[sc][i], "completion_5y")})
        table = draw_intervals(pd.DataFrame(rows), "completion_5y", BASELINE)
        if table.empty:
            return None
        return table.iloc[0].to_dict()

    def parameter_interval(self) -> str:
        """The parameter interval beside the headline, in words."""
        if not self.posterior:
            return "Parameter interval: choose a posterior under Run to see it"
        d = self.draw_stats()
        if d is None or not math.isfinite(d["diff_parameter_lo"]):
            return f"Parameter interval ({self.posterior}): from 2 posterior draws"
        return (f"Parameter interval ({self.posterior}, {int(d['draws'])} draws): "
                f"[{d['diff_parameter_lo']:+.1f}, {d['diff_parameter_hi']:+.1f}] pp")

    def curve_band(self, scenario: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, mean, low, high) of the completion curve; x = months since the first day of Vg1 at
        the end of the month (the value at 60 is completion within 60 months)."""
        curves = list(self.curves[scenario].values())
        if not curves:
            return (np.array([]),) * 4
        m = min(len(c) for c in curves)
        y = np.array([c[:m] for c in curves], dtype=float)
        x = np.arange(1, m + 1)
        mean = y.mean(axis=0)
        if len(curves) < 2:
            return x, mean, mean.copy(), mean.copy()
        from ..analysis.intervals import t_half_width

        half = t_half_width(y.std(axis=0, ddof=1) / math.sqrt(len(curves)), len(curves) - 1)
        return x, mean, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1)

    def process(self) -> list[tuple[str, Paired, str]]:
        """(label, paired difference, unit) for time to help, time to OT and the never-helped share."""
        rows = [("Months from first risk signal to first help", "months_risk_to_help.mean", 1.0, "months"),
                ("Months from dropout to OT contact", "months_dropout_to_ot.mean", 1.0, "months"),
                ("At-risk students never helped", "at_risk_never_helped_share", 100.0, "%"),
                ("Completion within 60 months", "completion_5y", 100.0, "%")]
        return [(label, self.paired(key, scale), unit) for label, key, scale, unit in rows]

    def agencies(self) -> list[dict[str, Any]]:
        """Per agency, mean over the scenario's and the baseline's replicates: hours paid and used
        per year, utilisation, share of months with a queue, mean queue and wait."""
        out = []
        names: list[str] = []
        for sc in (SCENARIO, BASELINE):
            for s in self.summaries[sc].values():
                for n in s.get("agency_hours", {}):
                    if n not in names:
                        names.append(n)
        for name in names:
            row: dict[str, Any] = {"agency": name}
            for sc in (BASELINE, SCENARIO):
                vals = list(self.summaries[sc].values())

                def mean(key: str, per_year: bool = False) -> float:
                    xs = []
                    for s in vals:
                        v = _get(s, f"agency_hours.{name}.{key}")
                        years = _get(s, "costs.years")
                        xs.append(v / years if per_year and years else v)
                    xs = [x for x in xs if math.isfinite(x)]
                    return float(np.mean(xs)) if xs else math.nan

                row[f"{sc}_hours_paid_per_year"] = mean("hours_paid", True)
                row[f"{sc}_hours_used_per_year"] = mean("hours_used", True)
                row[f"{sc}_utilisation"] = mean("utilisation")
                row[f"{sc}_queue_month_share"] = mean("queue_month_share")
                row[f"{sc}_mean_queue"] = mean("mean_queue")
                row[f"{sc}_mean_wait_months"] = mean("mean_wait_months")
            out.append(row)
        return out

    def costs(self) -> dict[str, float]:
        """NOK per extra completer, its interval, break-even value (see report.cost_ratio)."""
        from ..analysis.report import cost_ratio

        reps = self.pairs()
        d_nok = [_get(self.summaries[SCENARIO][r], "costs.nok_per_year")
                 - _get(self.summaries[BASELINE][r], "costs.nok_per_year") for r in reps]
        d_done = [_get(self.summaries[SCENARIO][r], "completed_5y_per_cohort")
                  - _get(self.summaries[BASELINE][r], "completed_5y_per_cohort") for r in reps]
        value = None
        if reps:
            v = _get(self.summaries[SCENARIO][reps[0]], "costs.value_per_completer_nok")
            value = v if math.isfinite(v) else None
        return cost_ratio(np.array(d_nok), np.array(d_done), value)

    def group_keys(self) -> list[str]:
        """Every ``completion_5y_by_*`` breakdown the summaries carry (track, grade points, and
        whatever the model adds: gender, parents' education ...)."""
        keys: list[str] = []
        for s in list(self.summaries[SCENARIO].values())[:1] + list(self.summaries[BASELINE].values())[:1]:
            for k, v in s.items():
                if k.startswith("completion_5y_by_") and isinstance(v, Mapping) and k not in keys:
                    keys.append(k)
        return keys

    def groups(self) -> list[tuple[str, str, Paired]]:
        """(breakdown, group, paired gain in pp) for every group of every breakdown."""
        out = []
        for key in self.group_keys():
            groups: list[str] = []
            for s in [*self.summaries[BASELINE].values(), *self.summaries[SCENARIO].values()][:2]:
                groups += [g for g in s.get(key, {}) if g not in groups]
            for g in groups:
                p = self.paired(f"{key}.{g}", 100.0)
                if p.n:
                    out.append((key.removeprefix("completion_5y_by_").replace("_", " "), g, p))
        return out

    def table(self) -> "Any":
        """One row per (scenario, replicate): every summary outcome flattened with dots."""
        import pandas as pd

        from ..analysis.report import _flatten

        rows = []
        for sc in (BASELINE, SCENARIO):
            for r in sorted(self.summaries[sc]):
                s = self.summaries[sc][r]
                rows.append({"scenario": sc, "replicate": r, **_flatten({k: v for k, v in s.items() if k != "meta"})})
        return pd.DataFrame(rows)

    def csv(self) -> str:
        buf = io.StringIO()
        self.table().to_csv(buf, index=False)
        return buf.getvalue()


def five_year_value(x: np.ndarray, y: np.ndarray) -> float:
    """The curve's value at the five-year line (60 months)."""
    hit = np.flatnonzero(x == NORMERT_TID_MONTHS)
    return float(y[hit[0]]) if hit.size else math.nan
