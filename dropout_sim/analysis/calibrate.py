"""Calibration: fit declared parameters to declared targets with scipy.optimize.

    dropout-sim calibrate                                   # spec + targets from configs/, writes
                                                            # configs/calibration/default.yaml
    dropout-sim calibrate --spec section9 --name section9   # the committed fit
    dropout-sim calibrate --targets my_county.yaml --out ~/cal --name county
    dropout-sim +calibration=section9                        # use a fitted config
    dropout-sim --config-dir ~/cal +calibration=county      # ... one written with --out

Two YAML files declare the problem (no code changes to calibrate to another county or year):

* **targets** (``configs/targets/<name>.yaml``): ``summary.json`` key paths (dotted) mapped to
  ``{value, tolerance, source}``, optionally ``cohort_allowance`` for a figure from another
  cohort than the one modelled (added in quadrature: the tolerance used is
  ``sqrt(tolerance**2 + cohort_allowance**2)``; :func:`cohort_allowances` computes it). The
  objective is the sum over targets of the squared z-score ``((model - value) / tolerance) ** 2``;
  a target is met when ``|model - value| <= tolerance``.
* **spec** (``configs/calibration_spec/<name>.yaml``): the parameters to fit (dotted config
  keys with bounds), the Hydra overrides of the calibrated scenario, seed, replicates, cohort
  size, optimiser and budget.

Every evaluation uses the same seed and replicates (common random numbers, see
:mod:`dropout_sim.rng`), so the objective changes only because the parameters do. The
optimiser works in scaled coordinates (each parameter mapped to 0-1 over its bounds).

The result is written as a Hydra config with ``# @package _global_`` so that
``dropout-sim +calibration=<name>`` applies it on top of the defaults. By default it goes to
``calibration/`` inside the packaged config folder (``configs/`` in a source checkout or
editable install). An installed (non-editable) package should not be written into: pass
``--out DIR``; the file goes to ``DIR/calibration/<name>.yaml`` and is used with
``dropout-sim --config-dir DIR +calibration=<name>`` (or ``hydra.searchpath=[file://DIR]``).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ArgumentParser
from ..schema import Config, ConfigError, validate



def config_dir() -> Path:
    """The packaged Hydra config folder (``configs/`` in a checkout, ``dropout_sim/configs`` installed)."""
    import dropout_sim.configs as pkg

    return Path(pkg.__file__).resolve().parent


# --------------------------------------------------------------------------------------
# reading the YAML
# --------------------------------------------------------------------------------------
STATISTICS = ("help_odds_ratio",)
"""Targets that are not a summary.json key but a statistic of a paired counterfactual run
(:mod:`dropout_sim.analysis.effects`)."""


@dataclass
class Target:
    key: str
    value: float
    tolerance: float
    """The tolerance used (fit, met): the source's tolerance and the cohort allowance in quadrature."""
    source: str = ""
    statistic: str | None = None
    """``help_odds_ratio``: computed from the run and a paired counterfactual run, not read from summary.json."""
    counterfactual: dict | None = None
    """Dotted config keys -> values of the counterfactual run (default: agencies.staffing_scale = 0)."""
    cohort_allowance: float = 0.0
    """How much a figure from another cohort than the modelled one may differ for that reason alone."""

    @property
    def source_tolerance(self) -> float:
        """The tolerance the source's figure carries, without the cohort allowance."""
        return float(np.sqrt(max(self.tolerance ** 2 - self.cohort_allowance ** 2, 0.0)))

    def tolerance_text(self, fmt: Callable[[float], str] = "{:.4g}".format) -> str:
        """``0.03``, or ``0.04 (+) 0.035 = 0.05315`` with a cohort allowance (in quadrature)."""
        if not self.cohort_allowance:
            return fmt(self.tolerance)
        return f"{fmt(self.source_tolerance)} (+) {fmt(self.cohort_allowance)} = {fmt(self.tolerance)}"

    def z(self, model_value: float) -> float:
        return (model_value - self.value) / self.tolerance

    def met(self, model_value: float) -> bool:
        return abs(model_value - self.value) <= self.tolerance


@dataclass
class Parameter:
    key: str
    lo: float
    hi: float
    prior: str = "uniform"
    """ABC prior on [lo, hi]: ``uniform`` or ``normal`` (mean, sd; truncated to [lo, hi])."""
    mean: float | None = None
    sd: float | None = None

    def scale(self, x: float) -> float:
        return (x - self.lo) / (self.hi - self.lo)

    def unscale(self, u: float) -> float:
        return self.lo + float(u) * (self.hi - self.lo)


@dataclass
class Spec:
    """A calibration problem: parameters, targets, scenario, CRN seeds and budget."""

    parameters: list[Parameter]
    targets: list[Target]
    overrides: list[str] = field(default_factory=list)
    seed: int = 20130801
    replicates: int = 2
    cohort_size: int = 20000
    method: str = "Nelder-Mead"
    max_evaluations: int = 80
    initial_step: float = 0.1
    xatol: float = 0.002
    fatol: float = 0.01
    loss: str = "squared"
    """``squared``: sum of z^2 (every target pulled to its centre); ``outside``: only the part of
    |z| beyond ``loss_margin`` costs (sum of max(0, |z| - margin)^2) plus ``loss_tiebreak`` x sum z^2,
    so a fit spends its freedom on the targets it misses, not on centring those it meets"""
    loss_margin: float = 0.8
    loss_tiebreak: float = 0.01
    targets_source: str = "default"
    # ABC-SMC (method abc): particles per generation, generations, final tolerance, wall clock
    population_size: int = 200
    generations: int = 8
    min_epsilon: float = 1.0
    budget_minutes: float = 60.0
    predictive_draws: int = 40


def _load_yaml(path: Path) -> Any:
    """A YAML file as plain data; ConfigError (one line) for a syntax error or a bad interpolation."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}:{where}: YAML syntax error ({what}); allowed: a YAML mapping") from None
    except (OmegaConfBaseException, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())[:200]}") from None


def _finite(value: Any, where: str, positive: bool = False) -> float:
    """``value`` as a finite float (``> 0`` if ``positive``); ConfigError naming ``where`` otherwise."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ConfigError(f"{where} = {value!r} is not allowed; allowed: a finite number" + (" > 0" if positive else ""))
    return float(value)


def _resolve(name_or_path: str, group: str) -> Path:
    """A YAML file: an existing file, or ``<config dir>/<group>/<name>.yaml`` (a folder of the same
    name in the working directory, e.g. an earlier ``--out``, is not a spec)."""
    p = Path(os.path.expanduser(name_or_path))
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{group} file {p} does not exist")
        return p
    p = config_dir() / group / f"{name_or_path}.yaml"
    if not p.exists():
        have = sorted(q.stem for q in (config_dir() / group).glob("*.yaml"))
        raise ConfigError(f"{group} {name_or_path!r} not found; allowed: a path or one of {', '.join(have)}")
    return p


def load_targets(name_or_path: str | Sequence[str] = "default") -> list[Target]:
    """Targets from YAML: ``<summary key path>: {value, tolerance, source[, cohort_allowance]}``
    (the tolerance used is ``hypot(tolerance, cohort_allowance)``), or a statistic of a
    paired counterfactual run: ``<name>: {value, tolerance, statistic: help_odds_ratio,
    counterfactual: {dotted key: value}}``. A list of names/paths concatenates files."""
    if not isinstance(name_or_path, str):
        out = [t for item in name_or_path for t in load_targets(str(item))]
        keys = [t.key for t in out]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"targets {list(name_or_path)} declare a target twice")
        return out
    path = _resolve(name_or_path, "targets")
    raw = _load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"targets file {path} holds a {type(raw).__name__}; allowed: a mapping "
                          "<summary key>: {value, tolerance, source}")
    out = []
    for key, spec in raw.items():
        if not isinstance(spec, dict) or "value" not in spec or "tolerance" not in spec:
            raise ConfigError(f"target {key!r} = {spec!r} is not allowed; allowed: a mapping with value and tolerance")
        stat = spec.get("statistic")
        if stat is not None and stat not in STATISTICS:
            raise ConfigError(f"target {key}.statistic = {stat!r}; allowed: {', '.join(STATISTICS)}")
        cf = spec.get("counterfactual")
        if cf is not None and not (isinstance(cf, dict) and all(isinstance(v, (int, float)) for v in cf.values())):
            raise ConfigError(f"target {key}.counterfactual = {cf!r}; allowed: a mapping of dotted keys to numbers")
        tol = _finite(spec["tolerance"], f"target {key}.tolerance", positive=True)
        allowance = spec.get("cohort_allowance", 0.0)
        allowance = 0.0 if allowance == 0 else _finite(allowance, f"target {key}.cohort_allowance", positive=True)
        out.append(Target(str(key), _finite(spec["value"], f"target {key}.value"), float(np.hypot(tol, allowance)),
                          str(spec.get("source", "")), stat, cf, allowance))
    if not out:
        raise ConfigError("targets file declares no targets")
    return out


def load_spec(name_or_path: str = "default", targets: str | None = None) -> Spec:
    """The calibration spec (``configs/calibration_spec/<name>.yaml`` or a path)."""
    path = _resolve(name_or_path, "calibration_spec")
    raw = _load_yaml(path) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters") or {}, dict):
        raise ConfigError(f"calibration spec {path}: allowed: a mapping with parameters: {{<key>: {{lo, hi}}}}")
    params = []
    for key, b in (raw.get("parameters") or {}).items():
        if not isinstance(b, dict) or "lo" not in b or "hi" not in b:
            raise ConfigError(f"parameters.{key} = {b!r} is not allowed; allowed: a mapping with lo and hi")
        lo, hi = _finite(b["lo"], f"parameters.{key}.lo"), _finite(b["hi"], f"parameters.{key}.hi")
        if not lo < hi:
            raise ConfigError(f"parameters.{key}: lo = {lo} must be below hi = {hi}")
        prior = str(b.get("prior", "uniform"))
        if prior not in ("uniform", "normal"):
            raise ConfigError(f"parameters.{key}.prior = {prior!r}; allowed: uniform, normal")
        if prior == "normal" and (b.get("mean") is None or not float(b.get("sd") or 0) > 0):
            raise ConfigError(f"parameters.{key}: a normal prior needs mean and sd > 0")
        unknown_p = set(b) - {"lo", "hi", "prior", "mean", "sd"}
        if unknown_p:
            raise ConfigError(f"parameters.{key}: unknown key(s) {', '.join(sorted(unknown_p))}; "
                              "allowed: lo, hi, prior, mean, sd")
        params.append(Parameter(str(key), lo, hi, prior,
                                None if b.get("mean") is None else float(b["mean"]),
                                None if b.get("sd") is None else float(b["sd"])))
    if not params:
        raise ConfigError("calibration spec declares no parameters")
    check_parameters(params)
    tsrc = targets or raw.get("targets", "default")
    if isinstance(tsrc, (list, tuple)):
        tsrc = ",".join(map(str, tsrc))
    tsrc = str(tsrc)
    known = {f for f in Spec.__dataclass_fields__} - {"parameters", "targets", "targets_source"}
    extra = {k: raw[k] for k in raw if k in known}
    unknown = set(raw) - known - {"parameters", "targets"}
    if unknown:
        raise ConfigError(f"calibration spec: unknown key(s) {', '.join(sorted(unknown))}")
    spec = Spec(parameters=params, targets=load_targets(tsrc.split(",") if "," in tsrc else tsrc),
                targets_source=tsrc, **extra)
    check_loss(spec)
    return spec


LOSSES = ("squared", "outside")


def check_loss(spec: Spec) -> None:
    """Refuse an unknown loss, a margin outside [0, 1] or a negative tie-break (one line)."""
    if spec.loss not in LOSSES:
        raise _unknown_loss(spec)
    for key, lo, hi in (("loss_margin", 0.0, 1.0), ("loss_tiebreak", 0.0, 1.0)):
        value = getattr(spec, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
            raise ConfigError(f"calibration spec: {key} = {value!r}; allowed: a number between {lo:g} and {hi:g}")


def spec_loss(spec: Spec, values: dict[str, float]) -> float:
    """The objective of a fit (dimensionless; see :attr:`Spec.loss`)."""
    z = np.array([t.z(values[t.key]) for t in spec.targets], dtype=float)
    if spec.loss == "outside":
        beyond = np.maximum(0.0, np.abs(z) - spec.loss_margin)
        return float(np.sum(beyond ** 2) + spec.loss_tiebreak * np.sum(z ** 2))
    if spec.loss == "squared":
        return float(np.sum(z ** 2))
    raise _unknown_loss(spec)


def _unknown_loss(spec: Spec) -> ConfigError:
    return ConfigError(f"calibration spec: loss = {spec.loss!r}; allowed: {', '.join(LOSSES)}")


def check_parameters(params: Sequence[Parameter]) -> None:
    """Each parameter must be a numeric config key, its bounds (the prior's support) inside the
    schema's valid range; one-line ConfigError otherwise."""
    from ..plausible import schema_fields

    known = schema_fields()
    for p in params:
        parts = p.key.split(".")
        generic = (f"agencies.<name>.{parts[2]}" if len(parts) == 3 and parts[0] == "agencies" else p.key)
        meta = known.get(generic)
        if meta is None or not meta["numeric"]:
            raise ConfigError(f"parameters.{p.key} is not a numeric config key; allowed: a dotted key of "
                              "dropout_sim/schema.py with a range (e.g. dynamics.dropout_intercept)")
        lo, hi = meta["lo"], meta["hi"]
        if (lo is not None and p.lo < lo) or (hi is not None and p.hi > hi):
            raise ConfigError(f"parameters.{p.key}: [{p.lo:g}, {p.hi:g}] is outside the valid range; allowed: "
                              f"within [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]")
        if p.prior == "normal" and not p.lo <= (p.mean or 0.0) <= p.hi:
            raise ConfigError(f"parameters.{p.key}: prior mean {p.mean} is outside [{p.lo:g}, {p.hi:g}]")


# --------------------------------------------------------------------------------------
# config access by dotted key
# --------------------------------------------------------------------------------------
def get_value(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def set_value(cfg: Config, key: str, value: Any) -> None:
    *head, last = key.split(".")
    obj = cfg
    for part in head:
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    old = obj[last] if isinstance(obj, dict) else getattr(obj, last)
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        raise ConfigError(f"{key} is not a numeric parameter; only numbers can be calibrated")
    value = int(round(value)) if isinstance(old, int) else float(value)
    if isinstance(obj, dict):
        obj[last] = value
    else:
        setattr(obj, last, value)


def summary_value(summary: dict, key: str) -> float:
    """A summary.json value by dotted key path (``completion_5y_by_track.academic``)."""
    try:
        value = get_value(summary, key)
    except (KeyError, AttributeError):
        raise ConfigError(f"target {key!r} is not a key path of summary.json") from None
    if isinstance(value, dict) and "mean" in value:  # process measures: {mean, median, n}
        value = value["mean"]
    if value is None or not isinstance(value, (int, float)):
        raise ConfigError(f"target {key!r} is not a number in summary.json (got {value!r})")
    return float(value)


def cohort_allowances(targets: Sequence[Target], grade_points: np.ndarray, prefix: str,
                      headline: str = "completion_5y") -> tuple[float, dict[str, float]]:
    """Completion targets by grade-point band that come from other cohorts than the headline:
    how far each band may differ for that reason alone.

    Weighted by the share of ``grade_points`` (an intake as the model draws it) in each band, the
    band targets (keys ``prefix + band``) imply an overall completion; where it differs from the
    ``headline`` target the sources disagree by cohort. The common logit shift ``delta`` that
    makes the bands imply the headline, applied to each band's value, gives the band's
    allowance ``|value - sigmoid(logit(value) + delta)|``. Computed from targets and intake
    only, never from a simulation. Returns ``(delta, {key: allowance})``.
    """
    from scipy.optimize import brentq

    from ..model.metrics import band_shares
    from ..model.students import sigmoid

    by_key = {t.key: t for t in targets}
    if headline not in by_key:
        raise ConfigError(f"targets have no {headline!r} to compare the grade-point bands with")
    keys, shares, values = [], [], []
    for band, share in band_shares(grade_points).items():
        key = prefix + band
        if key not in by_key:
            raise ConfigError(f"targets have no {key!r}")
        keys.append(key)
        shares.append(share)
        values.append(min(max(by_key[key].value, 1e-6), 1 - 1e-6))
    s, p = np.array(shares) / np.sum(shares), np.array(values)
    logit = np.log(p / (1 - p))

    delta = brentq(lambda d: float(s @ sigmoid(logit + d)) - by_key[headline].value, -10.0, 10.0)
    shifted = sigmoid(logit + delta)
    return float(delta), {k: float(abs(v - w)) for k, v, w in zip(keys, p, shifted)}


# --------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------
class Objective:
    """Mean target values over the spec's replicates (same seeds every call: CRN).

    The replicates of an evaluation run on the batch runner (in parallel on ``n_jobs``
    processes, default ``DROPOUT_SIM_PROCESSES`` or up to 2), each as ``base`` plus the
    evaluation's parameter values, seed, replicate and cohort size as overrides.
    """

    def __init__(self, spec: Spec, base: Config, n_jobs: int | None = None):
        from ..runs.batch import BatchRunner, default_n_jobs

        check_loss(spec)  # a Spec built in code, not by load_spec, is checked too
        self.spec = spec
        self.base = base
        self.evaluations: list[dict] = []
        self._integer = {}
        for p in spec.parameters:
            old = get_value(base, p.key)
            if isinstance(old, bool) or not isinstance(old, (int, float)):
                raise ConfigError(f"{p.key} is not a numeric parameter; only numbers can be calibrated")
            self._integer[p.key] = isinstance(old, int)
        self.runner = BatchRunner(base, n_jobs=n_jobs or default_n_jobs())

    def close(self) -> None:
        self.runner.close()

    def overrides(self, x: Sequence[float], replicate: int) -> list[str]:
        """The overrides of one replicate of an evaluation at ``x``."""
        out = [f"seed={self.spec.seed}", f"replicate={replicate}", f"cohort.size={self.spec.cohort_size}"]
        for p, v in zip(self.spec.parameters, x):
            out.append(f"{p.key}={int(round(v))}" if self._integer[p.key] else f"{p.key}={float(v)!r}")
        return out

    def model_values(self, x: Sequence[float]) -> dict[str, float]:
        values: dict[str, list[float]] = {t.key: [] for t in self.spec.targets}
        if any(t.statistic for t in self.spec.targets):  # a counterfactual statistic needs the model in hand
            for r in range(self.spec.replicates):
                cfg = copy.deepcopy(self.base)
                for p, v in zip(self.spec.parameters, x):
                    set_value(cfg, p.key, v)
                cfg.seed, cfg.replicate, cfg.cohort.size = self.spec.seed, r, self.spec.cohort_size
                for key, value in target_values(validate(cfg), self.spec.targets).items():
                    values[key].append(value)
        else:
            runs = [self.overrides(x, r) for r in range(self.spec.replicates)]
            for outcome in self.runner.run(runs):
                if outcome.status != "ran":
                    raise ConfigError(f"calibration run {' '.join(outcome.overrides)} failed: {outcome.error}")
                for t in self.spec.targets:
                    values[t.key].append(summary_value(outcome.summary, t.key))
        return {k: float(np.mean(v)) for k, v in values.items()}

    def loss(self, values: dict[str, float]) -> float:
        return spec_loss(self.spec, values)

    def __call__(self, u: np.ndarray) -> float:
        x = [p.unscale(np.clip(ui, 0.0, 1.0)) for p, ui in zip(self.spec.parameters, u)]
        values = self.model_values(x)
        loss = self.loss(values)
        self.evaluations.append({"x": x, "values": values, "loss": loss})
        return loss


def target_values(cfg: Config, targets: Sequence[Target]) -> dict[str, float]:
    """Every target's model value for one run of ``cfg`` (plus its paired counterfactual runs
    when a target is a statistic such as ``help_odds_ratio``)."""
    from ..runs.api import run_simulation

    out: dict[str, float] = {}
    summary = None
    for t in targets:
        if t.statistic == "help_odds_ratio":
            from .effects import help_odds_ratio

            out[t.key], summary = help_odds_ratio(copy.deepcopy(cfg), t.counterfactual)
    if summary is None and any(t.statistic is None for t in targets):
        summary = run_simulation(cfg).summary
    for t in targets:
        if t.statistic is None:
            out[t.key] = summary_value(summary, t.key)
    return out


@dataclass
class CalibrationResult:
    spec: Spec
    start: list[float]
    fitted: list[float]
    start_values: dict[str, float]
    fitted_values: dict[str, float]
    loss_start: float
    loss: float
    evaluations: int
    seconds: float
    message: str

    @property
    def all_met(self) -> bool:
        return all(t.met(self.fitted_values[t.key]) for t in self.spec.targets)


def calibrate(spec: Spec, overrides: Sequence[str] = (), log: Callable[[str], None] | None = None) -> CalibrationResult:
    """Fit ``spec.parameters`` to ``spec.targets``; return start/fit values and the fit."""
    from scipy.optimize import minimize

    from ..runs.api import compose_config

    base = compose_config([*spec.overrides, *overrides])
    start = [float(get_value(base, p.key)) for p in spec.parameters]
    for p, x in zip(spec.parameters, start):
        if not p.lo <= x <= p.hi:
            raise ConfigError(f"{p.key} = {x} (start value) is outside its calibration bounds [{p.lo}, {p.hi}]")
    obj = Objective(spec, base)
    try:
        return _minimise(spec, obj, start, log, minimize)
    finally:
        obj.close()


def _minimise(spec: Spec, obj: Objective, start: list[float], log: Callable[[str], None] | None,
              minimize: Callable) -> CalibrationResult:
    t0 = time.perf_counter()
    u0 = np.array([p.scale(x) for p, x in zip(spec.parameters, start)])
    loss0 = obj(u0)
    start_values = obj.evaluations[0]["values"]
    if log:
        log(f"start: loss {loss0:.3f} " + _fmt_x(spec, start))
    n = len(u0)
    simplex = np.vstack([u0] + [u0 + spec.initial_step * np.eye(n)[i] * (1 if u0[i] + spec.initial_step <= 1 else -1)
                                for i in range(n)])

    def callback(*_args):
        if log:
            best = min(obj.evaluations, key=lambda e: e["loss"])
            log(f"  eval {len(obj.evaluations):3d}: best loss {best['loss']:.3f} " + _fmt_x(spec, best["x"]))

    remaining = max(1, spec.max_evaluations - 1)
    if spec.method == "Nelder-Mead":
        options = {"maxfev": remaining, "initial_simplex": simplex, "xatol": spec.xatol, "fatol": spec.fatol}
    else:
        options = {"maxfun" if spec.method in ("L-BFGS-B", "TNC") else "maxfev": remaining}
    res = minimize(obj, u0, method=spec.method, bounds=[(0.0, 1.0)] * n, callback=callback, options=options)
    best = min(obj.evaluations, key=lambda e: e["loss"])
    seconds = time.perf_counter() - t0
    return CalibrationResult(spec, start, best["x"], start_values, best["values"], loss0, best["loss"],
                             len(obj.evaluations), seconds, str(res.message))


def _fmt_x(spec: Spec, x: Sequence[float]) -> str:
    return ", ".join(f"{p.key.split('.')[-1]}={v:.4g}" for p, v in zip(spec.parameters, x))


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
def fit_table(result: CalibrationResult) -> str:
    """The fit target by target: start, fitted, target +/- tolerance, z-score, met."""
    rows = [f"{'target':38s} {'start':>8s} {'fitted':>8s} {'target':>8s} {'tol':>6s} {'z':>6s}  met"]
    for t in result.spec.targets:
        v = result.fitted_values[t.key]
        rows.append(f"{t.key:38s} {result.start_values[t.key]:8.4f} {v:8.4f} {t.value:8.4f} {t.tolerance:6.3f} "
                    f"{t.z(v):+6.2f}  {'yes' if t.met(v) else 'NO'}")
    return "\n".join(rows)


def params_table(result: CalibrationResult) -> str:
    rows = [f"{'parameter':38s} {'start':>9s} {'fitted':>9s}  bounds"]
    for p, a, b in zip(result.spec.parameters, result.start, result.fitted):
        rows.append(f"{p.key:38s} {a:9.4f} {b:9.4f}  [{p.lo:g}, {p.hi:g}]")
    return "\n".join(rows)


def to_yaml(result: CalibrationResult, name: str, command: str = "") -> str:
    """The fitted values as a Hydra config usable with ``+calibration=<name>``."""
    nested: dict = {}
    for p, v in zip(result.spec.parameters, result.fitted):
        d = nested
        *head, last = p.key.split(".")
        for part in head:
            d = d.setdefault(part, {})
        d[last] = round(float(v), 6)
    from omegaconf import OmegaConf

    spec = result.spec
    header = [
        "# @package _global_",
        f"# Calibrated parameters ({name}); use: dropout-sim +calibration={name}",
        f"# Written by: {command or 'dropout-sim calibrate'}  ({_dt.date.today().isoformat()})",
        f"# Targets: {spec.targets_source}; scenario overrides: {list(spec.overrides)}; seed {spec.seed}, "
        f"{spec.replicates} replicates x {spec.cohort_size} students (common random numbers)",
        f"# {result.evaluations} evaluations, {result.seconds:.0f} s; loss ({_loss_text(spec)}) "
        f"{result.loss_start:.3f} -> {result.loss:.3f}",
    ]
    for t in spec.targets:
        v = result.fitted_values[t.key]
        header.append(f"#   {t.key}: model {v:.4f}, target {t.value} +/- {t.tolerance_text()} "
                      f"({'met' if t.met(v) else 'NOT met'})")
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(OmegaConf.create(nested))


def _loss_text(spec: Spec) -> str:
    if spec.loss == "outside":
        return (f"sum of squared z beyond {spec.loss_margin:g} tolerance + {spec.loss_tiebreak:g} x sum of squared z")
    return "sum of squared z"


def write_result(result: CalibrationResult, name: str, out: str | None = None, command: str = "") -> Path:
    """Write ``<out or packaged configs>/calibration/<name>.yaml`` atomically; return its path."""
    from ..runs.results import atomic_write_text

    root = Path(os.path.expanduser(out)) if out else config_dir()
    path = root / "calibration" / f"{name}.yaml"
    atomic_write_text(path, to_yaml(result, name, command))
    return path


def usage_hint(name: str, out: str | None) -> str:
    if out:
        return f"dropout-sim --config-dir {Path(os.path.expanduser(out)).resolve()} +calibration={name}"
    return f"dropout-sim +calibration={name}"


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(
        prog="dropout-sim calibrate",
        description="Fit declared parameters to declared targets (YAML) with scipy.optimize, "
                    "using common random numbers; write the fit as configs/calibration/<name>.yaml.")
    ap.add_argument("--method", default=None, choices=("nelder-mead", "abc"),
                    help="nelder-mead (default: a point fit with common random numbers) or abc (ABC-SMC "
                         "posterior with pyabc, pip install '.[calibration]'; spec default 'abc')")
    ap.add_argument("--spec", default=None,
                    help="calibration spec: name in configs/calibration_spec/ or a path (default: default, "
                         "or abc with --method abc)")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="abc: stop after this many minutes of wall clock (default: the spec's)")
    ap.add_argument("--population", type=int, default=None, help="abc: particles per generation")
    ap.add_argument("--generations", type=int, default=None, help="abc: at most this many generations")
    ap.add_argument("--jobs", type=int, default=None, help="abc: worker processes (default 1)")
    ap.add_argument("--targets", default=None, help="targets: name in configs/targets/ or a path (default: the spec's)")
    ap.add_argument("--name", default="default", help="name of the written config (+calibration=NAME)")
    ap.add_argument("--out", default=None,
                    help="write DIR/calibration/NAME.yaml instead of into the packaged configs "
                         "(use for a non-editable install; then run with --config-dir DIR)")
    ap.add_argument("--max-evals", type=int, default=None, help="budget of model evaluations")
    ap.add_argument("--replicates", type=int, default=None, help="replicates per evaluation")
    ap.add_argument("--cohort-size", type=int, default=None, help="students per replicate")
    ap.add_argument("--seed", type=int, default=None, help="CRN seed shared by all evaluations")
    ap.add_argument("--dry-run", action="store_true", help="evaluate the start point only; write nothing")
    ap.add_argument("--quiet", action="store_true", help="print only the final fit")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the calibrated scenario (key=value)")
    return ap


SPEC_LIMITS = {"max_evaluations": ("--max-evals", 1, 100_000), "replicates": ("--replicates", 1, 1000),
               "cohort_size": ("--cohort-size", 1, 10_000_000), "seed": ("--seed", 0, 2**63 - 1)}


def check_spec(spec: Spec) -> None:
    """Refuse budgets, replicates, sizes and seeds outside their range (one line naming the option)."""
    for attr, (option, lo, hi) in SPEC_LIMITS.items():
        value = getattr(spec, attr)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"{option} {value!r} is not allowed; allowed: an integer between {lo} and {hi}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import logging

    logging.getLogger("MESA").setLevel(logging.WARNING)
    if args.method == "abc":
        from .abc import main_abc

        return main_abc(args, argv)
    if args.spec is None:
        args.spec = "default"
    try:
        spec = load_spec(args.spec, args.targets)
        if spec.method.lower() == "abc" and args.method is None:  # a spec written for ABC
            from .abc import main_abc

            return main_abc(args, argv)
        if spec.method.lower() in ("abc", "nelder-mead"):
            spec.method = "Nelder-Mead"
        for attr, opt in (("max_evaluations", args.max_evals), ("replicates", args.replicates),
                          ("cohort_size", args.cohort_size), ("seed", args.seed)):
            if opt is not None:
                setattr(spec, attr, opt)
        check_spec(spec)
        if not args.dry_run:  # the fit is written at the end: refuse an unwritable folder before the work
            from ..runs.sweep import folder_problem

            dest = Path(args.out) / "calibration" if args.out else config_dir() / "calibration"
            problem = folder_problem(dest)
            if problem:
                raise ConfigError(f"--out: cannot write {dest} ({problem}); allowed: a writable folder")
        if args.dry_run:
            spec.max_evaluations = 1
        log = None if args.quiet else (lambda s: print(s, flush=True))
        print(f"calibrating {len(spec.parameters)} parameters to {len(spec.targets)} targets "
              f"({spec.targets_source}); {spec.replicates} x {spec.cohort_size} students per evaluation, "
              f"at most {spec.max_evaluations} evaluations", flush=True)
        result = calibrate(spec, args.overrides, log=log)
    except ConfigError as exc:
        print(f"dropout-sim calibrate: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf errors of a bad override: one line
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if not isinstance(exc, (HydraException, OmegaConfBaseException)):
            raise
        from ..errors import one_line

        print(f"dropout-sim calibrate: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print()
    print(params_table(result))
    print()
    print(fit_table(result))
    print(f"\nloss {result.loss_start:.3f} -> {result.loss:.3f}; {result.evaluations} evaluations in "
          f"{result.seconds:.1f} s ({result.seconds / max(1, result.evaluations):.2f} s each); "
          f"{'all targets met' if result.all_met else 'NOT all targets met'}")
    if args.dry_run:
        return 0
    cmd = "dropout-sim calibrate " + " ".join(argv if argv is not None else sys.argv[1:])
    path = write_result(result, args.name, args.out, cmd.strip())
    print(f"wrote {path}\nuse:  {usage_hint(args.name, args.out)}")
    return 0 if result.all_met else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
