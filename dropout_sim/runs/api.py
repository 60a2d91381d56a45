"""Run API used by the CLI, sweeps, calibration, notebooks and tests (no CLI needed).

* :func:`compose_config` - the Hydra config (``config.yaml`` + groups + overrides) as a
  validated :class:`~dropout_sim.schema.Config`.
* :func:`run_simulation` - build the model, run it, optionally write the results folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..model.metrics import summary as _summary
from ..model.model import DropoutModel
from ..schema import Config, register_configs, to_config

CONFIG_MODULE = "dropout_sim.configs"
CONFIG_NAME = "config"

HYDRA_LOCK = threading.RLock()
"""Held while Hydra composes (its global state is not thread-safe): a web server validating a
scenario in one thread while the batch runner composes in another (the dashboard) takes turns."""


def compose_config(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME) -> Config:
    """Compose the packaged Hydra configs with ``overrides`` and validate the result.

    Raises :class:`~dropout_sim.schema.ConfigError` (one line) for out-of-range values.
    """
    return to_config(compose_dictconfig(overrides, config_name))


def compose_dictconfig(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME,
                       return_hydra_config: bool = False) -> Any:
    """The composed, not yet validated config (an OmegaConf ``DictConfig``).

    ``posterior=<path>`` overrides are read as ``posterior_path=<path>``
    (:func:`~dropout_sim.runs.overrides.normalize_posterior`)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from .overrides import normalize_posterior

    overrides = normalize_posterior(list(overrides))
    register_configs()
    with HYDRA_LOCK:
        gh = GlobalHydra.instance()
        if gh.is_initialized():
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


BASE_MEMORY_MB = 150.0
"""Memory of the interpreter with numpy, pandas, Mesa and Hydra loaded, MB."""
ROW_KB = 0.55
"""Memory per student row the county holds (state arrays, agency and referral rows, the
per-student table written at the end), KB; measured at 20,000-60,000 students per cohort."""
ENV_MEMORY = "DROPOUT_SIM_MEMORY_MB"
"""Memory a run may use, MB (default: the machine's available memory)."""


def memory_need_mb(cfg: Config) -> float:
    """Estimated peak memory of one run of ``cfg``, MB: the county holds up to six year groups
    of ``cohort.size`` students (non-focal ones sampled at ``county.nonfocal_share``) plus the
    focal cohorts (:data:`ROW_KB` each)."""
    from ..model.model import COUNTY_YEARS

    rows = cfg.cohort.size * ((COUNTY_YEARS - 1) * cfg.county.nonfocal_share + cfg.county.focal_cohorts)
    return BASE_MEMORY_MB + rows * ROW_KB / 1024.0


def memory_available_mb() -> float | None:
    """``DROPOUT_SIM_MEMORY_MB`` if set, else the machine's available memory (None if unknown)."""
    import os

    text = os.environ.get(ENV_MEMORY, "").strip()
    if text:
        try:
            return float(text)
        except ValueError:
            from ..schema import ConfigError

            raise ConfigError(f"{ENV_MEMORY} = {text!r} is not allowed; allowed: a number of MB") from None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(cfg: Config, key: str = "cohort.size", at_once: int = 1) -> None:
    """Refuse (one line, :class:`ConfigError`) a run that would not fit in memory, with
    ``at_once`` such runs side by side (parallel workers of a sweep)."""
    from ..schema import ConfigError

    one, have = memory_need_mb(cfg), memory_available_mb()
    need = one * max(1, at_once)
    if have is not None and need > have:
        per_student = (one - BASE_MEMORY_MB) / cfg.cohort.size
        most = int(max(1.0, (have / max(1, at_once) - BASE_MEMORY_MB) / per_student))
        runs = f" for {at_once} runs at once (hydra.launcher.n_jobs)" if at_once > 1 else ""
        raise ConfigError(f"{key} = {cfg.cohort.size} needs about {need / 1024:.1f} GB of memory{runs}, "
                          f"{have / 1024:.1f} GB available; allowed: at most about {most} students per cohort here "
                          f"(or fewer parallel runs, or set {ENV_MEMORY})")


@dataclass
class RunResult:
    """A finished run: the model (all arrays), its summary and where it was written."""

    model: DropoutModel
    summary: dict[str, Any]
    out_dir: Path | None = None
    monthly: list[dict] = field(default_factory=list)


def run_simulation(cfg: Config, out_dir: str | Path | None = None, extra_meta: dict | None = None) -> RunResult:
    """Run one simulation of ``cfg`` to its horizon; write results to ``out_dir`` if given."""
    model = DropoutModel(to_config(cfg))
    model.run()
    if out_dir is not None:
        from .results import write_run

        result = write_run(model, Path(out_dir), extra_meta)
        return RunResult(model, result, Path(out_dir), model.recorder.rows)
    return RunResult(model, _summary(model), None, model.recorder.rows)
