"""The launcher classes: Hydra's sweep jobs -> :class:`dropout_sim.runs.batch.BatchRunner`.

Hydra's basic sweeper still expands the command line (``regime=a,b 'replicate=range(0,20)'``)
and writes ``multirun.yaml``; this launcher replaces the per-job composition (0.4 s each) and
the per-job process start: it computes each job's folder exactly as Hydra would
(``hydra.sweep.dir``/``hydra.sweep.subdir`` with ``hydra.job.num``, ``id`` and
``override_dirname``), and the batch runner writes the same run folder a Hydra job writes
(``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``, the job log, the results).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


class BatchLauncher(Launcher):
    """``hydra/launcher=dropout_sim``: the sweep on local cores (``n_jobs`` as joblib's)."""

    executor = "local"

    def __init__(self, n_jobs: int = -1, chunk_size: Optional[int] = None, **kwargs: Any) -> None:
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.options = kwargs
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context
        self._composer = None

    def composer(self) -> Any:
        """The sweep's Composer (shared by the sweeper's check and every batch launched)."""
        from dropout_sim.runs.batch import Composer, shared_composer

        if getattr(self, "_composer", None) is None:
            assert self.config is not None and self.hydra_context is not None
            self._composer = Composer(config_name=self.config.hydra.job.config_name,
                                      loader=self.hydra_context.config_loader, master=self.config,
                                      reuse=shared_composer())
        return self._composer

    # ----------------------------------------------------------------------------------
    def _submitit(self) -> Any:
        return None

    def _describe(self, n: int, skipped_note: str) -> str:
        return f"dropout_sim launcher: {n} jobs on {self.n_jobs if self.n_jobs != -1 else 'all'} core(s){skipped_note}"

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dropout_sim.runs.batch import BatchRunner, _parse
        from dropout_sim.runs import sweep as sweep_mod

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)

        composer = self.composer()
        name = str(self.config.hydra.job.name)
        od = self.config.hydra.job.config.override_dirname
        exclude = list(od.exclude_keys)
        template = OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir")

        runs, out_dirs, metas, jobs, labels = [], [], [], [], []
        for idx, overrides in enumerate(job_overrides):
            num = initial_job_idx + idx
            overrides = list(overrides)
            task = [ov for ov in _parse(overrides) if not ov.is_hydra_override()]
            lines = sorted(ov.input_line for ov in task if ov.key_or_group not in exclude)
            dirname = str(od.item_sep).join(lines).replace("=", str(od.kv_sep))
            job = {"num": num, "id": f"{name}_{num}", "override_dirname": dirname, "name": name}
            subdir = _subdir(template, job, composer, overrides) if template is not None else ""
            runs.append(overrides)
            out_dirs.append(sweep_dir / subdir if subdir else sweep_dir)
            metas.append({"job_num": num})
            jobs.append(job)
            labels.append(f"#{num} " + (" ".join(filter_overrides(overrides)) or "(defaults)"))

        progress = {"sweep_dir": str(sweep_dir),
                    "env": {k: v for k, v in os.environ.items()
                            if k in (sweep_mod.ENV_SESSION, sweep_mod.ENV_START, sweep_mod.ENV_TOTAL)}}
        submitit = self._submitit()
        runner = BatchRunner(composer=composer, n_jobs=self.n_jobs, chunk_size=self.chunk_size,
                             executor=self.executor, submitit=submitit, progress=progress)
        with runner:
            items, skipped = runner.plan(runs, out_dirs, metas=metas, jobs=jobs, labels=labels)
            note = f" ({len(skipped)} already finished)" if skipped else ""
            log.info(self._describe(len(runs), note))
            if submitit is not None:
                log.info(f"Submitit '{'local' if self.executor == 'submitit_local' else 'slurm'}' sweep output dir "
                         f": {sweep_dir}")
            else:
                log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
            outcomes = runner.run_planned(items, skipped, labels=labels)

        results = []
        for idx, (overrides, outcome) in enumerate(zip(job_overrides, outcomes)):
            ret = JobReturn()
            ret.overrides = list(overrides)
            ret.working_dir = os.getcwd()
            ret.task_name = name
            ret.status = JobStatus.COMPLETED
            if outcome.status == "ran":
                ret.return_value = {"status": "ran", "completion_5y": (outcome.summary or {}).get("completion_5y"),
                                    "config_hash": outcome.config_hash}
            elif outcome.status == "skipped":
                ret.return_value = {"status": "skipped", "config_hash": outcome.config_hash}
            else:
                ret.return_value = None
            results.append(ret)
        return results


class BatchSlurmLauncher(BatchLauncher):
    """``hydra/launcher=dropout_sim_slurm`` (``cluster``): chunks of runs as SLURM array tasks."""

    def __init__(self, executor: str = "slurm", chunk_size: int = 8, submitit_folder: str = ".submitit/%j",
                 timeout_min: int = 60, cpus_per_task: int = 1, mem_gb: int = 2, tasks_per_node: int = 1,
                 nodes: int = 1, partition: Optional[str] = None, account: Optional[str] = None,
                 qos: Optional[str] = None, array_parallelism: int = 256, setup: Optional[list] = None,
                 additional_parameters: Optional[dict] = None, **kwargs: Any) -> None:
        super().__init__(n_jobs=1, chunk_size=chunk_size)
        self.executor = executor
        self.params = dict(folder=submitit_folder, timeout_min=timeout_min, cpus_per_task=cpus_per_task,
                           mem_gb=mem_gb, partition=partition, account=account, qos=qos,
                           array_parallelism=array_parallelism, setup=list(setup) if setup else None,
                           additional_parameters=dict(additional_parameters or {}))

    def _submitit(self) -> Any:
        from dropout_sim.runs.batch import SubmititOptions

        return SubmititOptions(**self.params)

    def _describe(self, n: int, skipped_note: str) -> str:
        return (f"dropout_sim launcher: {n} jobs to {self.executor} in array tasks of up to {self.chunk_size} "
                f"runs{skipped_note}")


def _subdir(template: str, job: dict, composer: Any, overrides: list) -> str:
    """``hydra.sweep.subdir`` of one job, resolved as Hydra resolves it.

    Fast path: a template that refers only to ``hydra.job`` fields is resolved in a small config.
    Otherwise (it refers to the job's own config) the job's full config is built.
    """
    from omegaconf.errors import OmegaConfBaseException

    small = OmegaConf.create({"hydra": {"job": dict(job)}, "_subdir": template})
    try:
        return str(small._subdir)
    except OmegaConfBaseException:
        pass
    groups, values = composer.split(overrides)
    combo = composer.combo(groups)
    full = copy.deepcopy(composer.hydra_node(combo))
    node = composer.job_node(combo, values)
    with read_write(full), open_dict(full):
        for key, value in job.items():
            full.hydra.job[key] = value
        for key in node:
            full[key] = node[key]
    return str(OmegaConf.select(full, "hydra.sweep.subdir"))
