"""Launcher configs: ``hydra/launcher=dropout_sim`` and ``hydra/launcher=dropout_sim_slurm``."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class DropoutSimLauncherConf:
    """Local cores: the sweep's runs on a process pool, composed once per config-group combination."""

    _target_: str = "hydra_plugins.dropout_sim_launcher.launcher.BatchLauncher"
    # worker processes, as joblib's: -1 = all cores, 1 = in the launching process
    n_jobs: int = -1
    # runs per chunk handed to a worker; null = about four chunks per worker, at most 16 runs
    chunk_size: Optional[int] = None


@dataclass
class DropoutSimSlurmLauncherConf:
    """SLURM through submitit: one array task per chunk of ``chunk_size`` runs; finished runs are
    filtered out before anything is submitted. ``executor: submitit_local`` runs the same path on
    this machine (what the tests use)."""

    _target_: str = "hydra_plugins.dropout_sim_launcher.launcher.BatchSlurmLauncher"
    executor: str = "slurm"
    chunk_size: int = 8
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"
    # minutes per array task (a chunk of chunk_size runs)
    timeout_min: int = 60
    cpus_per_task: int = 1
    mem_gb: int = 2
    tasks_per_node: int = 1
    nodes: int = 1
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    array_parallelism: int = 256
    setup: Optional[List[str]] = None
    additional_parameters: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DropoutSimSweeperConf:
    """Hydra's basic sweeper (same syntax, job order, multirun.yaml) that leaves composition to
    the launcher (no full composition per job before launching)."""

    _target_: str = "hydra_plugins.dropout_sim_launcher.sweeper.BatchBasicSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="dropout_sim", node=DropoutSimSweeperConf,
                             provider="dropout_sim")
ConfigStore.instance().store(group="hydra/launcher", name="dropout_sim", node=DropoutSimLauncherConf,
                             provider="dropout_sim")
ConfigStore.instance().store(group="hydra/launcher", name="dropout_sim_slurm", node=DropoutSimSlurmLauncherConf,
                             provider="dropout_sim")
