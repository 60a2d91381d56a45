"""dropout_sim's Hydra launcher: hands a sweep's jobs to :mod:`dropout_sim.runs.batch`.

Hydra finds it by scanning the ``hydra_plugins`` namespace package; ``config.py`` registers
``hydra/launcher=dropout_sim`` (local cores, the default of ``dropout-sim -m``) and
``hydra/launcher=dropout_sim_slurm`` (SLURM through submitit, one array task per chunk).
"""


def register() -> None:
    """Register the launcher configs and classes with Hydra (idempotent).

    Hydra's plugin scan finds this package in a normal install, but not through the path hook
    of an editable install (``pip install -e``); ``dropout_sim.schema.register_configs`` calls
    this so ``dropout-sim -m`` finds its default launcher either way.
    """
    from hydra.core.plugins import Plugins

    from . import config  # noqa: F401 - stores hydra/launcher=dropout_sim, dropout_sim_slurm
    from .launcher import BatchLauncher, BatchSlurmLauncher

    plugins = Plugins.instance()
    for clazz in (BatchLauncher, BatchSlurmLauncher):
        plugins.register(clazz)
