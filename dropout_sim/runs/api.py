"""Run API used by the CLI, sweeps, calibration, notebooks and tests (no CLI needed).

* :func:`compose_config` - the Hydra config (``config.yaml`` + groups + overrides) as a
  validated :class:`~dropout_sim.schema.Config`.
* :func:`run_simulation` - build the model, run it, optionally write the results folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..model.metrics import summary as _summary
from ..model.model import DropoutModel
from ..schema import Config, register_configs, to_config

CONFIG_MODULE = "dropout_sim.configs"
CONFIG_NAME = "config"


def compose_config(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME) -> Config:
    """Compose the packaged Hydra configs with ``overrides`` and validate the result.

    Raises :class:`~dropout_sim.schema.ConfigError` (one line) for out-of-range values.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    gh = GlobalHydra.instance()
    if gh.is_initialized():
        return to_config(compose(config_name=config_name, overrides=list(overrides)))
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return to_config(compose(config_name=config_name, overrides=list(overrides)))


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
