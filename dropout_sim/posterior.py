"""Posterior draws as config overrides: ``posterior=<name or path> draw=<k>``.

A posterior is a ``particles.csv`` written by ``dropout-sim calibrate --method abc``: one row
per particle, one column per calibrated parameter (a dotted config key such as
``dynamics.dropout_intercept``) and a ``weight`` column (non-negative, not all zero; they
need not sum to one). ``posterior`` names

* a shipped posterior, an option of the config group ``configs/posterior/`` (``posterior=section9_abc``:
  ``configs/posterior/section9_abc.yaml`` sets ``posterior: section9_abc``, whose particles are in
  ``configs/posterior/section9_abc/particles.csv``), or
* a path to a ``particles.csv`` or to the folder holding one (``posterior=~/cal/county``).

Hydra treats every folder of the config search path as a config group, so on the command line
``posterior=<value>`` is a group choice; :func:`dropout_sim.runs.overrides.normalize_posterior`
rewrites an override whose value is not an option of the group (a path) to the plain key
``posterior_path=<path>``, which composition moves into ``posterior``
(:func:`dropout_sim.schema.to_config`). Downstream only ``posterior`` is read.

``draw=k`` runs draw *k*: a particle picked by weighted resampling with a random number that
depends on *k* only, so the same k always gives the same particle (the same file), draws
0..K-1 are an i.i.d. weighted resample of the particles, and every scenario of a sweep run
with ``draw=k`` shares that particle (parameter uncertainty is paired across scenarios just
as replicate noise is). Without ``draw`` the posterior's draw 0 is used.

The drawn values replace the config's values of those keys (they win over other overrides of
the same keys) when the config is composed (:func:`dropout_sim.schema.to_config`); the run's
``config.yaml`` then shows the values used. Bad files are refused with one line naming the
file and what is wrong (missing ``weight`` column, negative or non-finite weights, a column
that is not a numeric config key, no rows).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

PARTICLES_FILE = "particles.csv"
WEIGHT = "weight"
POSTERIOR_DIR = "posterior"
"""The config group (a folder of the packaged configs) of the shipped posteriors: the option
``<name>.yaml`` (``# @package _global_``, ``posterior: <name>``) selected as ``posterior=<name>``,
and beside it the folder ``<name>/`` with ``particles.csv`` and the fit's tables and figures."""
_DRAW_SEED = 0x5EED_D7A3


@dataclass(frozen=True)
class Posterior:
    """Particles (one row each), their parameter keys and normalised weights."""

    path: Path
    keys: tuple[str, ...]
    values: np.ndarray  # (particles, parameters)
    weights: np.ndarray  # (particles,), sums to 1

    def particle(self, draw: int) -> int:
        """Index of the particle draw ``draw`` takes (weighted resampling, deterministic in draw)."""
        u = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_DRAW_SEED, int(draw)]))).random()
        cum = np.cumsum(self.weights)
        return int(min(np.searchsorted(cum, u * cum[-1], side="right"), len(cum) - 1))

    def draw(self, draw: int) -> dict[str, float]:
        """The parameter values of draw ``draw`` (dotted key -> value)."""
        row = self.values[self.particle(draw)]
        return {k: float(v) for k, v in zip(self.keys, row)}


def packaged_dir() -> Path:
    """The packaged ``configs/posterior/`` folder."""
    import dropout_sim.configs as pkg

    return Path(pkg.__file__).resolve().parent / POSTERIOR_DIR


def shipped_names() -> list[str]:
    """Names of the shipped posteriors: options ``configs/posterior/<name>.yaml`` whose folder
    ``<name>/`` holds a ``particles.csv``."""
    root = packaged_dir()
    return sorted(f.stem for f in root.glob("*.yaml") if (root / f.stem / PARTICLES_FILE).is_file())


def group_options(folders: "list[Path] | tuple[Path, ...]" = ()) -> set[str]:
    """Options of the ``posterior`` config group: the packaged ``configs/posterior/<name>.yaml``
    and ``<folder>/posterior/<name>.yaml`` of extra config folders (``--config-dir``)."""
    names = {f.stem for f in packaged_dir().glob("*.yaml")}
    for folder in folders:
        names |= {f.stem for f in (Path(folder) / POSTERIOR_DIR).glob("*.yaml")}
    return names


def resolve(name_or_path: str) -> Path:
    """The particles.csv of a posterior name or path (one-line ConfigError if there is none).

    A plain word naming a shipped posterior is that posterior (even if a folder of that name
    exists here: write ``./name`` for it); anything else is a path (``~`` expanded, relative to
    the current directory)."""
    text = str(name_or_path)
    p = Path(os.path.expanduser(text))
    looks_like_path = os.sep in text or "/" in text or text.endswith(".csv") or text.startswith((".", "~"))
    shipped = packaged_dir() / text / PARTICLES_FILE
    if not looks_like_path and text and shipped.is_file():
        return shipped
    if looks_like_path or p.exists():
        f = p / PARTICLES_FILE if p.is_dir() else p
        if not f.is_file():
            raise ConfigError(f"posterior = {text!r}: no {PARTICLES_FILE} at {f}; allowed: a particles.csv, "
                              f"its folder, or one of {', '.join(shipped_names()) or '(none shipped)'}")
        return f
    raise ConfigError(f"posterior = {text!r} not found; allowed: a path to a particles.csv (or its folder) "
                      f"or one of {', '.join(shipped_names()) or '(none shipped)'}")


def load(name_or_path: str | Path) -> Posterior:
    """Read and check a posterior (cached per file and modification time)."""
    f = resolve(str(name_or_path))
    return _load(str(f.resolve()), f.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _load(path: str, _mtime: int) -> Posterior:
    where = f"posterior file {path}"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where} is unreadable: {exc}") from None
    if not rows:
        raise ConfigError(f"{where} is empty; allowed: a header with parameter columns and {WEIGHT}")
    header = [h.strip() for h in rows[0]]
    if WEIGHT not in header:
        raise ConfigError(f"{where} has no {WEIGHT!r} column; allowed: parameter columns (dotted config keys) "
                          f"and {WEIGHT}")
    keys = [h for h in header if h != WEIGHT]
    if not keys:
        raise ConfigError(f"{where} has no parameter columns; allowed: dotted config keys beside {WEIGHT}")
    if len(set(header)) != len(header):
        raise ConfigError(f"{where} repeats a column; allowed: each parameter once")
    data = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not data:
        raise ConfigError(f"{where} has no particles (rows)")
    try:
        table = np.array([[float(c) for c in r] for r in data], dtype=float)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}; allowed: numbers only") from None
    if table.ndim != 2 or table.shape[1] != len(header):
        raise ConfigError(f"{where}: every row needs {len(header)} values")
    w = table[:, header.index(WEIGHT)]
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ConfigError(f"{where}: weights must be finite and >= 0 (found {w[~np.isfinite(w) | (w < 0)][0]:g})")
    if w.sum() <= 0:
        raise ConfigError(f"{where}: weights sum to 0; allowed: at least one positive weight")
    values = table[:, [header.index(k) for k in keys]]
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"{where}: parameter values must be finite numbers")
    return Posterior(Path(path), tuple(keys), values, w / w.sum())


def apply(cfg: Any) -> None:
    """Set draw ``cfg.draw``'s parameter values of ``cfg.posterior`` on the Config ``cfg`` (in place)."""
    if cfg.posterior is None:
        if cfg.draw is not None:
            raise ConfigError(f"draw = {cfg.draw} needs a posterior; allowed: posterior=<name or path> draw=<k>, "
                              "or no draw")
        return
    post = load(cfg.posterior)
    for key, value in post.draw(cfg.draw or 0).items():
        _set(cfg, key, value, post.path)


def _set(cfg: Any, key: str, value: float, path: Path) -> None:
    from dataclasses import is_dataclass

    *head, last = key.split(".")
    obj = cfg
    try:
        for part in head:
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        old = obj[last] if isinstance(obj, dict) else getattr(obj, last)
    except (KeyError, AttributeError, TypeError):
        raise ConfigError(f"posterior file {path}: column {key!r} is not a config key") from None
    if is_dataclass(old) or isinstance(old, (bool, str, list, dict)) or not isinstance(old, (int, float)):
        raise ConfigError(f"posterior file {path}: column {key!r} is not a numeric config key")
    new: float | int = int(round(value)) if isinstance(old, int) else float(value)
    if isinstance(obj, dict):
        obj[last] = new
    else:
        setattr(obj, last, new)


def summary_table(post: Posterior) -> list[dict[str, float]]:
    """``parameter, mean, q05, q50, q95`` per parameter (weighted)."""
    out = []
    for j, key in enumerate(post.keys):
        x = post.values[:, j]
        order = np.argsort(x)
        cum = np.cumsum(post.weights[order])
        q = {name: float(x[order][min(np.searchsorted(cum, level * cum[-1]), len(x) - 1)])
             for name, level in (("q05", 0.05), ("q50", 0.5), ("q95", 0.95))}
        out.append({"parameter": key, "mean": float(np.sum(post.weights * x)), **q})
    return out


def effective_sample_size(weights: np.ndarray) -> float:
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w ** 2).sum()) if w.sum() > 0 else math.nan
