"""``hydra/sweeper=dropout_sim``: Hydra's basic sweeper without its per-job composition.

Hydra's basic sweeper composes every job's config before launching it (``validate_batch_is_legal``:
0.15-0.4 s a job, serial, in the launching process) only to see that it composes. Under the
project's launcher this checks the batch the batch runner's way instead: each config-group
combination composed once, each distinct ``key=value`` applied once
(:meth:`dropout_sim.runs.batch.Composer.check_composable`); the launcher then reuses those
compositions. Everything else (the job list and its order, ``multirun.yaml``, batches) is the
basic sweeper's, so ``dropout_sim.runs.sweep.basic_sweeper_jobs`` and the report read it as one.
"""

from __future__ import annotations

from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class BatchBasicSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from .launcher import BatchLauncher

        if not isinstance(self.launcher, BatchLauncher):
            return super().validate_batch_is_legal(batch)
        self.launcher.composer().check_composable([list(job) for job in batch])
        return None
