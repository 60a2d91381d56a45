"""``dropout-sim sensitivity --method morris|sobol --out DIR``: which parameters drive each output.

Global sensitivity analysis with SALib over the plausible ranges of
``configs/plausible_ranges.yaml`` (:mod:`dropout_sim.plausible`):

* **Morris** (elementary effects) screens every parameter of the selected kinds (default:
  the model's uncertain mechanism parameters, one per agency for agency fields): ``mu_star``
  (mean absolute effect of moving the parameter across its range), ``mu`` and ``sigma``
  (non-linearity and interactions).
* **Sobol** (Saltelli design, first order ``S1`` and total order ``ST``) follows on the top k
  parameters of the Morris ranking of one output (``DIR/indices.csv`` from a Morris run), or
  on ``--parameters``.

Outputs (``configs/sensitivity/default.yaml``): ``completion`` (completion within 60 months,
siloed) and the paired scenario gains ``colocation_gain`` (colocated - siloed) and
``early_intervention_gain`` (early intervention - default, siloed). Every design point runs
every scenario on each common-random-number replicate (same cohort and random draws in all
scenarios and at all design points), each gain is computed per replicate and then averaged.
``conf`` is the half-width of SALib's 95 % bootstrap interval (``resamples`` resamples).

Writes into DIR (atomically, file by file):

``indices.csv``            long: ``parameter, output, method, index, value, conf`` (a Sobol run
                           keeps the Morris rows and replaces earlier Sobol rows, and vice versa)
``design_<method>.csv``    the design (parameter columns) with each output per point
``ranges.csv``             ``parameter, lo, hi, integer, kind, source`` as sampled
``figures/<output>_<method>.png``  ranked bars (mu* or ST, with S1) with their intervals
``sensitivity_log.txt``    the command, design size, runs and wall time

Runs go through the batch runner (:mod:`dropout_sim.runs.batch`; ``--jobs`` worker processes):
the base config is composed once per scenario's group combination and each run applies its
parameter values and replicate as overrides.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..plausible import KINDS, Range, load_table, resolve
from ..schema import Config, validate

PROG = "dropout-sim sensitivity"
INDICES_FILE = "indices.csv"
INDEX_COLUMNS = ["parameter", "output", "method", "index", "value", "conf"]
MORRIS_INDICES = ("mu_star", "mu", "sigma")
SOBOL_INDICES = ("S1", "ST")


@dataclass
class SensSpec:
    kinds: list[str]
    scenarios: dict[str, list[str]]
    outputs: dict[str, tuple[str, str | None]]
    metric: str = "completion_5y"
    seed: int = 20240901
    replicates: int = 2
    cohort_size: int = 3000
    overrides: list[str] = field(default_factory=list)
    trajectories: int = 10
    levels: int = 4
    sobol_n: int = 64
    top: int = 10
    rank_by: str = "colocation_gain"
    resamples: int = 1000
    parameters: list[str] | None = None  # glob patterns of keys (None: every range of the kinds)


def _resolve_path(name_or_path: str) -> Path:
    from .calibrate import _resolve

    return _resolve(name_or_path, "sensitivity")


def load_spec(name_or_path: str = "default", quick: bool = False) -> SensSpec:
    """The sensitivity spec; ``quick`` applies its ``quick:`` section."""
    from .calibrate import _load_yaml

    raw = _load_yaml(_resolve_path(name_or_path)) or {}
    if quick:
        q = raw.get("quick") or {}
        raw = {**raw, **{k: v for k, v in q.items() if k not in ("morris", "sobol")},
               "morris": {**(raw.get("morris") or {}), **(q.get("morris") or {})},
               "sobol": {**(raw.get("sobol") or {}), **(q.get("sobol") or {})}}
    scenarios = {str(k): [str(o) for o in (v or [])] for k, v in (raw.get("scenarios") or {}).items()}
    if not scenarios:
        raise ConfigError("sensitivity spec declares no scenarios")
    outputs: dict[str, tuple[str, str | None]] = {}
    for name, expr in (raw.get("outputs") or {}).items():
        parts = [p.strip() for p in str(expr).split(" - ")]
        if len(parts) > 2 or any(p not in scenarios for p in parts):
            raise ConfigError(f"sensitivity output {name} = {expr!r}; allowed: a scenario or 'a - b' of scenarios "
                              f"({', '.join(scenarios)})")
        outputs[str(name)] = (parts[0], parts[1] if len(parts) == 2 else None)
    if not outputs:
        raise ConfigError("sensitivity spec declares no outputs")
    kinds = [str(k) for k in raw.get("kinds", ["model"])]
    for k in kinds:
        if k not in KINDS:
            raise ConfigError(f"sensitivity kinds: {k!r}; allowed: {', '.join(KINDS)}")
    morris, sobol = raw.get("morris") or {}, raw.get("sobol") or {}
    spec = SensSpec(kinds=kinds, scenarios=scenarios, outputs=outputs, metric=str(raw.get("metric", "completion_5y")),
                    seed=int(raw.get("seed", 20240901)), replicates=int(raw.get("replicates", 2)),
                    cohort_size=int(raw.get("cohort_size", 3000)),
                    overrides=[str(o) for o in raw.get("overrides") or []],
                    trajectories=int(morris.get("trajectories", 10)), levels=int(morris.get("levels", 4)),
                    sobol_n=int(sobol.get("n", 64)), top=int(sobol.get("top", 10)),
                    rank_by=str(sobol.get("rank_by", "colocation_gain")),
                    resamples=int(raw.get("resamples", 1000)),
                    parameters=[str(p) for p in raw["parameters"]] if raw.get("parameters") else None)
    if spec.rank_by not in outputs:
        raise ConfigError(f"sobol.rank_by = {spec.rank_by!r}; allowed: one of the outputs {', '.join(outputs)}")
    return spec


# --------------------------------------------------------------------------------------
# the design and its evaluation
# --------------------------------------------------------------------------------------
def scenario_configs(spec: SensSpec, extra: Sequence[str] = ()) -> dict[str, Config]:
    """Each scenario composed once (the spec's overrides, then the command line's)."""
    from ..runs.api import compose_config

    out = {}
    for name, overrides in spec.scenarios.items():
        cfg = compose_config([*overrides, *spec.overrides, *extra])
        cfg.seed, cfg.cohort.size = spec.seed, spec.cohort_size
        out[name] = validate(cfg)
    return out


def select_ranges(base: Config, spec: SensSpec, patterns: Sequence[str] | None = None,
                  table: dict | None = None) -> list[Range]:
    """The plausible ranges of the spec's kinds, restricted to keys matching ``patterns`` (globs)."""
    ranges = resolve(base, spec.kinds, table)
    pats = list(patterns) if patterns else spec.parameters
    if pats:
        # a pattern naming a key of another kind (e.g. a policy lever) selects it too
        every = resolve(base, KINDS, table)
        chosen = [r for r in every if any(fnmatch.fnmatchcase(r.key, p) for p in pats)]
        unmatched = [p for p in pats if not any(fnmatch.fnmatchcase(r.key, p) for r in every)]
        if unmatched:
            raise ConfigError(f"--parameters: {', '.join(unmatched)} matches no parameter with a plausible range; "
                              "allowed: dotted keys or globs, e.g. 'regime.*' or 'agencies.ot.*'")
        ranges = chosen
    if not ranges:
        raise ConfigError("no parameters to vary; allowed: --parameters matching keys of configs/plausible_ranges.yaml")
    return ranges


def _value(r: Range, v: float) -> str:
    return f"{r.key}={int(round(v))}" if r.integer else f"{r.key}={float(v)!r}"


def scenario_metrics(spec: SensSpec, extra: Sequence[str], ranges: Sequence[Range], X: np.ndarray,
                     n_jobs: int = 1) -> list[dict[str, float]]:
    """The metric of every scenario for each (design point, replicate), in that order, on the
    batch runner: base = the spec's and the command line's overrides with the CRN seed and the
    cohort size; each run adds its scenario's overrides, the point's values and the replicate."""
    from ..runs.batch import BatchRunner
    from .calibrate import summary_value

    names = list(spec.scenarios)
    runs = []
    for x in X:
        values = [_value(r, v) for r, v in zip(ranges, x)]
        for rep in range(spec.replicates):
            runs += [[*spec.scenarios[name], *values, f"replicate={rep}"] for name in names]
    base = [*spec.overrides, *extra, f"seed={spec.seed}", f"cohort.size={spec.cohort_size}"]
    with BatchRunner(base, n_jobs=n_jobs) as runner:
        runner.check(runs)  # a bad value anywhere: one line before anything runs
        outcomes = runner.run(runs)
    bad = [o for o in outcomes if o.status != "ran"]
    if bad:
        raise ConfigError(f"sensitivity run {' '.join(bad[0].overrides)} {bad[0].status}: {bad[0].error}")
    out = []
    for i in range(0, len(outcomes), len(names)):
        out.append({name: summary_value(o.summary, spec.metric) for name, o in zip(names, outcomes[i:i + len(names)])})
    return out


def evaluate(spec: SensSpec, extra: Sequence[str], ranges: Sequence[Range], X: np.ndarray,
             n_jobs: int = 1) -> dict[str, np.ndarray]:
    """Each output at each design point: per replicate (paired scenarios), then the mean."""
    results = scenario_metrics(spec, extra, ranges, X, n_jobs)
    out = {}
    for name, (a, b) in spec.outputs.items():
        per = np.array([res[a] - (res[b] if b else 0.0) for res in results], dtype=float)
        out[name] = per.reshape(len(X), spec.replicates).mean(axis=1)
    return out


def problem(ranges: Sequence[Range]) -> dict:
    return {"num_vars": len(ranges), "names": [r.key for r in ranges], "bounds": [[r.lo, r.hi] for r in ranges]}


def morris(spec: SensSpec, extra: Sequence[str], ranges: Sequence[Range], n_jobs: int = 1):
    """Morris design, its outputs and the indices (rows of indices.csv)."""
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    prob = problem(ranges)
    X = sample.sample(prob, N=spec.trajectories, num_levels=spec.levels, seed=spec.seed)
    Y = evaluate(spec, extra, ranges, X, n_jobs)
    rows = []
    for name, y in Y.items():
        res = analyze.analyze(prob, X, y, num_resamples=spec.resamples, conf_level=0.95, num_levels=spec.levels,
                              seed=spec.seed)
        for i, key in enumerate(prob["names"]):
            rows.append([key, name, "morris", "mu_star", float(res["mu_star"][i]), float(res["mu_star_conf"][i])])
            rows.append([key, name, "morris", "mu", float(res["mu"][i]), float("nan")])
            rows.append([key, name, "morris", "sigma", float(res["sigma"][i]), float("nan")])
    return X, Y, rows


def sobol(spec: SensSpec, extra: Sequence[str], ranges: Sequence[Range], n_jobs: int = 1):
    """Saltelli design (first and total order), its outputs and the indices."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    prob = problem(ranges)
    X = sample.sample(prob, spec.sobol_n, calc_second_order=False, seed=spec.seed)
    Y = evaluate(spec, extra, ranges, X, n_jobs)
    rows = []
    for name, y in Y.items():
        if np.ptp(y) == 0:  # a constant output has no variance to apportion
            res = {k: np.zeros(len(ranges)) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            res = analyze.analyze(prob, y, calc_second_order=False, num_resamples=spec.resamples, conf_level=0.95,
                                  seed=spec.seed)
        for i, key in enumerate(prob["names"]):
            for index in SOBOL_INDICES:
                rows.append([key, name, "sobol", index, float(res[index][i]), float(res[f"{index}_conf"][i])])
    return X, Y, rows


def top_parameters(indices_path: Path, output: str, k: int) -> list[str]:
    """The k parameters with the largest Morris mu* for ``output`` in an indices.csv."""
    import pandas as pd

    if not indices_path.is_file():
        raise ConfigError(f"--method sobol needs the Morris ranking {indices_path} (run --method morris --out "
                          f"{indices_path.parent} first) or --parameters")
    try:
        df = pd.read_csv(indices_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{indices_path} is unreadable: {exc}") from None
    missing = [c for c in INDEX_COLUMNS if c not in df]
    if missing:
        raise ConfigError(f"{indices_path} has no column(s) {', '.join(missing)}; allowed: {', '.join(INDEX_COLUMNS)}")
    sel = df[(df["method"] == "morris") & (df["index"] == "mu_star") & (df["output"] == output)]
    if sel.empty:
        raise ConfigError(f"{indices_path} has no Morris mu_star rows for output {output!r}")
    return list(sel.sort_values("value", ascending=False)["parameter"].head(k))


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------
def merge_indices(path: Path, rows: list[list], method: str) -> "Any":
    """indices.csv with this method's rows replaced by ``rows`` (other methods kept)."""
    import pandas as pd

    new = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    if path.is_file():
        try:
            old = pd.read_csv(path)
            if all(c in old for c in INDEX_COLUMNS):
                new = pd.concat([old[old["method"] != method][INDEX_COLUMNS], new], ignore_index=True)
        except (OSError, ValueError):
            pass
    return new


def ranked_figure(indices: "Any", output: str, method: str, top: int = 25):
    """Horizontal bars, largest on top: mu* (Morris) or ST with S1 beside it (Sobol), +/- conf."""
    from matplotlib.figure import Figure

    df = indices[(indices["output"] == output) & (indices["method"] == method)]
    main = "mu_star" if method == "morris" else "ST"
    m = df[df["index"] == main].sort_values("value", ascending=False).head(top)
    keys = list(m["parameter"])[::-1]
    fig = Figure(figsize=(7.5, 0.28 * len(keys) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    vals = m.set_index("parameter").loc[keys]
    scale = 100.0 if output.startswith("completion") or output.endswith("_gain") else 1.0
    if method == "morris":
        ax.barh(y, vals["value"] * scale, xerr=vals["conf"].fillna(0) * scale, color="tab:blue",
                label="mu* (mean |elementary effect|)")
        ax.set_xlabel(f"mu* of {output}" + (" (percentage points across the plausible range)" if scale == 100 else ""))
    else:
        s1 = df[df["index"] == "S1"].set_index("parameter").loc[keys]
        ax.barh(y + 0.2, vals["value"], height=0.4, xerr=vals["conf"], color="tab:blue", label="ST (total order)")
        ax.barh(y - 0.2, s1["value"], height=0.4, xerr=s1["conf"], color="tab:orange", label="S1 (first order)")
        ax.set_xlabel(f"Sobol index of {output} (share of its variance)")
    ax.set_yticks(y, [k.replace("agencies.", "") for k in keys], fontsize=7)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{output}: parameters ranked by {main} ({method})\nbars: 95 % bootstrap interval", fontsize=9)
    return fig


def run(method: str, out: Path, spec: SensSpec, overrides: Sequence[str] = (), parameters: Sequence[str] | None = None,
        n_jobs: int = 1, ranges_path: str | None = None, log=print, command: str = "") -> dict[str, Path]:
    """Run one method into ``out``; return the written files."""
    import pandas as pd

    from ..runs.results import atomic_write_text

    table = load_table(ranges_path) if ranges_path else None
    configs = scenario_configs(spec, overrides)
    base = next(iter(configs.values()))
    if method == "sobol" and not parameters and (out / INDICES_FILE).is_file() or (
            method == "sobol" and not parameters and not spec.parameters):
        keys = top_parameters(out / INDICES_FILE, spec.rank_by, spec.top)
        every = {r.key: r for r in resolve(base, KINDS, table)}
        ranges = [every[k] for k in keys if k in every]
    else:
        ranges = select_ranges(base, spec, parameters, table)
    if method == "sobol" and len(ranges) < 2:
        raise ConfigError("--method sobol needs at least 2 parameters")
    points = (spec.trajectories * (len(ranges) + 1) if method == "morris" else spec.sobol_n * (len(ranges) + 2))
    runs = points * spec.replicates * len(configs)
    if log:
        log(f"{method}: {len(ranges)} parameters, {points} design points x {spec.replicates} replicates x "
            f"{len(configs)} scenarios = {runs} runs of {spec.cohort_size} students ({n_jobs} worker(s))")
    t0 = time.perf_counter()
    X, Y, rows = (morris if method == "morris" else sobol)(spec, list(overrides), ranges, n_jobs)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    indices = merge_indices(out / INDICES_FILE, rows, method)
    files["indices"] = out / INDICES_FILE
    atomic_write_text(files["indices"], indices.to_csv(index=False, float_format="%.6g"))
    design = pd.DataFrame(X, columns=[r.key for r in ranges])
    for name, y in Y.items():
        design[name] = y
    files["design"] = out / f"design_{method}.csv"
    atomic_write_text(files["design"], design.to_csv(index=False, float_format="%.8g"))
    files["ranges"] = out / "ranges.csv"
    atomic_write_text(files["ranges"], pd.DataFrame([{"parameter": r.key, "lo": r.lo, "hi": r.hi, "integer": r.integer,
                                                      "kind": r.kind, "source": r.source} for r in ranges])
                      .to_csv(index=False))
    (out / "figures").mkdir(exist_ok=True)
    for name in spec.outputs:
        path = out / "figures" / f"{name}_{method}.png"
        ranked_figure(indices, name, method).savefig(path, dpi=110)
        files[f"figure_{name}"] = path
    lines = [f"command: {command}", f"date: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
             f"method: {method}; parameters: {len(ranges)}; design points: {len(X)}; replicates: {spec.replicates}; "
             f"scenarios: {', '.join(configs)}; runs: {len(X) * spec.replicates * len(configs)}",
             f"cohort size: {spec.cohort_size}; seed: {spec.seed}; overrides: {[*spec.overrides, *overrides]}",
             f"wall time: {seconds:.0f} s ({seconds / max(1, len(X) * spec.replicates * len(configs)):.2f} s per run, "
             f"{n_jobs} worker(s))"]
    files["log"] = out / "sensitivity_log.txt"
    with open(files["log"], "a") as fh:
        fh.write("\n".join(lines) + "\n\n")
    if log:
        log(f"done in {seconds:.0f} s")
        main_index = "mu_star" if method == "morris" else "ST"
        for name in spec.outputs:
            top = (indices[(indices["output"] == name) & (indices["method"] == method) & (indices["index"] == main_index)]
                   .sort_values("value", ascending=False).head(5))
            log(f"  {name}: " + ", ".join(f"{p} {v:.3g}" for p, v in zip(top["parameter"], top["value"])))
    return files


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description="Global sensitivity analysis (SALib) over the plausible ranges of "
                               "configs/plausible_ranges.yaml: Morris screening of every parameter, Sobol on the top k.")
    ap.add_argument("--method", required=True, choices=("morris", "sobol"))
    ap.add_argument("--out", required=True, type=Path, help="output folder (indices.csv, figures/, design_*.csv)")
    ap.add_argument("--spec", default="default", help="name in configs/sensitivity/ or a path")
    ap.add_argument("--quick", action="store_true", help="the spec's small design (tests, a first look)")
    ap.add_argument("--parameters", default=None,
                    help="comma-separated keys or globs to vary (default: every range of the spec's kinds; "
                         "sobol: the top k of DIR/indices.csv)")
    ap.add_argument("--kinds", default=None, help=f"comma-separated kinds of parameters ({', '.join(KINDS)})")
    ap.add_argument("--ranges", default=None, help="another plausible-ranges YAML")
    ap.add_argument("--replicates", type=int, default=None, help="CRN replicates per design point")
    ap.add_argument("--cohort-size", type=int, default=None, help="students per cohort")
    ap.add_argument("--trajectories", type=int, default=None, help="Morris trajectories r")
    ap.add_argument("--n", type=int, default=None, help="Sobol base sample N")
    ap.add_argument("--top", type=int, default=None, help="Sobol: the top k parameters of the Morris ranking")
    ap.add_argument("--rank-by", default=None, help="Sobol: the output whose Morris ranking picks the top k")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=None,
                    help="worker processes (default DROPOUT_SIM_PROCESSES or up to 2; -1 = all cores)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for every run (key=value)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import logging

    from ..runs.batch import default_n_jobs

    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        spec = load_spec(args.spec, quick=args.quick)
        for attr, opt in (("replicates", args.replicates), ("cohort_size", args.cohort_size),
                          ("trajectories", args.trajectories), ("sobol_n", args.n), ("top", args.top),
                          ("seed", args.seed), ("rank_by", args.rank_by)):
            if opt is not None:
                setattr(spec, attr, opt)
        if args.kinds:
            spec.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
            bad = [k for k in spec.kinds if k not in KINDS]
            if bad:
                raise ConfigError(f"--kinds {','.join(bad)}; allowed: {', '.join(KINDS)}")
        for attr, low in (("replicates", 1), ("cohort_size", 1), ("trajectories", 2), ("sobol_n", 2), ("top", 2),
                          ("levels", 2)):
            if getattr(spec, attr) < low:
                raise ConfigError(f"{attr.replace('_', '-')} = {getattr(spec, attr)} is not allowed; allowed: >= {low}")
        if spec.rank_by not in spec.outputs:
            raise ConfigError(f"--rank-by {spec.rank_by!r}; allowed: {', '.join(spec.outputs)}")
        if args.jobs is not None and args.jobs == 0:
            raise ConfigError("--jobs = 0 is not allowed; allowed: >= 1, or -1 for all cores")
        if args.out.exists() and not args.out.is_dir():
            raise ConfigError(f"--out {args.out} is a file; allowed: a folder")
        try:
            import SALib  # noqa: F401
        except ImportError:
            raise ConfigError("sensitivity needs SALib, a dependency of dropout_sim: reinstall it (pip install .)") from None
        params = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
        command = f"{PROG} " + " ".join(argv if argv is not None else sys.argv[1:])
        files = run(args.method, args.out, spec, args.overrides, params, args.jobs or default_n_jobs(),
                    args.ranges, command=command.strip())
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"indices: {files['indices']}")
    print(f"figures: {files['indices'].parent / 'figures'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
