"""Run many simulations in-process or on a small process pool (calibration and sensitivity).

A stop-gap for the batch runner of issue 10 part 1 (``runs/batch.py``): every many-run
command of :mod:`dropout_sim.analysis.abc` and :mod:`dropout_sim.analysis.sensitivity` calls
only :func:`map_tasks`, so swapping in the batch runner is a change to this one function.

Tasks are picklable ``(function, argument)`` pairs run by a module-level function; with
``n_jobs=1`` (the default) everything runs in this process, in order.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable, Sequence


def default_jobs() -> int:
    """Worker processes to use: ``DROPOUT_SIM_JOBS`` or 1 (the machine is shared)."""
    try:
        return max(1, int(os.environ.get("DROPOUT_SIM_JOBS", "1")))
    except ValueError:
        return 1


def _call(task: tuple[Callable[[Any], Any], Any]) -> Any:
    fn, arg = task
    return fn(arg)


def map_tasks(fn: Callable[[Any], Any], args: Iterable[Any], n_jobs: int | None = None,
              chunksize: int | None = None) -> list[Any]:
    """``[fn(a) for a in args]``, on ``n_jobs`` processes when > 1 (results in order).

    ``fn`` must be a module-level function (picklable by name) and each argument picklable.
    """
    args = list(args)
    n_jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    if n_jobs == 1 or len(args) <= 1:
        return [fn(a) for a in args]
    chunksize = chunksize or max(1, len(args) // (4 * n_jobs))
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(args))) as pool:
        return list(pool.map(_call, [(fn, a) for a in args], chunksize=chunksize))


def summaries(configs: Sequence[Any], n_jobs: int | None = None) -> list[dict]:
    """The summary of each validated Config in ``configs`` (nothing written)."""
    return map_tasks(_summary_of, configs, n_jobs)


def _summary_of(cfg: Any) -> dict:
    import logging

    from .api import run_simulation

    logging.getLogger("MESA").setLevel(logging.WARNING)
    return run_simulation(cfg).summary
