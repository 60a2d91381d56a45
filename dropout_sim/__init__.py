"""dropout_sim: agent-based simulation of upper-secondary dropout and cross-sector intervention.

Public API::

    from dropout_sim import compose_config, run_simulation
    cfg = compose_config(["regime=colocated", "cohort.size=2000", "seed=7"])
    result = run_simulation(cfg)            # in memory; pass out_dir=... to write files
    result.summary["completion_5y"]
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("dropout_sim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+source"

from .runs.api import RunResult, compose_config, run_simulation  # noqa: E402
from .model.model import DropoutModel  # noqa: E402
from .schema import Config, ConfigError  # noqa: E402

__all__ = ["Config", "ConfigError", "DropoutModel", "RunResult", "compose_config", "run_simulation",
           "__version__"]
