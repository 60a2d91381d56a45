"""``dropout-sim calibrate --method abc``: a posterior over the calibrated parameters (ABC-SMC).

Approximate Bayesian computation with sequential Monte Carlo (pyabc, the optional extra
``.[calibration]``): particles drawn from the priors of ``configs/calibration_spec/abc.yaml``
are simulated, and kept when the distance between the model's target values and the targets,
``sqrt(sum(((model - value) / tolerance) ** 2))``, is below a threshold that shrinks from one
generation to the next. The last generation's weighted particles are the posterior.

Each particle gets **fresh replicates** (a seed derived from the particle's values, so the
same particle on the same spec is reproducible, but different particles never share random
numbers): common random numbers are for comparing scenarios, not for a likelihood, and fresh
noise keeps the posterior honest about Monte Carlo noise.

Targets: every target of the spec's targets files, including statistics of paired
counterfactual runs such as the help odds ratio (:mod:`dropout_sim.analysis.effects`).

Writes into ``<out>/<name>/`` (default ``<out>`` = the packaged ``configs/posterior``):

``particles.csv``     one row per particle: one column per parameter (dotted key), ``weight``
``parameters.csv``    ``parameter, mean, q05, q50, q95`` (weighted)
``pairplot.png``      marginals and pairwise scatter of the particles (identifiability)
``predictive.png``    posterior predictive: the targets simulated at posterior draws against
                      target +/- tolerance (``predictive.csv`` holds the numbers)
``abc_log.txt``       generations, epsilons, evaluations, wall time, the command

The run takes it as ``posterior=<path of that folder> draw=<k>``. When ``<out>`` is a config
group folder (the packaged ``configs/posterior``, or any folder named ``posterior``) the option
``<out>/<name>.yaml`` is written as well, so ``posterior=<name>`` selects it (with
``--config-dir <out>/..`` for a folder outside the package). The point calibration (the
accepted particle with the smallest distance) goes to ``<configs>/calibration/<name>.yaml``,
usable as ``+calibration=<name>``: ``<configs>`` is the packaged config folder, the parent of a
``posterior`` folder, or else ``<out>``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..posterior import PARTICLES_FILE, POSTERIOR_DIR, WEIGHT, effective_sample_size, load, summary_table
from ..schema import Config, validate
from .calibrate import Spec, Target, config_dir, load_spec, set_value, target_values

PROG = "dropout-sim calibrate"


# --------------------------------------------------------------------------------------
# the model as pyabc sees it
# --------------------------------------------------------------------------------------
def particle_seed(base_seed: int, values: Sequence[float]) -> int:
    """A fresh seed per particle: a hash of the spec seed and the particle's values."""
    h = hashlib.blake2b(repr((int(base_seed), [float(v) for v in values])).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 1


def simulate(base: Config, spec: Spec, values: Sequence[float], seed: int) -> dict[str, float]:
    """Mean target values over ``spec.replicates`` fresh replicates of seed ``seed``."""
    acc: dict[str, list[float]] = {t.key: [] for t in spec.targets}
    for r in range(spec.replicates):
        cfg = copy.deepcopy(base)
        for p, v in zip(spec.parameters, values):
            set_value(cfg, p.key, v)
        cfg.seed, cfg.replicate, cfg.cohort.size = int(seed), r, int(spec.cohort_size)
        for k, v in target_values(validate(cfg), spec.targets).items():
            acc[k].append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def distance(model: dict[str, float], targets: Sequence[Target]) -> float:
    """sqrt(sum of squared z-scores); inf when a value is missing or not finite."""
    total = 0.0
    for t in targets:
        v = model.get(t.key, math.nan)
        if not math.isfinite(v):
            return math.inf
        total += t.z(v) ** 2
    return math.sqrt(total)


class _Model:
    """Picklable pyabc model: parameters p0..pn -> target values (fresh seed per particle)."""

    def __init__(self, base: Config, spec: Spec):
        self.base, self.spec = base, spec

    def __call__(self, par: Any) -> dict[str, float]:
        import logging

        logging.getLogger("MESA").setLevel(logging.WARNING)
        values = [float(par[f"p{i}"]) for i in range(len(self.spec.parameters))]
        return simulate(self.base, self.spec, values, particle_seed(self.spec.seed, values))


class _Distance:
    def __init__(self, targets: Sequence[Target]):
        self.targets = list(targets)

    def __call__(self, x: dict, x0: dict) -> float:
        return distance(x, self.targets)


def _prior(spec: Spec) -> Any:
    import pyabc

    rvs = {}
    for i, p in enumerate(spec.parameters):
        if p.prior == "normal":
            a, b = (p.lo - p.mean) / p.sd, (p.hi - p.mean) / p.sd
            rvs[f"p{i}"] = pyabc.RV("truncnorm", a, b, loc=p.mean, scale=p.sd)
        else:
            rvs[f"p{i}"] = pyabc.RV("uniform", p.lo, p.hi - p.lo)
    return pyabc.Distribution(**rvs)


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------
class _GenerationProgress(logging.Handler):
    """Forwards pyabc's two lines per generation (its epsilon; accepted / evaluated and the
    effective sample size) to ``log`` with the minutes since the start, so a run of an hour
    shows where it is."""

    def __init__(self, log, t0: float):
        super().__init__(logging.INFO)
        self.log, self.t0 = log, t0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if m := re.match(r"t: (\d+), eps: (\S+?)\.?$", message):
            text = f"generation {int(m[1]) + 1}: epsilon {float(m[2]):.3f}"
        elif m := re.match(r"Accepted: (\d+) / (\d+) = \S+, ESS: (\S+?)\.?$", message):
            text = f"accepted {m[1]} of {m[2]} evaluated, effective sample size {float(m[3]):.1f}"
        else:
            return
        self.log(f"  [{(time.perf_counter() - self.t0) / 60:5.1f} min] {text}")


def run_abc(spec: Spec, overrides: Sequence[str] = (), n_jobs: int = 1, log=print) -> dict[str, Any]:
    """Run ABC-SMC; return keys, values (particles x parameters), weights, best, epsilons, ...

    ``log``: where progress lines go (pyabc's epsilon and acceptance per generation, then a
    summary); None for silence."""
    import tempfile

    import pyabc

    from ..runs.api import compose_config

    base = compose_config([*spec.overrides, *overrides])
    abc_log = logging.getLogger("ABC")
    abc_log.setLevel(logging.INFO if log else logging.WARNING)
    # pyabc's own handler on "ABC" and the root's see warnings only; ours picks two INFO lines
    quieted = [(h, h.level) for h in abc_log.handlers]
    for h, level in quieted:
        h.setLevel(max(level, logging.WARNING))
    propagate, abc_log.propagate = abc_log.propagate, not log
    logging.getLogger("pyabc").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    progress = _GenerationProgress(log, t0) if log else None
    if progress:
        abc_log.addHandler(progress)
    np.random.seed(spec.seed % (2**32))  # pyabc draws from numpy's global generator
    sampler = (pyabc.sampler.SingleCoreSampler() if n_jobs <= 1
               else pyabc.sampler.MulticoreEvalParallelSampler(n_procs=n_jobs))
    abc = pyabc.ABCSMC(_Model(base, spec), _prior(spec), _Distance(spec.targets),
                       population_size=int(spec.population_size), sampler=sampler)
    with tempfile.TemporaryDirectory(prefix="dropout_sim_abc_") as tmp:
        observed = {t.key: t.value for t in spec.targets}
        abc.new(f"sqlite:///{Path(tmp) / 'abc.db'}", observed)
        try:
            history = abc.run(minimum_epsilon=float(spec.min_epsilon), max_nr_populations=int(spec.generations),
                              max_walltime=_dt.timedelta(minutes=float(spec.budget_minutes)))
        finally:
            abc_log.propagate = propagate
            for h, level in quieted:
                h.setLevel(level)
            if progress:
                abc_log.removeHandler(progress)
        t = history.max_t
        df, w = history.get_distribution(m=0, t=t)
        pops = history.get_all_populations()
        pop = history.get_population(t=t)
        best = min(pop.particles, key=lambda q: q.distance)
        evaluations = int(pops["samples"].sum()) if "samples" in pops else -1
        epsilons = [float(e) for e in pops.loc[pops["t"] >= 0, "epsilon"]] if "epsilon" in pops else []
    keys = [p.key for p in spec.parameters]
    values = df[[f"p{i}" for i in range(len(keys))]].to_numpy(dtype=float)
    weights = np.asarray(w, dtype=float)
    best_values = [float(best.parameter[f"p{i}"]) for i in range(len(keys))]
    seconds = time.perf_counter() - t0
    if log:
        log(f"{t + 1} generations, {evaluations} evaluations, {seconds:.0f} s; epsilons "
            + ", ".join(f"{e:.2f}" for e in epsilons))
    return {"base": base, "keys": keys, "values": values, "weights": weights, "best": best_values,
            "best_distance": float(best.distance), "epsilons": epsilons, "evaluations": evaluations,
            "seconds": seconds, "generations": t + 1}


def predictive(base: Config, spec: Spec, post_path: Path, draws: int, n_jobs: int = 1) -> list[dict[str, float]]:
    """Target values simulated at posterior draws 0..draws-1 (fresh seeds), on the batch runner."""
    post = load(post_path)
    runs = []
    for k in range(draws):
        values = post.draw(k)
        seed = particle_seed(spec.seed + 7919, [k])
        for r in range(spec.replicates):
            runs.append([*(f"{key}={_fmt(base, key, v)}" for key, v in values.items()), f"seed={seed}",
                         f"replicate={r}", f"cohort.size={int(spec.cohort_size)}"])
    per_run = targets_on_runner(base, spec.targets, runs, n_jobs)
    out = []
    for k in range(draws):
        chunk = per_run[k * spec.replicates:(k + 1) * spec.replicates]
        out.append({t.key: float(np.mean([c[t.key] for c in chunk])) for t in spec.targets})
    return out


def _fmt(base: Config, key: str, value: float) -> str:
    from .calibrate import get_value

    return str(int(round(value))) if isinstance(get_value(base, key), int) else repr(float(value))


def targets_on_runner(base: Config, targets: Sequence[Target], runs: Sequence[Sequence[str]],
                      n_jobs: int = 1) -> list[dict[str, float]]:
    """Every target's value for each run (``base`` plus overrides) on the batch runner; a
    statistic target (the help odds ratio) adds each run's paired counterfactual run."""
    from ..runs.batch import BatchRunner
    from .calibrate import summary_value
    from .effects import COUNTERFACTUAL, odds_ratio, outcomes

    stats = [t for t in targets if t.statistic is not None]
    batch = [list(r) for r in runs]
    for t in stats:
        cf = t.counterfactual if t.counterfactual is not None else COUNTERFACTUAL
        batch += [[*r, *(f"{k}={v!r}" for k, v in cf.items())] for r in runs]
    with BatchRunner(base, n_jobs=n_jobs, probe=outcomes if stats else None) as runner:
        done = runner.run(batch)
    bad = [o for o in done if o.status != "ran"]
    if bad:
        raise ConfigError(f"run {' '.join(bad[0].overrides)} {bad[0].status}: {bad[0].error}")
    n = len(runs)
    result = []
    for i in range(n):
        row = {t.key: summary_value(done[i].summary, t.key) for t in targets if t.statistic is None}
        for j, t in enumerate(stats):
            fact, cf = done[i].value, done[n * (j + 1) + i].value
            order = np.argsort(cf["gid"], kind="stable")
            row[t.key] = odds_ratio(fact, {k: v[order] for k, v in cf.items()})
        result.append(row)
    return result


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------
def write_particles(path: Path, keys: Sequence[str], values: np.ndarray, weights: np.ndarray) -> None:
    """particles.csv: one column per parameter (dotted key) and ``weight``; atomically."""
    import pandas as pd

    from ..runs.results import atomic_write_text

    df = pd.DataFrame(np.asarray(values, dtype=float), columns=list(keys))
    df[WEIGHT] = np.asarray(weights, dtype=float)
    atomic_write_text(path, df.to_csv(index=False, float_format="%.10g"))


def pair_plot(keys: Sequence[str], values: np.ndarray, weights: np.ndarray, spec: Spec | None = None):
    """Weighted marginal histograms (diagonal) and particle scatter (below): identifiability."""
    from matplotlib.figure import Figure

    k = len(keys)
    fig = Figure(figsize=(2.4 * k + 0.6, 2.4 * k + 0.4), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False)
    w = np.asarray(weights, float)
    size = 6 + 60 * w / (w.max() or 1)
    bounds = {p.key: (p.lo, p.hi) for p in spec.parameters} if spec else {}
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(values[:, i], bins=20, weights=w, color="tab:blue", alpha=0.8,
                        range=bounds.get(keys[i]))
                ax.set_yticks([])
            else:
                ax.scatter(values[:, j], values[:, i], s=size, alpha=0.5, color="tab:blue", linewidths=0)
                if keys[i] in bounds:
                    ax.set_ylim(*bounds[keys[i]])
            if keys[j] in bounds:
                ax.set_xlim(*bounds[keys[j]])
            if i == k - 1:
                ax.set_xlabel(keys[j].split(".")[-1], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(keys[i].split(".")[-1], fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("Posterior particles (axes span the prior; point size = weight)", fontsize=10)
    return fig


def predictive_plot(targets: Sequence[Target], sims: Sequence[dict[str, float]]):
    """Each target: the simulated values at posterior draws against target +/- tolerance."""
    from matplotlib.figure import Figure

    n = len(targets)
    fig = Figure(figsize=(7, 0.7 * n + 1.4), layout="constrained")
    ax = fig.add_subplot()
    for i, t in enumerate(targets):
        z = np.array([s[t.key] for s in sims], dtype=float)
        z = (z - t.value) / t.tolerance
        ax.axhspan(i - 0.35, i + 0.35, xmin=0, xmax=1, color="none")
        ax.scatter(z, np.full(z.size, i) + np.linspace(-0.2, 0.2, z.size), s=10, alpha=0.6, color="tab:blue")
        if z.size:
            ax.plot([np.quantile(z, 0.05), np.quantile(z, 0.95)], [i, i], color="black", lw=2)
    ax.axvspan(-1, 1, color="tab:green", alpha=0.15, label="target +/- tolerance")
    ax.axvline(0, color="tab:green")
    ax.set_yticks(range(n), [f"{t.key}\n({t.value:g} +/- {t.tolerance:g})" for t in targets], fontsize=8)
    ax.set_xlabel("(model - target) / tolerance at posterior draws (bar: 5-95 %)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Posterior predictive check", fontsize=10)
    return fig


def posterior_places(name: str, out: str | None) -> tuple[Path, Path | None, Path, str]:
    """Where ``--name name --out out`` writes: (posterior folder, group option YAML or None,
    point calibration YAML, the command-line use of the posterior)."""
    packaged = config_dir() / POSTERIOR_DIR
    root = Path(os.path.expanduser(out)).absolute() if out else packaged
    folder = root / name
    is_packaged = root.resolve() == packaged.resolve()
    is_group = is_packaged or root.name == POSTERIOR_DIR
    option = root / f"{name}.yaml" if is_group else None
    cal_root = root.parent if is_group else root
    if is_packaged:
        use = f"dropout-sim posterior={name} draw=<k>"
    elif is_group:
        use = f"dropout-sim --config-dir {root.parent.resolve()} posterior={name} draw=<k>"
    else:
        use = f"dropout-sim posterior={folder.resolve()} draw=<k>"
    return folder, option, cal_root / "calibration" / f"{name}.yaml", use


def option_yaml(name: str, value: str, spec: Spec, keys: Sequence[str], command: str, use: str = "") -> str:
    """The ``posterior`` config group option ``<name>.yaml`` (selected as ``posterior=<name>``)."""
    import yaml

    header = ["# @package _global_",
              f"# Calibration posterior {name}: ABC-SMC (dropout-sim calibrate --method abc) fitted to the targets "
              f"{spec.targets_source} over {', '.join(keys)}.",
              f"# Its files are in {name}/ beside this file: particles.csv (the weighted particles), parameters.csv "
              "(weighted mean and 5/50/95 % quantiles), abc_log.txt, and the figures pairplot.png (marginals, "
              "pairwise scatter) and predictive.png (posterior predictive check).",
              f"# Use: {use or f'dropout-sim posterior={name} draw=<k>'}   (draw k = a particle by weighted resampling, the same "
              "in every scenario: paired); a sweep: 'draw=range(0,20)'. Without draw, draw 0 is run.",
              f"# Written by: {command}  ({_dt.date.today().isoformat()})"]
    return "\n".join(header) + "\n" + yaml.safe_dump({"posterior": value}, sort_keys=False)


def point_yaml(name: str, spec: Spec, keys: Sequence[str], best: Sequence[float], best_distance: float,
               command: str, posterior_use: str = "") -> str:
    from omegaconf import OmegaConf

    nested: dict = {}
    for key, v in zip(keys, best):
        d = nested
        *head, last = key.split(".")
        for part in head:
            d = d.setdefault(part, {})
        d[last] = round(float(v), 6)
    header = ["# @package _global_",
              f"# ABC point calibration ({name}): the accepted particle with the smallest distance; "
              f"use: dropout-sim +calibration={name}",
              f"# The posterior: {posterior_use or f'dropout-sim posterior={name} draw=<k>'}",
              f"# Written by: {command}  ({_dt.date.today().isoformat()})",
              f"# Targets: {spec.targets_source}; scenario overrides: {list(spec.overrides)}; distance "
              f"sqrt(sum z^2) = {best_distance:.3f}"]
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(OmegaConf.create(nested))


def write_outputs(result: dict, spec: Spec, name: str, out: str | None, command: str, n_jobs: int = 1,
                  log=print) -> dict[str, Path]:
    """particles.csv, parameters.csv, figures, predictive.csv, abc_log.txt and the point YAML."""
    import pandas as pd

    from ..runs.results import atomic_write_text

    folder, option, point, use = posterior_places(name, out)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["particles"] = folder / PARTICLES_FILE
    write_particles(files["particles"], result["keys"], result["values"], result["weights"])
    post = load(files["particles"])  # read back through the same checks as posterior=<path>
    files["parameters"] = folder / "parameters.csv"
    atomic_write_text(files["parameters"], pd.DataFrame(summary_table(post)).to_csv(index=False, float_format="%.6g"))
    fig = pair_plot(result["keys"], result["values"], result["weights"], spec)
    files["pairplot"] = folder / "pairplot.png"
    fig.savefig(files["pairplot"], dpi=110)
    sims = predictive(result["base"], spec, files["particles"], int(spec.predictive_draws), n_jobs)
    files["predictive_csv"] = folder / "predictive.csv"
    atomic_write_text(files["predictive_csv"], pd.DataFrame(sims).to_csv(index=False, float_format="%.6g"))
    files["predictive"] = folder / "predictive.png"
    predictive_plot(spec.targets, sims).savefig(files["predictive"], dpi=110)
    lines = [f"command: {command}", f"date: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
             f"targets: {spec.targets_source}", f"overrides: {list(spec.overrides)}",
             f"parameters: {', '.join(result['keys'])}",
             f"population_size: {spec.population_size}; generations run: {result['generations']} "
             f"(at most {spec.generations}); min_epsilon: {spec.min_epsilon}",
             f"replicates per particle: {spec.replicates} x {spec.cohort_size} students (fresh seeds)",
             f"epsilons: {', '.join(f'{e:.3f}' for e in result['epsilons'])}",
             f"evaluations: {result['evaluations']}; wall time: {result['seconds']:.0f} s",
             f"effective sample size: {effective_sample_size(result['weights']):.1f} of {len(result['weights'])}",
             "posterior predictive (share of draws within tolerance): " + ", ".join(
                 f"{t.key} {np.mean([abs(t.z(s[t.key])) <= 1 for s in sims]):.2f}" for t in spec.targets)]
    files["log"] = folder / "abc_log.txt"
    atomic_write_text(files["log"], "\n".join(lines) + "\n")
    if option is not None:  # posterior=<name> selects it (a config group option)
        is_packaged = option.parent.resolve() == (config_dir() / POSTERIOR_DIR).resolve()
        files["option"] = option
        atomic_write_text(option, option_yaml(name, name if is_packaged else str(folder.resolve()), spec,
                                              result["keys"], command, use))
    files["calibration"] = point
    atomic_write_text(files["calibration"], point_yaml(name, spec, result["keys"], result["best"],
                                                        result["best_distance"], command, use))
    return files


# --------------------------------------------------------------------------------------
# command line (called from calibrate.main with its parsed arguments)
# --------------------------------------------------------------------------------------
def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main_abc(args: Any, argv: Sequence[str] | None) -> int:
    """``dropout-sim calibrate --method abc ...``: exit 0, or 2 on bad input (one line, nothing written)."""
    import logging

    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        spec = load_spec(args.spec or "abc", args.targets)
        for attr, opt in (("replicates", args.replicates), ("cohort_size", args.cohort_size), ("seed", args.seed),
                          ("budget_minutes", args.budget_minutes), ("population_size", args.population),
                          ("generations", args.generations)):
            if opt is not None:
                setattr(spec, attr, opt)
        if spec.loss != "squared":  # ABC's distance is sqrt(sum z^2); a point-fit objective does not apply
            raise ConfigError(f"loss = {spec.loss!r} is not allowed with --method abc; allowed: squared "
                              "(the particle distance is sqrt(sum z^2))")
        if not spec.budget_minutes > 0:
            raise ConfigError(f"--budget-minutes = {spec.budget_minutes:g} is not allowed; allowed: > 0")
        for attr, low in (("population_size", 2), ("generations", 1), ("replicates", 1), ("cohort_size", 1),
                          ("predictive_draws", 1)):
            if int(getattr(spec, attr)) < low:
                raise ConfigError(f"{attr} = {getattr(spec, attr)} is not allowed; allowed: >= {low}")
        if args.jobs is not None and args.jobs < 1:
            raise ConfigError(f"--jobs = {args.jobs} is not allowed; allowed: >= 1")
        from ..runs.api import compose_config

        base = compose_config([*spec.overrides, *args.overrides])  # bad overrides: one line, before any run
        from .calibrate import get_value

        for p in spec.parameters:
            try:
                get_value(base, p.key)
            except (KeyError, AttributeError):
                raise ConfigError(f"parameters.{p.key} is not a key of the composed config "
                                  "(an agency that does not exist?)") from None
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        import pyabc  # noqa: F401
    except ImportError:
        return _fail("--method abc needs pyabc: pip install 'dropout_sim[calibration]' (or pip install pyabc)")
    n_jobs = args.jobs or 1
    name = args.name if args.name != "default" else "abc"
    print(f"ABC-SMC: {len(spec.parameters)} parameters, {len(spec.targets)} targets ({spec.targets_source}); "
          f"{spec.population_size} particles per generation, at most {spec.generations} generations, "
          f"budget {spec.budget_minutes:g} min; {spec.replicates} x {spec.cohort_size} students per particle "
          "(fresh seeds)", flush=True)
    result = run_abc(spec, args.overrides, n_jobs, log=None if args.quiet else (lambda s: print(s, flush=True)))
    command = "dropout-sim calibrate " + " ".join(argv if argv is not None else sys.argv[1:])
    files = write_outputs(result, spec, name, args.out, command.strip(), n_jobs)
    post = load(files["particles"])
    print()
    print(f"{'parameter':38s} {'mean':>9s} {'q05':>9s} {'q50':>9s} {'q95':>9s}  prior")
    for row, p in zip(summary_table(post), spec.parameters):
        print(f"{row['parameter']:38s} {row['mean']:9.4f} {row['q05']:9.4f} {row['q50']:9.4f} {row['q95']:9.4f}  "
              f"{p.prior} [{p.lo:g}, {p.hi:g}]")
    print(f"\nwrote {files['particles'].parent}/ (particles.csv, parameters.csv, pairplot.png, predictive.png)")
    if "option" in files:
        print(f"wrote {files['option']}")
    print(f"wrote {files['calibration']}")
    use = posterior_places(name, args.out)[3]
    print(f"use:  {use}    (a sweep: 'draw=range(0,20)')")
    return 0
