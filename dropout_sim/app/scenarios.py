"""Paired replicates of scenarios in the background, streamed as they finish, cancellable.

The dashboard talks to a :class:`ScenarioRunner` only: ``start(scenarios, replicates)`` returns
a :class:`RunHandle` whose :meth:`RunHandle.results` yields one :class:`ReplicateResult` per
(scenario, replicate) as it finishes and whose :meth:`RunHandle.cancel` drops the work not yet
started. :class:`LocalScenarioRunner` implements it with a process pool over
:func:`dropout_sim.runs.api.run_simulation`; the project's batch runner can replace it behind
the same two methods.

Each finished replicate is cached by (config hash, replicate), so the baseline of a scenario
is computed once per county and a scenario the user returns to comes back at once.
Replicate r of every scenario shares its cohort and random draws (:mod:`dropout_sim.rng`), so
results are paired by replicate.
"""

from __future__ import annotations

import collections
import copy
import multiprocessing
import os
import queue
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from ..schema import Config


@dataclass(frozen=True)
class ReplicateResult:
    """One finished run: its scenario label, replicate, summary and completion curve."""

    scenario: str
    replicate: int
    summary: dict[str, Any]
    """The run's ``summary.json`` content (without files being written)."""
    curve: list[float]
    """Share of the focal cohorts completed at the end of model month 0, 1, ... (cumulative)."""
    config_hash: str
    cached: bool = False
    cpu_seconds: float = 0.0
    """CPU time the run took in its worker (0 when cached)."""


def condense(result: Any) -> dict[str, Any]:
    """What the dashboard needs of a :class:`~dropout_sim.runs.api.RunResult` (small, picklable)."""
    curve = [row["focal_completed"] / row["focal_students"] if row["focal_students"] else float("nan")
             for row in result.monthly]
    return {"summary": result.summary, "curve": curve}


def run_condensed(cfg: Config) -> dict[str, Any]:
    """Run ``cfg`` in memory and condense it (module level: a process pool pickles it by name)."""
    import time

    from ..runs.api import run_simulation

    t0 = time.process_time()
    out = condense(run_simulation(cfg))
    out["cpu_seconds"] = time.process_time() - t0
    return out


def config_key(cfg: Config) -> str:
    """The hash of a config without its replicate (same for every replicate of a scenario)."""
    from ..runs.results import config_hash, config_yaml

    plain = copy.deepcopy(cfg)
    plain.replicate = 0
    return config_hash(config_yaml(plain))


Prepare = Callable[[Config, int], Config]
"""``prepare(cfg, i)``: the config of pair ``i`` of a scenario (a new object; ``cfg`` untouched)."""


def with_replicate(cfg: Config, i: int) -> Config:
    """The default pairing: pair ``i`` is replicate ``i``."""
    out = copy.deepcopy(cfg)
    out.replicate = int(i)
    return out


def run_key(cfg: Config) -> str:
    """The hash of a run's full config (replicate and posterior draw included): the cache key."""
    from ..runs.results import config_hash, config_yaml

    return config_hash(config_yaml(cfg))


class RunHandle(Protocol):
    """Work started by a :class:`ScenarioRunner`."""

    total: int

    def results(self, timeout: float | None = None) -> Iterator[ReplicateResult]:
        """Yield results as they finish (cached ones first); stop when all are in or cancelled."""

    def cancel(self) -> None:
        """Drop work not yet started; results still running are cached but not yielded."""


class ScenarioRunner(Protocol):
    """Runs paired replicates of named scenarios (name -> validated Config) in the background."""

    def start(self, scenarios: Mapping[str, Config], replicates: Sequence[int],
              prepare: Prepare | None = None) -> RunHandle:
        """Run pair ``i`` of every scenario for each ``i`` in ``replicates``; ``prepare(cfg, i)`` gives
        that pair's config (default: replicate ``i``; the dashboard also sets a posterior draw)."""

    def shutdown(self) -> None: ...


_DONE = object()


@dataclass
class _Handle:
    runner: "LocalScenarioRunner"
    total: int
    keys: list[tuple[str, int]] = field(default_factory=list)
    todo: "collections.deque" = field(default_factory=lambda: collections.deque())
    inflight: int = 0
    queue: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    pending: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _deliver(self, item: ReplicateResult) -> None:
        if not self.cancelled.is_set():
            self.queue.put(item)
        self._skip()

    def _skip(self) -> None:
        with self.lock:
            self.pending -= 1
            if self.pending == 0:
                self.queue.put(_DONE)

    def results(self, timeout: float | None = None) -> Iterator[ReplicateResult]:
        while True:
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                return
            if item is _DONE or self.cancelled.is_set():
                return
            yield item

    def cancel(self) -> None:
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        self.runner._release(self.keys)
        self.queue.put(_DONE)


class LocalScenarioRunner:
    """:class:`ScenarioRunner` on a local process pool (``workers`` processes, default: all cores).

    ``start`` submits replicate by replicate across scenarios (replicate 0 of every scenario
    first), so the first paired numbers arrive after one run per scenario.
    """

    def __init__(self, workers: int | None = None, cache_size: int = 5000):
        self.workers = workers or os.cpu_count() or 1
        # spawn: the pool must not inherit the web server's threads and sockets
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        self._cache: dict[tuple[str, int], dict[str, Any]] = {}
        self._running: dict[tuple[str, int], Future] = {}
        self._interest: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def warm_up(self) -> None:
        """Start the worker processes and import the model in each (so the first run is not slowed)."""
        for fut in [self._pool.submit(_import_model) for _ in range(self.workers)]:
            fut.result()

    def cached(self, cfg: Config, replicate: int, prepare: Prepare | None = None) -> dict[str, Any] | None:
        run_cfg = (prepare or with_replicate)(cfg, replicate)
        with self._lock:
            return self._cache.get((run_key(run_cfg), replicate))

    def start(self, scenarios: Mapping[str, Config], replicates: Sequence[int],
              prepare: Prepare | None = None) -> _Handle:
        prepare = prepare or with_replicate
        handle = _Handle(self, total=len(scenarios) * len(replicates))
        handle.pending = handle.total
        if handle.total == 0:
            handle.queue.put(_DONE)
        # replicate by replicate across scenarios: pairs complete early. Cached results are
        # delivered at once; the rest is fed to the pool ``workers`` at a time, so cancelling
        # leaves at most ``workers`` stale runs going.
        for r in replicates:
            for name, cfg in scenarios.items():
                run_cfg = prepare(cfg, int(r))
                key = (run_key(run_cfg), int(r))
                with self._lock:
                    hit = self._cache.get(key)
                if hit is not None:
                    handle._deliver(ReplicateResult(name, int(r), hit["summary"], hit["curve"], key[0], cached=True))
                else:
                    handle.todo.append((name, key, run_cfg))
        self._pump(handle)
        return handle

    def _pump(self, handle: _Handle) -> None:
        """Submit the handle's next runs while it has fewer than ``workers`` in flight."""
        while True:
            new = False
            with self._lock:
                if handle.cancelled.is_set() or not handle.todo or handle.inflight >= self.workers:
                    return
                name, key, cfg = handle.todo.popleft()
                hit = self._cache.get(key)
                fut = None if hit is not None else self._running.get(key)
                if hit is None and fut is None:
                    fut = self._pool.submit(run_condensed, cfg)
                    self._running[key] = fut
                    self._interest[key] = 0
                    new = True
                if hit is None:
                    self._interest[key] += 1
                    handle.keys.append(key)
                    handle.inflight += 1
            if hit is not None:
                handle._deliver(ReplicateResult(name, key[1], hit["summary"], hit["curve"], key[0], cached=True))
                continue
            if new:  # callbacks outside the lock: a finished future calls them at once
                fut.add_done_callback(lambda f, key=key: self._store(key, f))
            fut.add_done_callback(lambda f, name=name, key=key: self._finish(handle, name, key, f))

    def _release(self, keys: Sequence[tuple[str, int]]) -> None:
        """A cancelled handle no longer wants ``keys``: cancel the runs nobody else waits for."""
        to_cancel = []
        with self._lock:
            for key in keys:
                if key in self._interest:
                    self._interest[key] -= 1
                    if self._interest[key] <= 0 and key in self._running:
                        to_cancel.append(self._running[key])
        for fut in to_cancel:
            fut.cancel()  # a run already started finishes and is cached

    def _store(self, key: tuple[str, int], fut: Future) -> None:
        with self._lock:
            self._running.pop(key, None)
            self._interest.pop(key, None)
            if not fut.cancelled() and fut.exception() is None:
                if len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = fut.result()

    def _finish(self, handle: _Handle, name: str, key: tuple[str, int], fut: Future) -> None:
        with self._lock:
            handle.inflight -= 1
        if fut.cancelled():
            handle._skip()
            self._pump(handle)
            return
        exc = fut.exception()
        if exc is not None:
            result = ReplicateResult(name, key[1], {"error": f"{type(exc).__name__}: {exc}"}, [], key[0])
        else:
            out = fut.result()
            result = ReplicateResult(name, key[1], out["summary"], out["curve"], key[0],
                                     cpu_seconds=out.get("cpu_seconds", 0.0))
        handle._deliver(result)
        self._pump(handle)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _import_model() -> bool:
    from ..runs import api  # noqa: F401

    return True
