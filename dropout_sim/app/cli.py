"""Command line: ``dropout-sim`` / ``python -m dropout_sim``.

    dropout-sim [hydra overrides]          one run (or a sweep with -m), results in the run folder
    dropout-sim regime=colocated cohort.size=10000 seed=7
    dropout-sim -m regime=siloed,nav_pilot,colocated 'replicate=range(0,20)' hydra.launcher.n_jobs=2
    dropout-sim report multirun/<sweep>    tables, summary and figures of a sweep folder
    dropout-sim report multirun/<sweep> --store DIR    also append its tables to a results store
    dropout-sim query "<SQL>" [--store DIR]            SQL (DuckDB) across the sweeps of the store
    dropout-sim dashboard [--port P] [--no-browser]   the planner's page in the browser

Configs are the packaged ``dropout_sim.configs`` (the repository's ``configs/`` folder), so
the command works from any directory and after a non-editable install. A bad value stops
the run at start-up with one line naming the key and the allowed range (exit code 2),
before anything is written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, fail, one_line
from ..runs.overrides import command_overrides, normalize_argv, normalize_posterior, search_path
from ..schema import register_configs


_one_line = one_line


@dataclass
class StartUpCheck:
    """What the start-up check composed, for the rest of the command to reuse."""

    composer: Any
    """the :class:`~dropout_sim.runs.batch.Composer` of the task configs (one composition per
    config-group combination checked)"""
    hydra_cfg: Any
    """the ``hydra`` section composed with the command's non-sweep overrides"""


def prevalidate(argv: list[str]) -> StartUpCheck:
    """Compose and validate the config before Hydra creates any output folder.

    Every (key, value) of a sweep is checked once (not the combinations): the config of the
    first value of every key, then each other value of each key in that config. Hydra
    settings that would run code or write outside the run folder are refused, from the
    command line and from ``--config-dir`` files alike. A run that would not fit in memory
    is refused. Each job is validated again when it starts. Returns what it composed: the
    sweep's plan reads the hydra section, and the batch launcher in this process takes the task
    compositions over instead of composing them again.
    """
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _prevalidate(argv)
    except ConfigError as exc:
        fail(str(exc))
    except (HydraException, OmegaConfBaseException, yaml.YAMLError, ValueError, KeyError, OSError) as exc:
        fail(_one_line(exc))


def _prevalidate(argv: list[str]) -> StartUpCheck:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig, ListConfig, OmegaConf

    from ..runs.api import check_memory, compose_dictconfig
    from ..runs.batch import Composer
    from ..runs.overrides import unsafe_hydra_setting, unsafe_override
    from ..schema import to_config

    argv = normalize_argv(argv)
    lines = command_overrides(argv)
    for line in lines:
        problem = unsafe_override(line)
        if problem:
            raise ConfigError(problem)
    parsed = OverridesParser.create().parse_overrides(lines)
    extra = search_path(argv)
    plain = [ov.input_line for ov in parsed if not ov.is_sweep_override()]
    hydra_cfg = compose_dictconfig(extra + plain, return_hydra_config=True).hydra
    problem = unsafe_hydra_setting(hydra_cfg)
    if problem:
        raise ConfigError(problem)
    _check_output_folder(hydra_cfg, argv)
    own = _hydra_overrides(parsed, argv, hydra_cfg)

    parsed = [ov for ov in parsed if not ov.get_key_element().startswith("hydra")]
    # a sweep defined in a config (hydra.sweeper.params, e.g. an experiment file): its values too
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None) if sweep_requested(argv, hydra_cfg) else None
    if params:
        given = {ov.get_key_element().lstrip("+~") for ov in parsed}
        extra_lines = [f"{k}={v}" for k, v in OmegaConf.to_container(params).items() if str(k).lstrip("+~") not in given]
        extra_lines = normalize_posterior(extra_lines, search=extra)  # the launcher reads them so too
        parsed = OverridesParser.create().parse_overrides(extra_lines) + parsed

    def line(ov, value) -> str:
        return f"{ov.get_key_element()}={_encode(value)}"

    # task configs through the batch runner's Composer: Hydra once per config-group combination,
    # values applied to it (what every run of the sweep does); the launcher reuses its compositions,
    # hydra sections included: composed with the Hydra overrides the sweep's own config will record
    # (the command's, then the sweep folder run_main pins), as the job Hydra will run
    composer = Composer(extra, hydra=own, job_name=_job_name())

    def compose_task(lines: list[str]):
        groups, values = composer.split(lines)
        return composer.job_node(composer.combo(groups), values)

    sweeps = {i: list(ov.sweep_iterator()) for i, ov in enumerate(parsed) if ov.is_sweep_override()}
    first = [line(ov, sweeps[i][0]) if i in sweeps else ov.input_line for i, ov in enumerate(parsed)]
    base = compose_task(first)
    at_once = _parallel_runs(hydra_cfg) if sweep_requested(argv, hydra_cfg) else 1
    check_memory(to_config(base), at_once=at_once)
    for i, values in sweeps.items():
        ov = parsed[i]
        key = ov.get_key_element().lstrip("+~")
        node = OmegaConf.select(base, key, default=None, throw_on_missing=False)
        is_value = ov.get_key_element()[0] not in "+~" and key in _leaf_keys(base) and \
            not isinstance(node, (DictConfig, ListConfig))
        for value in values[1:]:
            if is_value:  # a plain value: set it in the composed config (fast: no composition)
                cfg = base.copy()
                OmegaConf.update(cfg, key, value, merge=False)
            else:  # a config group option or an added key: compose
                cfg = compose_task([*first[:i], line(ov, value), *first[i + 1:]])
            check_memory(to_config(cfg), key if key.startswith("cohort") else "cohort.size", at_once)
    return StartUpCheck(composer, hydra_cfg)


def _hydra_overrides(parsed: list, argv: list[str], hydra_cfg) -> list[str]:
    """The Hydra overrides (``hydra.*``, ``hydra/...``) Hydra will compose a sweep's jobs with:
    the command line's, the sweep folder :func:`~dropout_sim.runs.sweep.prepare_sweep` pins, and the
    ``hydra.mode=MULTIRUN`` Hydra adds for ``-m`` when the configs do not set that mode. (Should
    this miss, the launcher composes the jobs' hydra sections itself.)"""
    from omegaconf import OmegaConf

    from ..runs.sweep import is_multirun_flag, pin_sweep_dir

    lines = [ov.input_line for ov in parsed if ov.is_hydra_override() and not ov.is_sweep_override()]
    if sweep_requested(argv, hydra_cfg):
        try:
            lines = pin_sweep_dir(lines, Path(str(hydra_cfg.sweep.dir)))
        except Exception:  # noqa: BLE001 - a folder named by job values: the launcher composes the sections
            pass
        if is_multirun_flag(argv) and not str(OmegaConf.select(hydra_cfg, "mode")).endswith("MULTIRUN"):
            lines.append("hydra.mode=MULTIRUN")
    return lines


def _job_name() -> str:
    """``hydra.job.name`` of the jobs ``run_main``'s Hydra application runs (Hydra's rule)."""
    from hydra._internal.utils import detect_calling_file_or_module_from_task_function, detect_task_name

    return detect_task_name(*detect_calling_file_or_module_from_task_function(_task))


def _parallel_runs(hydra_cfg) -> int:
    """Runs a sweep's launcher holds in memory at once on this machine (joblib's n_jobs)."""
    import os

    from omegaconf import OmegaConf

    if "joblib" not in str(OmegaConf.select(hydra_cfg, "launcher._target_", default="")).lower():
        return 1
    n = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1)
    cores = os.cpu_count() or 1
    if not isinstance(n, int) or n == 0:
        return 1
    return max(1, min(cores, n) if n > 0 else cores + 1 + n)


def sweep_requested(argv: list[str], hydra_cfg) -> bool:
    """A multirun: ``-m`` on the command line or ``hydra.mode: MULTIRUN`` in a config."""
    from omegaconf import OmegaConf

    from ..runs.sweep import is_multirun_flag

    return is_multirun_flag(argv) or str(OmegaConf.select(hydra_cfg, "mode")).endswith("MULTIRUN")


def _check_output_folder(hydra_cfg, argv: list[str]) -> None:
    """Refuse an output folder that cannot be written (one line, before Hydra creates it)."""
    from omegaconf import OmegaConf

    from ..runs.sweep import folder_problem

    key = "hydra.sweep.dir" if sweep_requested(argv, hydra_cfg) else "hydra.run.dir"
    try:
        folder = str(OmegaConf.select(hydra_cfg, key[len("hydra."):]))
    except Exception:  # noqa: BLE001 - a folder named by job values is only known per job
        return
    problem = folder_problem(Path(folder))
    if problem:
        raise ConfigError(f"{key} = {folder}: cannot write it ({problem}); allowed: a writable folder")


def _leaf_keys(cfg) -> set[str]:
    from omegaconf import DictConfig

    out: set[str] = set()

    def walk(node, prefix):
        for k in node.keys():
            v = node._get_node(k)
            if isinstance(v, DictConfig):
                walk(v, f"{prefix}{k}.")
            else:
                out.add(f"{prefix}{k}")

    walk(cfg, "")
    return out


def _encode(value) -> str:
    """A swept value back as override text (``None`` -> null, strings quoted when needed)."""
    from hydra.core.override_parser.types import Transformer

    return Transformer.encode(value)


def _task(cfg) -> dict | None:
    """The Hydra job (one run of a run or a sweep): see :func:`dropout_sim.runs.sweep.run_task`.

    A module-level function so every launcher (joblib, submitit) can pickle it by name.
    """
    from ..runs.sweep import run_task

    return run_task(cfg)


def run_main(argv: list[str]) -> None:
    """The Hydra application (run or multirun) on ``argv``.

    A multirun gets a progress line per job, skips runs already finished with the same
    config, records failed runs and exits with code 1 at the end if any failed.
    """
    import hydra

    from ..runs import sweep
    from ..runs.api import CONFIG_MODULE, CONFIG_NAME
    from ..runs.batch import share_compositions

    register_configs()
    # posterior=<path> is not a choice of the config group configs/posterior/: Hydra gets it as
    # posterior_path=<path> (posterior=<name> stays the group choice)
    argv = normalize_argv(argv)
    checked = prevalidate(argv)
    # the plan and the batch launcher (same process) take over the check's compositions, unless
    # the command line picks another primary config than the one the check composed
    primary = {"--config-path", "-cp", "--config-name", "-cn"}
    same = not any(a.split("=", 1)[0] in primary for a in argv)
    share_compositions(checked.composer if same else None)
    plan = sweep.plan_sweep(argv, checked.hydra_cfg if same else None)
    if plan is not None:
        argv = sweep.prepare_sweep(argv, plan)
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME, version_base="1.3")(_task)()
    if plan is not None:
        code = sweep.finish_sweep(plan)
        if code:
            raise SystemExit(code)


SUBCOMMANDS = {
    # name: (module, help); each module has main(argv: list[str]) -> int | None
    "report": ("dropout_sim.analysis.report", "gather a sweep folder into tables and figures"),
    "calibrate": ("dropout_sim.analysis.calibrate", "fit parameters to calibration targets"),
    "validate": ("dropout_sim.analysis.validation", "print the pattern and calibration checks"),
    "query": ("dropout_sim.analysis.store", "SQL across the sweeps of a results store (extra: store)"),
    "dashboard": ("dropout_sim.app.dashboard", "the planner's dashboard in the browser (extra: dashboard)"),
    "sensitivity": ("dropout_sim.analysis.sensitivity", "Morris / Sobol sensitivity over the plausible ranges"),
}


def main(argv: list[str] | None = None) -> None:
    """Entry point: a subcommand (``report``, ``calibrate``, ...) or a Hydra run/sweep.

    Ctrl-C ends with one line and exit code 130; a closed pipe (``dropout-sim report DIR |
    head``) ends quietly; neither prints a traceback.
    """
    try:
        _main(argv)
    except KeyboardInterrupt:
        print("dropout-sim: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise SystemExit(141) from None
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left: Python would complain at exit
            _quiet_stdout()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None = None) -> None:
    import os
    import shlex

    from ..runs.results import ENV_COMMAND

    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ[ENV_COMMAND] = shlex.join(["dropout-sim", *argv])  # provenance of every run it starts
    if argv and argv[0] in ("--version", "version"):
        from .. import __version__

        print(__version__)
        return
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        try:
            code = module.main(argv[1:])
        except ConfigError as exc:  # refused after the subcommand's own start-up checks: one line, exit 2
            fail(str(exc), f"dropout-sim {argv[0]}")
        raise SystemExit(code or 0)
    run_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
