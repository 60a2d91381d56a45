"""Paired replicates of scenarios in the background, through the batch runner: streamed, cached, cancellable.

The dashboard talks to a :class:`ScenarioRunner` only: ``start(scenarios, pairs)`` (scenario
name -> its Hydra overrides) returns a :class:`RunHandle` whose :meth:`RunHandle.results`
yields one :class:`ReplicateResult` per (scenario, pair) as it finishes and whose
:meth:`RunHandle.cancel` stops the work of that handle. :class:`BatchScenarioRunner`
implements it on one long-lived :class:`~dropout_sim.runs.batch.BatchRunner` (worker processes
started once, kept warm for the app's lifetime; one composition per config-group combination),
so the page's numbers are the batch runner's numbers for the same overrides.

* **Order**: pair 0 of every scenario first, then pair 1, ... (one run per pool task), so the
  first paired numbers arrive after one run per worker.
* **Cache**: every finished run is kept under (the hash of its scenario's config, the pair's
  overrides), i.e. config hash + replicate (+ posterior draw); the run's own
  :attr:`~dropout_sim.runs.batch.Outcome.config_hash` is kept beside it. So the baseline runs
  once per county and a scenario the user returns to comes back at once; a config that two
  names share (a scenario equal to the baseline) runs once.
* **Cancel**: :meth:`RunHandle.cancel` drops the runs not started and stops the runs in progress
  within a few model months (``BatchRunner.cancel(now=True)``), so the next scenario gets the
  workers at once.
* **Newest first**: a handle started while another is running (a second tab, a reloaded page
  whose old session is not closed yet) goes first: the older handle's runs not started wait
  (its runs in progress finish and are cached), and it resumes afterwards from the cache.

Replicate r of every scenario shares its cohort and random draws (:mod:`dropout_sim.rng`), so
results are paired by replicate.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol, Sequence

from ..runs.batch import BatchRunner, completion_curve


@dataclass(frozen=True)
class ReplicateResult:
    """One finished run: its scenario label, pair index, summary and completion curve."""

    scenario: str
    replicate: int
    """The pair index i (replicate i; with a posterior, draw i // 2 and replicate i % 2)."""
    summary: dict[str, Any]
    """The run's ``summary.json`` content (nothing is written), or ``{"error": ...}`` if it failed."""
    curve: list[float]
    """Share of the focal cohorts completed at the end of model month 0, 1, ... (cumulative)."""
    config_hash: str
    """The run's config hash (:attr:`~dropout_sim.runs.batch.Outcome.config_hash`)."""
    cached: bool = False
    cpu_seconds: float = 0.0
    """CPU time the run took in its worker (0 when cached)."""


def pair_overrides(i: int, posterior: bool = False) -> list[str]:
    """The overrides of pair ``i``: ``replicate=i``; with a posterior, draw i // 2 and replicate
    i % 2 (:func:`dropout_sim.app.planner.posterior_pair`)."""
    if posterior:
        from .planner import posterior_pair

        draw, rep = posterior_pair(int(i))
        return [f"draw={draw}", f"replicate={rep}"]
    return [f"replicate={int(i)}"]


class RunHandle(Protocol):
    """Work started by a :class:`ScenarioRunner`."""

    total: int

    def results(self, timeout: float | None = None) -> Iterator[ReplicateResult]:
        """Yield results as they finish (cached ones first); stop when all are in, when cancelled,
        or when nothing arrives within ``timeout`` seconds."""

    def cancel(self) -> None:
        """Stop this handle's work; nothing more is yielded."""


class ScenarioRunner(Protocol):
    """Runs paired replicates of named scenarios (name -> Hydra overrides) in the background."""

    def start(self, scenarios: Mapping[str, Sequence[str]], pairs: Sequence[int],
              posterior: bool = False) -> RunHandle:
        """Run pair ``i`` of every scenario for each ``i`` in ``pairs`` (:func:`pair_overrides`)."""

    def shutdown(self) -> None: ...


_DONE = object()


@dataclass
class _Handle:
    runner: "BatchScenarioRunner"
    scenarios: dict[str, list[str]]
    pairs: list[int]
    posterior: bool
    total: int = 0
    queue: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the runner is done with this handle (all delivered, failed or cancelled)."""
    preempted: threading.Event = field(default_factory=threading.Event)
    """A newer handle was started while this one ran: it stops after its runs in progress and
    resumes after the newer one."""
    delivered: set = field(default_factory=set)
    """(scenario, pair) already delivered (a resumed handle skips them)."""
    seq: int = 0
    """Order of starting (newer handles go first)."""

    def _deliver(self, item: ReplicateResult) -> None:
        if not self.cancelled.is_set() and (item.scenario, item.replicate) not in self.delivered:
            self.delivered.add((item.scenario, item.replicate))
            self.queue.put(item)

    def _close(self) -> None:
        self.finished.set()
        self.queue.put(_DONE)

    def results(self, timeout: float | None = None) -> Iterator[ReplicateResult]:
        while True:
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                return
            if item is _DONE or self.cancelled.is_set():
                self.queue.put(_DONE)  # a later call ends at once too
                return
            yield item

    def cancel(self) -> None:
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        self.runner._cancel(self)
        self.queue.put(_DONE)


class BatchScenarioRunner:
    """:class:`ScenarioRunner` on one long-lived :class:`~dropout_sim.runs.batch.BatchRunner`.

    ``workers`` processes (default: all cores). Handles are served one at a time by a background thread, in the order started; the
    dashboard cancels the old handle before it starts a new one. ``base`` overrides are shared
    by every run (none: the scenarios' overrides are complete).
    """

    def __init__(self, workers: int | None = None, base: Sequence[str] = (), cache_size: int = 5000):
        self.batch = BatchRunner(list(base), n_jobs=workers if workers else -1, chunk_size=1,
                                 probe=completion_curve, resume=False)
        self.workers = self.batch.n_jobs
        self.cache_size = cache_size
        self._cache: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._todo: "queue.Queue[_Handle | None]" = queue.Queue()
        self._active: _Handle | None = None
        self._open: list[_Handle] = []
        """handles started and not finished"""
        self._seq = 0
        self._thread: threading.Thread | None = None
        self.runs_started = 0
        """Runs sent to the batch runner so far (cache misses)."""

    # ---------------------------------------------------------------- life cycle
    def warm_up(self, scenarios: Sequence[Sequence[str]] = ()) -> None:
        """Start the worker processes now (call before a web server starts its threads: the
        workers are then forked from a single-threaded process) and import the model in each;
        compose the config-group combinations of ``scenarios`` (override lists) ahead, so the
        first runs of those scenarios start without a Hydra composition."""
        self.batch.warm_up()
        with self._lock:
            for overrides in scenarios:
                self._scenario_key(list(overrides))

    def shutdown(self) -> None:
        if self._active is not None:
            self._active.cancel()
        self._todo.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.batch.close()

    def __enter__(self) -> "BatchScenarioRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ---------------------------------------------------------------- the page's side
    def start(self, scenarios: Mapping[str, Sequence[str]], pairs: Sequence[int],
              posterior: bool = False) -> _Handle:
        handle = _Handle(self, {k: list(v) for k, v in scenarios.items()}, [int(i) for i in pairs], bool(posterior))
        handle.total = len(handle.scenarios) * len(handle.pairs)
        with self._lock:
            self._seq += 1
            handle.seq = self._seq
            self._open.append(handle)
        if self._thread is None:
            self.batch.warm_up()  # the pool before this runner's thread: workers forked when the caller has no threads
            self._thread = threading.Thread(target=self._serve, name="dropout-sim-dashboard-runs", daemon=True)
            self._thread.start()
        self._todo.put(handle)
        with self._lock:  # newest first: an older handle still running yields the workers
            old = self._active
            if old is not None and not old.cancelled.is_set():
                old.preempted.set()
                self.batch.cancel()
        return handle

    def cached(self, overrides: Sequence[str], i: int, posterior: bool = False) -> dict[str, Any] | None:
        """The cached result of pair ``i`` of the scenario ``overrides`` (None if not run; call it
        while no handle is running: the runner's composer is not shared between threads)."""
        with self._lock:
            key = (self._scenario_key(list(overrides)), tuple(pair_overrides(i, posterior)))
            return self._cache.get(key)

    def _cancel(self, handle: _Handle) -> None:
        with self._lock:
            if self._active is handle:
                self.batch.cancel(now=True)

    # ---------------------------------------------------------------- the background thread
    def _scenario_key(self, overrides: list[str]) -> str:
        """The hash of a scenario's config before its pair's overrides (no validation: ~2 ms)."""
        from ..runs.results import config_hash, config_yaml

        return config_hash(config_yaml(self.batch.composer.config(overrides, validate=False)))

    def _serve(self) -> None:
        while True:
            handle = self._todo.get()
            if handle is None:
                return
            resume = False
            try:
                self._run(handle)
                with self._lock:
                    resume = handle.preempted.is_set() and not handle.cancelled.is_set()
                    handle.preempted.clear()
                    self._active = None
            except Exception as exc:  # noqa: BLE001 - a bad scenario must not stop the page's runner
                from concurrent.futures.process import BrokenProcessPool

                if isinstance(exc, BrokenProcessPool):  # a worker died (killed, out of memory): new workers next time
                    self.batch.close()
                for name in handle.scenarios:
                    for i in handle.pairs:
                        handle._deliver(ReplicateResult(name, i, {"error": f"{type(exc).__name__}: {exc}"}, [], ""))
            finally:
                with self._lock:
                    self._active = None
                    if not resume and handle in self._open:
                        self._open.remove(handle)
                if resume:
                    self._todo.put(handle)  # after the newer handle(s): its finished runs come from the cache
                else:
                    handle._close()

    def _run(self, handle: _Handle) -> None:
        if handle.cancelled.is_set():
            return
        # which runs are new: pair-major order (pair 0 of every scenario first), one run per key
        want: dict[tuple, list[tuple[str, int]]] = {}
        runs: list[list[str]] = []
        keys: list[tuple] = []
        scenario_keys = {name: self._scenario_key(ov) for name, ov in handle.scenarios.items()}
        for i in handle.pairs:
            extra = tuple(pair_overrides(i, handle.posterior))
            for name, ov in handle.scenarios.items():
                if (name, i) in handle.delivered:  # resumed after a newer handle
                    continue
                key = (scenario_keys[name], extra)
                with self._lock:
                    hit = self._cache.get(key)
                if hit is not None:
                    handle._deliver(ReplicateResult(name, i, hit["summary"], hit["curve"], hit["config_hash"],
                                                    cached=True))
                    continue
                if key not in want:
                    want[key] = []
                    runs.append([*ov, *extra])
                    keys.append(key)
                want[key].append((name, i))
        if not runs:
            return
        with self._lock:
            if handle.cancelled.is_set():
                return
            self.batch.reset()
            self._active = handle
            if any(h.seq > handle.seq and not h.cancelled.is_set() for h in self._open):
                handle.preempted.set()  # a newer handle is waiting already: it goes first
                return
        self.runs_started += len(runs)
        items, skipped = self.batch.plan(runs)
        for out in self.batch.iter_planned(items, skipped):
            key = keys[out.index]
            if out.ok:
                entry = {"summary": out.summary, "curve": list(out.value or []), "config_hash": out.config_hash}
                with self._lock:
                    if len(self._cache) >= self.cache_size:
                        self._cache.pop(next(iter(self._cache)))
                    self._cache[key] = entry
                for name, i in want[key]:
                    handle._deliver(ReplicateResult(name, i, out.summary, entry["curve"], out.config_hash or "",
                                                    cpu_seconds=out.cpu_seconds))
            elif out.status == "failed":
                for name, i in want[key]:
                    handle._deliver(ReplicateResult(name, i, {"error": out.error or "failed"}, [],
                                                    out.config_hash or ""))
