"""dropout_sim's Hydra launcher: hands a sweep's jobs to :mod:`dropout_sim.runs.batch`.

Hydra finds it by scanning the ``hydra_plugins`` namespace package; ``config.py`` registers
``hydra/launcher=dropout_sim`` (local cores, the default of ``dropout-sim -m``),
``hydra/launcher=dropout_sim_slurm`` (SLURM through submitit, one array task per chunk) and
``hydra/sweeper=dropout_sim`` (the basic sweeper, minus its per-job composition; the default).
"""


def register() -> None:
    """Register the launcher configs and classes with Hydra (idempotent).

    Hydra's plugin scan finds this package in a normal install, but not through the path hook
    of an editable install (``pip install -e``); ``dropout_sim.schema.register_configs`` calls
    this so ``dropout-sim -m`` finds its default launcher either way.
    """
    from hydra.core.plugins import Plugins

    # first: Hydra's plugin scan re-executes its core plugin modules (basic_sweeper among them);
    # the sweeper subclass must be created from the class the scan leaves behind
    plugins = Plugins.instance()
    from . import config  # noqa: F401 - stores hydra/launcher=dropout_sim, dropout_sim_slurm, hydra/sweeper=dropout_sim
    from .launcher import BatchLauncher, BatchSlurmLauncher
    from .sweeper import BatchBasicSweeper

    for clazz in (BatchLauncher, BatchSlurmLauncher, BatchBasicSweeper):
        plugins.register(clazz)
