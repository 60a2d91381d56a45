"""One batch runner under every many-run command: sweeps, validate, calibrate, the dashboard.

    from dropout_sim.runs.batch import BatchRunner

    with BatchRunner(["cohort.size=3000"], n_jobs=2) as runner:
        for outcome in runner.iter([["regime=siloed", "replicate=0"], ["regime=colocated", "replicate=0"]],
                                   out_dirs=["out/s0", "out/c0"]):
            print(outcome.index, outcome.status, outcome.summary["completion_5y"])

**Composition once.** Hydra composes a config in about 0.4 s; a run of 3,000 students takes
about 1 s. The runner composes the base config once per distinct combination of *config group*
overrides (``regime=colocated``, ``+calibration=section9``: they change which files are merged)
and applies every other override (``replicate=3``, ``agencies.ppt.posts_per_1000=2``) to a copy
of the composed OmegaConf object with Hydra's own override code, which is what Hydra does after
merging the files; so a run's config (and its hash) is the one ``compose_config`` gives.

**Validation.** :meth:`BatchRunner.check` validates each distinct ``key=value`` once through the
schema (type, unknown key, range), and each distinct group combination once with the first run
that uses it, so a bad value anywhere in a sweep of thousands stops it in milliseconds with one
line, before anything is written. Every run is validated in full again when it starts; a
combination that breaks a cross-field rule is recorded as a failed run.

**Resume before composing.** A run whose folder has no ``summary.json`` is not finished and is
sent as it is; only for folders with a ``summary.json`` is the config built (milliseconds, no
Hydra composition) to compare hashes (:func:`is_finished`). Finished runs never reach a worker
(nor SLURM).

**Run folders.** A run with an ``out_dir`` writes what a Hydra job writes today
(:func:`dropout_sim.runs.sweep.run_task`): the results with ``summary.json`` last and atomic, a
``failed.json`` instead when it fails, ``.hydra/overrides.yaml`` and ``.hydra/config.yaml`` (plus
``.hydra/hydra.yaml`` and the job log under the Hydra launcher). A run without ``out_dir``
writes nothing and returns its summary (and ``probe(model)`` if a probe is given).

**Processes.** ``n_jobs`` worker processes (``-1``: all cores; ``1``: in this process) started
(forked, or from a fork server that has the model imported), fed chunks of runs. Workers exit when
the process that started them dies. :meth:`BatchRunner.cancel` (any thread) or closing the
:meth:`iter` generator drops the chunks not started and stops running chunks after their
current run. ``executor="slurm"`` (or ``"submitit_local"``) sends the same chunks to SLURM
through submitit, one array task per chunk (:class:`SubmititOptions`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..errors import ConfigError
from .results import SUMMARY_FILE, config_hash, config_yaml, read_json, run_lock

log = logging.getLogger(__name__)

STATUSES = ("ran", "skipped", "failed", "cancelled")


# --------------------------------------------------------------------------------------
# the swap point for "is this run folder finished?"
# --------------------------------------------------------------------------------------
def is_finished(run_dir: Path, cfg_hash: str) -> bool:
    """True if ``run_dir`` holds a finished run of the config with hash ``cfg_hash``.

    The one place the runner asks: :func:`dropout_sim.runs.sweep.finished_with_hash` (config hash
    and the running code's fingerprint).
    """
    from .sweep import finished_with_hash

    return finished_with_hash(Path(run_dir), cfg_hash)


def _resume_default() -> bool:
    return os.environ.get("DROPOUT_SIM_RESUME", "1").strip().lower() not in ("0", "false", "no", "off")


# --------------------------------------------------------------------------------------
# public data
# --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What became of one run (``index`` = its position in the list given to the runner)."""

    index: int
    overrides: list[str]
    status: str
    """``ran``, ``skipped`` (finished earlier with the same config), ``failed`` or ``cancelled``."""
    out_dir: Path | None = None
    summary: dict | None = None
    """The run's summary (``summary.json``'s content; for ``skipped``, the finished run's); None if
    ``failed`` or ``cancelled``."""
    value: Any = None
    """``probe(model)`` when the runner has a probe."""
    config_hash: str | None = None
    error: str | None = None
    """``"<ExceptionType>: message"`` of a failed run."""
    seconds: float = 0.0
    """Wall time of the run in its worker (configuration, simulation, writing)."""
    cpu_seconds: float = 0.0
    """CPU time of the run in its worker (less sensitive than ``seconds`` to a busy machine)."""

    @property
    def ok(self) -> bool:
        return self.status in ("ran", "skipped")


@dataclass
class SubmititOptions:
    """Where chunks go when ``executor`` is ``slurm`` (or ``submitit_local``, for tests)."""

    folder: str = ".submitit/%j"
    timeout_min: int = 30
    """Minutes per array task (a chunk of ``chunk_size`` runs)."""
    cpus_per_task: int = 1
    mem_gb: float = 2
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    array_parallelism: int = 256
    setup: list[str] | None = None
    additional_parameters: dict = field(default_factory=dict)
    name: str = "dropout-sim"
    """SLURM job name"""


# --------------------------------------------------------------------------------------
# composition: once per group combination, overrides applied to the composed object
# --------------------------------------------------------------------------------------
_PARSER = None
_PARSED: dict[str, Any] = {}


_PARSE_LOCK = threading.Lock()


def _parse(lines: Sequence[str]) -> list:
    """Hydra's parsed overrides of ``lines`` (each distinct line parsed once per process; the
    parser is shared, so threads take turns: a web page validating while its runner plans)."""
    global _PARSER
    with _PARSE_LOCK:
        missing = [ln for ln in dict.fromkeys(lines) if ln not in _PARSED]
        if missing:
            if _PARSER is None:
                from hydra.core.override_parser.overrides_parser import OverridesParser

                _PARSER = OverridesParser.create()
            for line, ov in zip(missing, _PARSER.parse_overrides(missing)):
                if len(_PARSED) > 100_000:
                    _PARSED.clear()
                _PARSED[line] = ov
        return [_PARSED[ln] for ln in lines]


def apply_overrides(node: Any, lines: Sequence[str]) -> None:
    """Apply ``key=value`` overrides (``+``, ``++``, ``~`` included) to a composed config in place,
    with the code Hydra applies command-line overrides with after composition."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    if lines:
        ConfigLoaderImpl._apply_overrides_to_config(_parse(lines), node)


def _one_line(exc: BaseException) -> str:
    text = str(exc) + ("\n" + str(exc.__cause__) if exc.__cause__ is not None else "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("full_key:", "object_type", "Set the environment"))]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def _bad_config(exc: BaseException) -> ConfigError:
    return exc if isinstance(exc, ConfigError) else ConfigError(_one_line(exc))


def build_config(node: Any) -> Any:
    """A composed task node (no ``hydra`` key) as a validated Config; ConfigError on any problem."""
    from omegaconf.errors import OmegaConfBaseException

    from ..schema import to_config

    try:
        return to_config(node)
    except ConfigError:
        raise
    except (OmegaConfBaseException, ValueError, KeyError, TypeError) as exc:
        raise _bad_config(exc) from None


def _unvalidated_config(node: Any) -> Any:
    """:func:`~dropout_sim.schema.to_config` without its checks (for hashing only)."""
    from omegaconf import OmegaConf

    from ..schema import AGENCY_SETTINGS, AgencyConfig, Config, _agency_from, take_posterior_path

    try:
        obj = OmegaConf.to_object(node)
        if not isinstance(obj, Config):
            obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), node))
        obj.agencies = {name: (value if name in AGENCY_SETTINGS or isinstance(value, AgencyConfig)
                               else _agency_from(name, value))
                        for name, value in obj.agencies.items()}
        take_posterior_path(obj)
        if obj.posterior is not None:  # the drawn particle's values are part of the run's config (and hash)
            from ..posterior import apply

            apply(obj)
        return obj
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _bad_config(exc) from None


class Composer:
    """Composes configs for many runs: Hydra once per group combination, the rest applied.

    ``base`` is a list of overrides (composed with the packaged configs; ``hydra.searchpath=[...]``
    adds config folders) or a :class:`~dropout_sim.schema.Config` (then runs may only set values).
    Under the Hydra launcher, ``loader`` and ``master`` are Hydra's config loader and the sweep's
    config, and nodes keep their ``hydra`` section (see :meth:`hydra_node`).

    ``hydra`` (the CLI's start-up check): the command's own Hydra overrides (``hydra.*``,
    ``hydra/...``), composed with every combination, whose ``hydra`` section is kept (composed as
    job ``job_name``), so that the launcher can take it over instead of composing the
    combination once more for ``.hydra/hydra.yaml``.
    """

    def __init__(self, base: Sequence[str] | Any = (), config_name: str | None = None,
                 loader: Any = None, master: Any = None, reuse: "Composer | None" = None,
                 hydra: Sequence[str] | None = None, job_name: str | None = None):
        from .api import CONFIG_NAME

        self.config_name = config_name or CONFIG_NAME
        self.loader, self.master = loader, master
        self.reuse = reuse if reuse is not None and reuse.config_name == self.config_name else None
        """a Composer of the same configs whose task compositions this one may take over (the CLI's
        start-up check, for the launcher in the same process)"""
        self.base_config = None if isinstance(base, (list, tuple)) else base
        base_lines = [] if self.base_config is not None else [str(x) for x in base]
        self._hydra_lines = [ln for ln in base_lines if ln.lstrip("+~").startswith("hydra.")]
        self._hydra_own = None if hydra is None else [str(x) for x in hydra]
        self.job_name = job_name
        self._groups_known: dict[str, bool] = {}
        self._posterior_options: frozenset | None = None
        self._repo = None
        self._nodes: dict[tuple, Any] = {}
        self._hydra_nodes: dict[tuple, Any] = {}
        task_lines = [ln for ln in base_lines if ln not in self._hydra_lines]
        self.base_groups, self.base_values = self.split(task_lines)

    # -- which overrides are config groups -------------------------------------------
    def _repository(self) -> Any:
        if self._repo is None:
            if self.base_config is not None:
                self._repo = False
            elif self.loader is not None:
                from omegaconf import OmegaConf

                hydra_lines = list(OmegaConf.to_container(self.master.hydra.overrides.hydra, resolve=False))
                _, self._repo = self.loader._parse_overrides_and_create_caching_repo(self.config_name, hydra_lines)
            else:
                with _hydra_initialized():
                    from hydra.core.global_hydra import GlobalHydra

                    loader = GlobalHydra.instance().config_loader()
                    _, self._repo = loader._parse_overrides_and_create_caching_repo(self.config_name,
                                                                                     self._hydra_lines)
        return self._repo

    def is_group(self, line: str) -> bool:
        """Hydra's rule (defaults_list.Overrides): a group override unless its value is a dict."""
        key = line.split("=", 1)[0]
        if key not in self._groups_known:
            (ov,) = _parse([line])
            repo = self._repository()
            if ov.package is not None:
                self._groups_known[key] = True
            elif repo is False:
                self._groups_known[key] = False
            else:
                self._groups_known[key] = bool(repo.group_exists(ov.key_or_group))
        if not self._groups_known[key]:
            return False
        (ov,) = _parse([line])
        return not isinstance(ov.value(), dict)

    def posterior_option(self, name: str) -> bool:
        """Whether ``name`` is an option of the ``posterior`` config group of these configs
        (packaged, ``--config-dir`` and ``hydra.searchpath`` folders alike)."""
        if self._posterior_options is None:
            repo = self._repository()
            if repo is False:
                from ..posterior import group_options
                from .overrides import search_folders

                self._posterior_options = frozenset(group_options(tuple(search_folders(self._hydra_lines))))
            else:
                from hydra.core.object_type import ObjectType

                self._posterior_options = frozenset(repo.get_group_options("posterior", ObjectType.CONFIG))
        return name in self._posterior_options

    def normalize(self, lines: Sequence[str]) -> list[str]:
        """``posterior=<path>`` -> ``posterior_path=<path>``
        (:func:`~dropout_sim.runs.overrides.normalize_posterior`); other lines as they are."""
        from .overrides import normalize_posterior

        return normalize_posterior(lines, is_option=self.posterior_option)

    def split(self, lines: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(group overrides, value overrides) of a run, ``posterior=<path>`` read as ``posterior_path``."""
        lines = self.normalize(lines)
        groups = tuple(ln for ln in lines if self.is_group(ln))
        values = tuple(ln for ln in lines if ln not in groups)
        return groups, values

    # -- composition --------------------------------------------------------------------
    def combo(self, run_groups: Sequence[str]) -> tuple[str, ...]:
        return (*self.base_groups, *run_groups)

    def node(self, combo: tuple[str, ...]) -> Any:
        """The composed task config (no ``hydra`` key, struct mode) of a group combination."""
        if combo not in self._nodes:
            from omegaconf import OmegaConf, open_dict, read_write

            if self.base_config is not None:
                if combo:
                    raise ConfigError(f"{combo[0]} selects a config group; a runner built on a Config "
                                      "object takes values only (key=value)")
                from ..schema import register_configs

                register_configs()
                node = OmegaConf.structured(self.base_config)
                OmegaConf.set_struct(node, True)
            elif self.loader is not None and self.reuse is not None and combo in self.reuse._nodes:
                node = self.reuse._nodes[combo]  # composed by the start-up check; hydra section on demand
            elif self.loader is not None:
                full = self.loader.load_sweep_config(self.master, list(combo))
                self._hydra_nodes[combo] = OmegaConf.masked_copy(full, "hydra")
                node = full
                with read_write(node), open_dict(node):
                    del node["hydra"]
            elif self._hydra_own is not None:
                node = _compose_node([*self._hydra_lines, *self._hydra_own, *combo], self.config_name,
                                     keep_hydra=True, job_name=self.job_name)
                self._hydra_nodes[combo] = OmegaConf.masked_copy(node, "hydra")
                with read_write(node), open_dict(node):
                    del node["hydra"]
            else:
                node = _compose_node([*self._hydra_lines, *combo], self.config_name)
            self._nodes[combo] = node
        return self._nodes[combo]

    def hydra_node(self, combo: tuple[str, ...]) -> Any:
        """The ``hydra`` section (a config with the one key ``hydra``) of a combination (launcher only).

        The start-up check's (``reuse``) when it was composed from what Hydra's
        ``load_sweep_config`` composes from (:func:`same_hydra_inputs`), else composed here."""
        self.node(combo)
        if self.loader is not None and combo not in self._hydra_nodes:
            from omegaconf import OmegaConf

            taken = self.reuse._hydra_nodes.get(combo) if self.reuse is not None else None
            if taken is not None and same_hydra_inputs(taken.hydra, self.master.hydra, combo):
                OmegaConf.copy_cache(from_config=self.master, to_config=taken)  # as load_sweep_config does
                self._hydra_nodes[combo] = taken
            else:
                full = self.loader.load_sweep_config(self.master, list(combo))
                self._hydra_nodes[combo] = OmegaConf.masked_copy(full, "hydra")
        return self._hydra_nodes.get(combo)

    def job_node(self, combo: tuple[str, ...], values: Sequence[str]) -> Any:
        node = copy.deepcopy(self.node(combo))
        try:
            apply_overrides(node, [*self.base_values, *values])
        except Exception as exc:  # noqa: BLE001 - Hydra's composition errors, one line
            raise _bad_config(exc) from None
        return node

    def config(self, overrides: Sequence[str], validate: bool = True) -> Any:
        """The validated Config of one run (ConfigError, one line, if it is not valid).

        ``validate=False`` skips the schema's key and range checks (the resume check only needs
        the config's hash: a finished run's config was valid, so an invalid one never matches)."""
        groups, values = self.split(overrides)
        combo = self.combo(groups)
        try:
            node = self.node(combo)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a missing group option etc.: one line
            raise _bad_config(exc) from None
        lines = [*self.base_values, *values]
        restore = _plain_assignments(node, lines)
        build = build_config if validate else _unvalidated_config
        if restore is None:
            return build(self.job_node(combo, values))
        try:  # set, build, put back: no copy of the whole config per run
            apply_overrides(node, lines)
            return build(node)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _bad_config(exc) from None
        finally:
            for parent, key, raw in reversed(restore):
                parent[key] = raw

    # -- validation ---------------------------------------------------------------------
    def check_composable(self, runs: Sequence[Sequence[str]]) -> None:
        """Hydra's check that every run composes (the sweeper's ``validate_batch_is_legal``) at the
        cost of one composition per group combination and one application per distinct value;
        Hydra's own exceptions propagate."""
        scratch: dict[tuple, Any] = {}
        seen: set[tuple] = set()
        for run in runs:
            groups, values = self.split(run)
            combo = self.combo(groups)
            if combo not in scratch:
                scratch[combo] = copy.deepcopy(self.node(combo))
                apply_overrides(scratch[combo], self.base_values)
            for line in values:
                if (combo, line) not in seen:
                    seen.add((combo, line))
                    apply_overrides(scratch[combo], [line])

    def check(self, runs: Sequence[Sequence[str]]) -> None:
        """Validate each distinct ``key=value`` of ``runs`` once, and each group combination once
        (with the first run that uses it); raise ConfigError naming the first bad one."""
        with _hydra_initialized():
            self._check(runs)

    def _check(self, runs: Sequence[Sequence[str]]) -> None:
        from omegaconf import OmegaConf

        from ..schema import check_keys

        firsts: dict[tuple, list[str]] = {}
        seen: set[str] = set()
        scratch: dict[tuple, Any] = {}
        for run in runs:
            groups, values = self.split(run)
            combo = self.combo(groups)
            firsts.setdefault(combo, list(run))
            for line in values:
                if line in seen:
                    continue
                seen.add(line)
                if combo not in scratch:
                    try:
                        scratch[combo] = copy.deepcopy(self.node(combo))
                    except ConfigError:
                        raise
                    except Exception as exc:  # noqa: BLE001
                        raise _bad_config(exc) from None
                node = scratch[combo]
                try:
                    apply_overrides(node, [line])
                except Exception as exc:  # noqa: BLE001
                    raise _bad_config(exc) from None
                key = _parse([line])[0].key_or_group
                if line.startswith(("+", "~")):
                    check_keys(node)
                value = OmegaConf.select(node, key, default=None)
                meta = field_meta(key)
                if meta is None and value is not None and not OmegaConf.is_config(value):
                    check_keys(node)  # an undeclared key: one line naming it
                if meta is not None and not OmegaConf.is_config(value):
                    from ..schema import _check_field

                    _check_field(key, value, meta)
        for run in firsts.values():
            self.config(run)


HYDRA_INPUTS = ("overrides.hydra", "runtime.config_sources", "runtime.cwd", "runtime.version",
                "runtime.version_base", "job.name", "job.config_name", "job.env_set")
"""What Hydra's composition of a combination's ``hydra`` section depends on besides the combination
and the configs (the overrides; where configs are searched; the process's state), as it records them."""


def same_hydra_inputs(section: Any, master: Any, combo: Sequence[str]) -> bool:
    """Whether the ``hydra`` section ``section`` (composed with a combination's overrides) was
    composed from what Hydra's ``load_sweep_config(master, combo)`` composes from: the same Hydra
    overrides in the same order, then ``combo``; the same config sources, job name, working folder,
    Hydra version and copied environment."""
    from omegaconf import OmegaConf

    def get(node: Any, key: str) -> Any:
        value = OmegaConf.select(node, key, default=None)
        return OmegaConf.to_container(value, resolve=False) if OmegaConf.is_config(value) else value

    try:
        if get(section, "overrides.task") != list(combo):
            return False
        return all(get(section, key) == get(master, key) for key in HYDRA_INPUTS)
    except Exception:  # noqa: BLE001 - anything unexpected: compose as Hydra does
        return False


def _plain_assignments(node: Any, lines: Sequence[str]) -> list | None:
    """For ``key=value`` lines that set existing leaf values (no ``+``/``~``, no containers):
    ``[(parent node, key, raw old value)]`` to restore them; None if any line is not one."""
    from omegaconf import OmegaConf

    restore = []
    for ov in _parse(lines):
        if ov.is_add() or ov.is_force_add() or ov.is_delete() or isinstance(ov.value(), (dict, list)):
            return None
        path = ov.key_or_group
        head, _, last = path.rpartition(".")
        parent = OmegaConf.select(node, head) if head else node
        if not OmegaConf.is_dict(parent) or last not in parent:
            return None
        child = parent._get_node(last)
        if OmegaConf.is_config(child):
            return None
        restore.append((parent, last, child._value()))
    return restore


def field_meta(key: str) -> dict | None:
    """The schema metadata (unit, range, choices) of a dotted config key; None if not a field."""
    from ..schema import AGENCY_SETTINGS, AgencyConfig, AgencySettings, Config

    parts = key.split(".")
    cls: Any = Config
    for i, part in enumerate(parts):
        if cls is None:
            return None
        if cls is Config and part == "agencies":
            rest = parts[i + 1:]
            if len(rest) == 1 and rest[0] in AGENCY_SETTINGS:
                return _meta_of(AgencySettings, rest[0])
            if len(rest) == 2:
                return _meta_of(AgencyConfig, rest[1])
            return None
        match = {f.name: f for f in fields(cls)}.get(part)
        if match is None:
            return None
        if i == len(parts) - 1:
            return dict(match.metadata) if match.metadata else None
        default = match.default_factory() if callable(match.default_factory) else None
        cls = type(default) if is_dataclass(default) else None
    return None


def _meta_of(cls: type, name: str) -> dict | None:
    match = {f.name: f for f in fields(cls)}.get(name)
    return dict(match.metadata) if match is not None and match.metadata else None


_SHARED: dict[str, Any] = {}


def share_compositions(composer: "Composer | None") -> None:
    """Offer ``composer``'s compositions to the Hydra launcher in this process (the CLI's start-up
    check composed each group combination already; a resumed sweep then composes nothing more)."""
    if composer is None:
        _SHARED.pop("composer", None)
    else:
        _SHARED["composer"] = composer


def shared_composer() -> "Composer | None":
    return _SHARED.get("composer")


class _hydra_initialized:
    """Context: Hydra initialised with the packaged configs (left as it was on exit); ``job_name``:
    ``hydra.job.name`` of what is composed (Hydra's default when None)."""

    def __init__(self, job_name: str | None = None):
        self.job_name = job_name

    def __enter__(self):
        from hydra import initialize_config_module
        from hydra.core.global_hydra import GlobalHydra

        from ..schema import register_configs
        from .api import CONFIG_MODULE, HYDRA_LOCK

        register_configs()
        self._lock = HYDRA_LOCK
        self._lock.acquire()  # Hydra's global state: one thread at a time (see api.HYDRA_LOCK)
        self._ctx = None
        try:
            if not GlobalHydra.instance().is_initialized():
                named = {"job_name": self.job_name} if self.job_name else {}
                self._ctx = initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3", **named)
                self._ctx.__enter__()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self._ctx is not None:
                self._ctx.__exit__(*exc)
        finally:
            self._lock.release()
        return False


def _compose_node(overrides: Sequence[str], config_name: str, keep_hydra: bool = False,
                  job_name: str | None = None) -> Any:
    from hydra import compose

    with _hydra_initialized(job_name):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=keep_hydra)


# --------------------------------------------------------------------------------------
# the work a worker does (plain data in, plain data out)
# --------------------------------------------------------------------------------------
@dataclass
class _Context:
    """What every run of a batch shares; sent once per chunk."""

    nodes: dict
    """group combination -> composed task node"""
    base_values: tuple
    hydra_nodes: dict | None = None
    """launcher: group combination -> hydra section as a container (written to .hydra/hydra.yaml)"""
    probe: Callable | None = None
    resume: bool = True
    progress: dict | None = None
    """``{"sweep_dir": ..., "env": {...}}``: record a progress line per run (the Hydra launcher)"""
    keep_summary: bool = True
    plain_combos: frozenset = frozenset()
    """combinations whose composed node's YAML is its Config's YAML (see :func:`_prepare`)"""
    log_configs: dict = field(default_factory=dict, repr=False, compare=False)
    """group combination -> the small config the job log is configured from (see _configure_job_log)"""


@dataclass
class _Item:
    index: int
    combo: tuple
    values: tuple
    overrides: tuple
    out_dir: str | None = None
    meta: dict | None = None
    job: dict | None = None
    """launcher: num, id, override_dirname (hydra.job fields) and output_dir"""
    label: str = ""


_CANCEL = None  # the cancel event a pool worker was started with
_ABORT = None   # set: runs in progress stop too (between months), see BatchRunner.cancel(now=True)
ABORT_CHECK_MONTHS = 3
"""A run in a pool worker looks at the abort event every this many model months."""


def _cancelled() -> bool:
    return _CANCEL is not None and _CANCEL.is_set()


class _Aborted(Exception):
    """The run was stopped part-way by ``BatchRunner.cancel(now=True)``."""


def _run_model(model: Any) -> None:
    """``model.run()``; in a pool worker in slices of :data:`ABORT_CHECK_MONTHS` months, so that
    ``cancel(now=True)`` stops a run in progress (the same months, steps and numbers either way)."""
    if _ABORT is None or not hasattr(model, "months") or not hasattr(model, "month"):
        model.run()
        return
    while model.month < model.months:
        if _ABORT.is_set():
            raise _Aborted()
        model.run(min(ABORT_CHECK_MONTHS, model.months - model.month))


def completion_curve(model: Any) -> list[float]:
    """A probe: the share of the focal cohorts completed at the end of each focal month (month
    0, 1, ...; cumulative; the value at index 59 is completion within 60 months)."""
    return [row["focal_completed"] / row["focal_students"] if row["focal_students"] else float("nan")
            for row in model.recorder.rows]


def _run_chunk(ctx: _Context, items: list[_Item]) -> list[Outcome]:
    """Run a chunk in this process, one run after another; stop early when cancelled."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    if ctx.progress:
        os.environ.update(ctx.progress.get("env", {}))
    out = []
    for item in items:
        if _cancelled():
            out.append(Outcome(item.index, list(item.overrides), "cancelled",
                               Path(item.out_dir) if item.out_dir else None))
            continue
        out.append(_run_one(ctx, item))
    return out


def _yaml(data: Any) -> str:
    """What ``OmegaConf.to_yaml`` writes for a container (the same dumper's quoting, on libyaml)."""
    from .results import _dump_yaml

    return _dump_yaml(data)


def _node_yaml(node: Any) -> str:
    from omegaconf import OmegaConf

    return _yaml(OmegaConf.to_container(node, resolve=False, enum_to_str=True))


def _write_hydra_files(ctx: _Context, item: _Item, config_text: str, out_dir: Path) -> None:
    """``.hydra/{config,hydra,overrides}.yaml`` as Hydra's run_job writes them, and the job log.

    The hydra section is a plain container per group combination (made once by the parent);
    each job changes its own copies of ``overrides``, ``job`` and ``runtime``.
    """
    from .results import atomic_write_text

    hydra_dir: Path | None = out_dir / ".hydra"
    section = ctx.hydra_nodes.get(item.combo) if ctx.hydra_nodes else None
    if section is not None:
        h = dict(section["hydra"])
        job = item.job or {}
        h["overrides"] = {**h["overrides"], "task": list(item.overrides)}
        h["job"] = {**h["job"], "num": job.get("num", item.index),
                    "id": job.get("id", f"{h['job'].get('name')}_{item.index}"),
                    "override_dirname": job.get("override_dirname", "")}
        h["runtime"] = {**h["runtime"], "output_dir": str(out_dir.resolve())}
        hydra_dir = None if h.get("output_subdir") is None else out_dir / str(h["output_subdir"])
        _configure_job_log(h, ctx.log_configs, item.combo)
    if hydra_dir is not None:  # provenance, as Hydra writes it (no fsync: nothing waits on these)
        atomic_write_text(hydra_dir / "config.yaml", config_text, durable=False)
        if section is not None:
            atomic_write_text(hydra_dir / "hydra.yaml", _yaml({"hydra": h}), durable=False)
        atomic_write_text(hydra_dir / "overrides.yaml", _yaml(list(item.overrides)), durable=False)


def _configure_job_log(h: dict, cache: dict | None = None, key: Any = None) -> None:
    """Hydra's per-job logging (the ``<job name>.log`` file in the run folder), as run_job does.

    ``cache``: where the config it resolves is kept per ``key`` (a group combination, whose
    logging config and job name every job shares), so that a job only sets its folder."""
    from hydra.core.utils import configure_log
    from omegaconf import OmegaConf

    try:
        small = cache.get(key) if cache is not None else None
        if small is None:
            small = OmegaConf.create({"hydra": {"runtime": {"output_dir": h["runtime"]["output_dir"]},
                                                "job": {"name": h["job"].get("name")}},
                                      "job_logging": h.get("job_logging")})
            if cache is not None:
                cache[key] = small
        else:
            small.hydra.runtime.output_dir = h["runtime"]["output_dir"]
        configure_log(small.job_logging, h.get("verbose", False))
    except Exception:  # noqa: BLE001 - logging must never fail a run
        pass


def _prepare(ctx: _Context, item: _Item, want_text: bool) -> tuple[Any, str | None]:
    """The run's validated Config (and the YAML of its composed node for ``.hydra/config.yaml``).

    Plain ``key=value`` overrides are set on the shared node and put back afterwards (no copy
    of the whole config per run); anything else works on a copy.
    """
    node = ctx.nodes[item.combo]
    lines = [*ctx.base_values, *item.values]
    restore = _plain_assignments(node, lines)
    if restore is None:
        node = copy.deepcopy(node)
    try:
        try:
            apply_overrides(node, lines)
        except Exception as exc:  # noqa: BLE001
            raise _bad_config(exc) from None
        config = build_config(node)
        # .hydra/config.yaml is the composed node's YAML; for a combination whose node YAML equals
        # its Config's YAML (no interpolations: checked once per combination) and plain values set
        # on it, that is the config.yaml text the run computes anyway (None: use it)
        same = restore is not None and item.combo in ctx.plain_combos
        return config, (_node_yaml(node) if want_text and not same else None)
    finally:
        for parent, key, raw in reversed(restore or []):
            parent[key] = raw


def _record(ctx: _Context, status: str, message: str) -> None:
    if ctx.progress:
        from .sweep import record_progress

        record_progress(Path(ctx.progress["sweep_dir"]), status, message)


def _simulate(ctx: "_Context", item: "_Item", config_text: str, config, cfg_text: str, cfg_hash: str,
              out_dir: Path | None, overrides: list[str], what: str, t0: float):
    """Run the model and write the run folder; (summary, probe value), or the failed Outcome."""
    from .sweep import clear_run_dir, write_failure

    try:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_hydra_files(ctx, item, config_text, out_dir)
            clear_run_dir(out_dir)
        from ..model.metrics import summary as _summary
        from ..model.model import DropoutModel

        model = DropoutModel(config)
        _run_model(model)
        if out_dir is not None:
            from .results import write_run

            summary = write_run(model, out_dir, {"overrides": overrides, **(item.meta or {})}, cfg_text)
        else:
            summary = _summary(model)
        value = ctx.probe(model) if ctx.probe is not None else None
    except _Aborted:  # cancel(now=True): nothing written beyond the cleared folder; re-runs next time
        return Outcome(item.index, overrides, "cancelled", out_dir, config_hash=cfg_hash,
                       seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the batch goes on
        import traceback

        if out_dir is not None:
            try:
                write_failure(out_dir, exc, overrides, cfg_hash, config)
            except OSError:
                pass
        log.error("run failed: %s\n%s", what, traceback.format_exc())
        _record(ctx, "failed", f"{what}: FAILED {type(exc).__name__}: {exc}")
        return Outcome(item.index, overrides, "failed", out_dir, config_hash=cfg_hash,
                       error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
    return summary, value


def _run_one(ctx: _Context, item: _Item) -> Outcome:
    c0 = time.process_time()
    outcome = _run_one_untimed(ctx, item)
    outcome.cpu_seconds = time.process_time() - c0
    return outcome


def _run_one_untimed(ctx: _Context, item: _Item) -> Outcome:
    from .sweep import clear_run_dir, describe_completion, write_failure

    t0 = time.perf_counter()
    out_dir = Path(item.out_dir) if item.out_dir else None
    overrides = list(item.overrides)
    what = item.label or " ".join(overrides) or "(defaults)"
    config, cfg_hash = None, None
    try:
        config, config_text = _prepare(ctx, item, out_dir is not None)
    except ConfigError as exc:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            clear_run_dir(out_dir)
            write_failure(out_dir, exc, overrides)
        _record(ctx, "failed", f"{what}: FAILED bad config: {exc}")
        return Outcome(item.index, overrides, "failed", out_dir, error=f"ConfigError: {exc}",
                       seconds=time.perf_counter() - t0)

    cfg_text = config_yaml(config)
    cfg_hash = config_hash(cfg_text)
    config_text = config_text if config_text is not None else cfg_text
    if out_dir is not None:
        from .sweep import folder_problem

        problem = folder_problem(out_dir)
        if problem is not None:
            message = f"cannot write the run folder: {problem}"
            if ctx.progress and ctx.progress.get("sweep_dir"):  # the report counts it as failed
                from .sweep import record_unwritable

                record_unwritable(Path(ctx.progress["sweep_dir"]), out_dir, message, overrides, cfg_hash)
            _record(ctx, "failed", f"{what}: FAILED {message}")
            return Outcome(item.index, overrides, "failed", out_dir, config_hash=cfg_hash,
                           error=f"PermissionError: {message}", seconds=time.perf_counter() - t0)
    # another process working in this run folder (two identical sweeps at once): wait, then look again
    with (run_lock(out_dir) if out_dir is not None else contextlib.nullcontext()):
        if out_dir is not None and ctx.resume and is_finished(out_dir, cfg_hash):
            _record(ctx, "skipped", f"{what}: already finished (same config hash {cfg_hash} and code fingerprint)")
            return Outcome(item.index, overrides, "skipped", out_dir, read_json(out_dir / SUMMARY_FILE),
                           config_hash=cfg_hash, seconds=time.perf_counter() - t0)
        outcome = _simulate(ctx, item, config_text, config, cfg_text, cfg_hash, out_dir, overrides, what, t0)
        if isinstance(outcome, Outcome):
            return outcome
        summary, value = outcome
    seconds = time.perf_counter() - t0
    _record(ctx, "ran", f"{what}: {describe_completion(summary)} ({seconds:.2f} s)")
    return Outcome(item.index, overrides, "ran", out_dir, summary if ctx.keep_summary else None, value,
                   cfg_hash, seconds=seconds)


# --------------------------------------------------------------------------------------
# worker processes
# --------------------------------------------------------------------------------------
def _init_worker(cancel: Any, parent_pid: int, abort: Any = None) -> None:
    """Pool worker start-up: remember the cancel and abort events; exit when the parent process is gone."""
    import signal

    global _CANCEL, _ABORT
    _CANCEL, _ABORT = cancel, abort
    logging.getLogger("MESA").setLevel(logging.WARNING)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the workers)

    first_ppid = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != first_ppid:  # re-parented: whoever started this worker is gone
                os._exit(1)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="dropout-sim-parent-watch", daemon=True).start()


def _warm_worker(pause: float) -> bool:
    """Import what a run needs (in a pool worker); the pause lets every worker take one call."""
    from ..model import metrics, model  # noqa: F401
    from . import results  # noqa: F401

    time.sleep(pause)
    return True


def _mp_context():
    """``fork`` when this process has no other threads (fast; no ``if __name__ == "__main__"``
    guard needed in scripts); otherwise a fork server that has the model imported (forking a
    threaded process is unsafe), then ``spawn``."""
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["dropout_sim.runs.batch", "dropout_sim.model.model", "dropout_sim.runs.results"])
        return ctx
    return mp.get_context("spawn")


def default_n_jobs() -> int:
    """Worker processes of commands that do not say (validate, calibrate):
    ``DROPOUT_SIM_PROCESSES`` or up to 2 (the machine is often shared)."""
    env = os.environ.get("DROPOUT_SIM_PROCESSES")
    if env:
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def resolve_n_jobs(n_jobs: int | None) -> int:
    """joblib's convention: -1 = all cores, -2 = all but one, None/0 = 1."""
    cores = os.cpu_count() or 1
    if not n_jobs:
        return 1
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return int(n_jobs)


def default_chunk_size(n_runs: int, n_jobs: int) -> int:
    """Chunks small enough to keep every worker busy to the end (about 4 per worker), at most 16 runs."""
    if n_runs <= 0:
        return 1
    return max(1, min(16, math.ceil(n_runs / (4 * max(1, n_jobs)))))


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i:i + size]) for i in range(0, len(items), max(1, size))]


# --------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------
class BatchRunner:
    """Run many configs: ``base`` plus per-run overrides; see the module docstring.

    Parameters
    ----------
    base:
        Overrides every run shares (``["cohort.size=3000", "+calibration=section9"]``,
        ``hydra.searchpath=[file://DIR]`` for extra config folders), or a ``Config`` object.
    n_jobs:
        Worker processes; ``-1`` all cores, ``1`` runs in this process (no pool).
    chunk_size:
        Runs per chunk (one pool task; one SLURM array task); default :func:`default_chunk_size`.
    probe:
        ``probe(model) -> value`` (a module-level function) computed after each run, returned in
        :attr:`Outcome.value`.
    resume:
        Skip runs whose ``out_dir`` already holds the same finished run (default: on, unless
        ``DROPOUT_SIM_RESUME=0``).
    executor:
        ``"local"`` (process pool), ``"slurm"`` or ``"submitit_local"`` (:class:`SubmititOptions`).
    """

    def __init__(self, base: Sequence[str] | Any = (), n_jobs: int | None = 1, chunk_size: int | None = None,
                 probe: Callable | None = None, resume: bool | None = None, executor: str = "local",
                 submitit: SubmititOptions | None = None, composer: Composer | None = None,
                 progress: dict | None = None):
        if executor not in ("local", "slurm", "submitit_local"):
            raise ConfigError(f"executor = {executor!r} is not allowed; allowed: local, slurm, submitit_local")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size = {chunk_size} is not allowed; allowed: >= 1")
        self.composer = composer or Composer(base)
        self.n_jobs = resolve_n_jobs(n_jobs)
        self.chunk_size = chunk_size
        self.probe = probe
        self.resume = _resume_default() if resume is None else bool(resume)
        self.executor = executor
        self.submitit = submitit or SubmititOptions()
        self.progress = progress
        self._pool = None
        self._cancel = None
        self._abort = None
        self._cancel_local = threading.Event()
        self.jobs: list = []
        """submitit jobs of the last SLURM batch"""

    # -- life cycle ---------------------------------------------------------------------
    def __enter__(self) -> "BatchRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (cancelling work not started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _terminate(self) -> None:
        """Kill the worker processes (no waiting for their current run)."""
        if self._pool is not None:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def cancel(self, now: bool = False) -> None:
        """Cancel the current batch from any thread: chunks not started are dropped, running
        chunks stop after their current run; :meth:`iter` then ends. ``now=True``: runs in
        progress in the worker processes stop too, within a few model months (they come back as
        ``cancelled``, and a run folder they were writing holds no ``summary.json``)."""
        self._cancel_local.set()
        if self._cancel is not None:
            self._cancel.set()
        if now and self._abort is not None:
            self._abort.set()

    def reset(self) -> None:
        """Clear an earlier :meth:`cancel` (:meth:`iter` and :meth:`run` do this themselves; a
        caller of :meth:`iter_planned` calls it before planning, so that a cancel arriving in
        between is not lost)."""
        self._reset()

    def warm_up(self) -> None:
        """Start the worker processes now and import the model in each (an interactive caller's
        first runs then start at once). After it, runs go to the worker processes even with
        ``n_jobs=1`` (the caller's process stays free, and ``cancel(now=True)`` works). Does
        nothing with another executor."""
        if self.executor != "local":
            return
        pool = self._executor()
        for fut in [pool.submit(_warm_worker, 0.05) for _ in range(self.n_jobs)]:
            fut.result()

    def _executor(self):
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            ctx = _mp_context()
            self._cancel = ctx.Event()
            self._abort = ctx.Event()
            self._pool = ProcessPoolExecutor(self.n_jobs, mp_context=ctx, initializer=_init_worker,
                                             initargs=(self._cancel, os.getpid(), self._abort))
        return self._pool

    # -- planning -----------------------------------------------------------------------
    def check(self, runs: Iterable[Sequence[str]]) -> None:
        """Validate each distinct override of ``runs`` once (ConfigError, one line, on the first bad one)."""
        self.composer.check([list(r) for r in runs])

    def plan(self, runs: Sequence[Sequence[str]], out_dirs: Sequence[str | Path | None] | None = None,
             metas: Sequence[dict | None] | None = None, jobs: Sequence[dict | None] | None = None,
             labels: Sequence[str] | None = None) -> tuple[list[_Item], list[Outcome]]:
        """Split ``runs`` into work items and runs already finished (skipped, never composed
        beyond the cheap config build, and only when their folder has a ``summary.json``)."""
        items, skipped = [], []
        for i, run in enumerate(runs):
            run = [str(x) for x in run]
            out_dir = out_dirs[i] if out_dirs is not None else None
            groups, values = self.composer.split(run)
            combo = self.composer.combo(groups)
            item = _Item(i, combo, values, tuple(run), str(out_dir) if out_dir is not None else None,
                         metas[i] if metas else None, jobs[i] if jobs else None,
                         labels[i] if labels else "")
            if out_dir is not None and self.resume and (Path(out_dir) / SUMMARY_FILE).is_file():
                try:
                    cfg = self.composer.config(run, validate=False)
                except ConfigError:
                    cfg = None
                if cfg is not None:
                    h = config_hash(config_yaml(cfg))
                    if is_finished(Path(out_dir), h):
                        skipped.append(Outcome(i, run, "skipped", Path(out_dir), read_json(Path(out_dir) / SUMMARY_FILE),
                                               config_hash=h))
                        continue
            items.append(item)
        return items, skipped

    def _context(self, items: Sequence[_Item]) -> _Context:
        combos = {it.combo for it in items}
        nodes, hydra_nodes = {}, {}
        for combo in combos:
            try:
                nodes[combo] = self.composer.node(combo)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _bad_config(exc) from None
            hn = self.composer.hydra_node(combo)
            if hn is not None:
                from omegaconf import OmegaConf

                hydra_nodes[combo] = OmegaConf.to_container(hn, resolve=False, enum_to_str=True)
        plain = set()
        if any(it.out_dir is not None for it in items):
            for combo, node in nodes.items():
                try:
                    text = _node_yaml(node)
                    if "${" not in text and text == config_yaml(_unvalidated_config(node)):
                        plain.add(combo)
                except Exception:  # noqa: BLE001 - then every run dumps its own node
                    pass
        return _Context(nodes, self.composer.base_values, hydra_nodes or None, self.probe, self.resume,
                        self.progress, plain_combos=frozenset(plain))

    # -- running ------------------------------------------------------------------------
    def run(self, runs: Sequence[Sequence[str]], out_dirs: Sequence[str | Path | None] | None = None,
            on_result: Callable[[Outcome], None] | None = None, **plan_kw: Any) -> list[Outcome]:
        """Run every run; return the outcomes in the order of ``runs`` (``on_result`` is called
        as each arrives)."""
        return self._collect([[str(x) for x in r] for r in runs], self.iter(runs, out_dirs, **plan_kw), on_result)

    def run_planned(self, items: list[_Item], skipped: list[Outcome], labels: Sequence[str] | None = None,
                    on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """:meth:`run` for the result of :meth:`plan` (the Hydra launcher plans first to log)."""
        runs: list[list[str]] = [[] for _ in range(len(items) + len(skipped))]
        for x in [*items, *skipped]:
            runs[x.index] = list(x.overrides)
        self._reset()
        return self._collect(runs, self.iter_planned(items, skipped, labels), on_result)

    @staticmethod
    def _collect(runs: list[list[str]], stream: Iterator[Outcome],
                 on_result: Callable[[Outcome], None] | None) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(runs)
        for outcome in stream:
            outcomes[outcome.index] = outcome
            if on_result is not None:
                on_result(outcome)
        return [o if o is not None else Outcome(i, runs[i], "cancelled") for i, o in enumerate(outcomes)]

    def _reset(self) -> None:
        self._cancel_local.clear()
        if self._cancel is not None:
            self._cancel.clear()
        if self._abort is not None:
            self._abort.clear()
        self.jobs = []

    def iter(self, runs: Sequence[Sequence[str]], out_dirs: Sequence[str | Path | None] | None = None,
             **plan_kw: Any) -> Iterator[Outcome]:
        """Yield outcomes as they finish: skipped runs first, then chunk by chunk. Closing the
        generator (or :meth:`cancel`) cancels what has not run."""
        self._reset()
        items, skipped = self.plan(runs, out_dirs, **plan_kw)
        yield from self.iter_planned(items, skipped, plan_kw.get("labels"))

    def iter_planned(self, items: list[_Item], skipped: list[Outcome],
                     labels: Sequence[str] | None = None) -> Iterator[Outcome]:
        for outcome in skipped:
            if self.progress:
                from .sweep import record_progress

                label = (labels[outcome.index] if labels else "") or " ".join(outcome.overrides)
                record_progress(Path(self.progress["sweep_dir"]), "skipped",
                                f"{label}: already finished (same config hash {outcome.config_hash})")
            yield outcome
        if not items:
            return
        ctx = self._context(items)
        size = self.chunk_size or default_chunk_size(len(items), self.n_jobs if self.executor == "local" else 1)
        chunks = chunked(items, size)
        if self.executor != "local":
            yield from self._iter_submitit(ctx, chunks)
        elif self._pool is None and (self.n_jobs == 1 or len(items) == 1):
            # in this process as in a worker (_run_chunk): Mesa logs every step at INFO, which the
            # job log and the console would otherwise get (120 lines a run with n_jobs=1, none with 2)
            logging.getLogger("MESA").setLevel(logging.WARNING)
            for chunk in chunks:
                for item in chunk:
                    if self._cancel_local.is_set():
                        return
                    yield _run_one(ctx, item)
        else:
            yield from self._iter_pool(ctx, chunks)

    def _iter_pool(self, ctx: _Context, chunks: list[list[_Item]]) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait

        pool = self._executor()
        futures = {pool.submit(_run_chunk, ctx, chunk) for chunk in chunks}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.cancelled():
                        continue
                    for outcome in fut.result():
                        if outcome.status != "cancelled":
                            yield outcome
                if self._cancel_local.is_set():
                    for fut in pending:
                        fut.cancel()
        except (KeyboardInterrupt, SystemExit):
            self._terminate()  # Ctrl-C: stop now; a killed run leaves no summary.json and re-runs next time
            raise
        finally:
            if self._pool is not None and any(not f.done() for f in futures):  # closed early: drop the rest
                self._cancel.set()
                for fut in futures:
                    fut.cancel()
                wait(futures)

    def _iter_submitit(self, ctx: _Context, chunks: list[list[_Item]]) -> Iterator[Outcome]:
        """One array task per chunk (submitit); outcomes yielded as tasks finish."""
        import submitit

        opts = self.submitit
        kind = "local" if self.executor == "submitit_local" else "slurm"
        executor = submitit.AutoExecutor(folder=opts.folder, cluster=kind)
        params: dict[str, Any] = {"timeout_min": opts.timeout_min, "cpus_per_task": opts.cpus_per_task,
                                  "mem_gb": opts.mem_gb, "tasks_per_node": 1, "nodes": 1, "name": opts.name}
        if kind == "slurm":
            params.update({"slurm_array_parallelism": opts.array_parallelism})
            for key in ("partition", "account", "qos"):
                if getattr(opts, key):
                    params[f"slurm_{key}"] = getattr(opts, key)
            if opts.setup:
                params["slurm_setup"] = list(opts.setup)
            if opts.additional_parameters:
                params["slurm_additional_parameters"] = dict(opts.additional_parameters)
        executor.update_parameters(**params)
        self.jobs = executor.map_array(_run_chunk, [ctx] * len(chunks), chunks)
        log.info("submitted %d array task(s) of up to %d run(s) each to %s (%s)", len(self.jobs),
                 max(len(c) for c in chunks), kind, opts.folder)
        pending = list(zip(self.jobs, chunks))
        while pending:
            still = []
            for job, chunk in pending:
                if self._cancel_local.is_set():
                    job.cancel(check=False)
                    continue
                if not job.done():
                    still.append((job, chunk))
                    continue
                try:
                    yield from job.result()
                except Exception as exc:  # noqa: BLE001 - the task died (time limit, node failure)
                    for item in chunk:
                        yield Outcome(item.index, list(item.overrides), "failed",
                                      Path(item.out_dir) if item.out_dir else None,
                                      error=f"{type(exc).__name__}: {_one_line(exc)}")
            pending = still
            if pending:
                time.sleep(0.5)


def run_batch(runs: Sequence[Sequence[str]], base: Sequence[str] | Any = (), n_jobs: int | None = 1,
              out_dirs: Sequence[str | Path | None] | None = None, **kw: Any) -> list[Outcome]:
    """One-shot helper: check every distinct override, run all, close the pool."""
    with BatchRunner(base, n_jobs, **kw) as runner:
        runner.check(runs)
        return runner.run(runs, out_dirs)
