"""Command line: ``dropout-sim`` / ``python -m dropout_sim``.

    dropout-sim [hydra overrides]          one run (or a sweep with -m), results in the run folder
    dropout-sim regime=colocated cohort.size=10000 seed=7
    dropout-sim -m regime=siloed,nav_pilot,colocated 'replicate=range(0,20)' hydra.launcher.n_jobs=2
    dropout-sim report multirun/<sweep>    tables, summary and figures of a sweep folder

Configs are the packaged ``dropout_sim.configs`` (the repository's ``configs/`` folder), so
the command works from any directory and after a non-editable install. A bad value stops
the run at start-up with one line naming the key and the allowed range (exit code 2),
before anything is written.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError, fail
from ..runs.overrides import command_overrides, search_path
from ..schema import register_configs


def _one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf errors span lines (what failed, then why): keep both on one line."""
    text = str(exc) + ("\n" + str(exc.__cause__) if exc.__cause__ is not None else "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("full_key:", "object_type", "Set the environment"))]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def prevalidate(argv: list[str]) -> "object | None":
    """Compose and validate the config before Hydra creates any output folder.

    Each distinct ``key=value`` of a sweep is checked once through the schema, and each config
    group value composed once (:meth:`dropout_sim.runs.batch.Composer.check`): the runs checked
    grow with the number of values, not their combinations. Each job is validated again when it
    starts (a combination that breaks a cross-field rule is recorded as a failed run). Returns the
    Composer (its compositions are reused by the batch launcher).
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..runs.batch import Composer

    overrides = [a for a in command_overrides(argv) if not a.startswith("hydra")]
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(overrides)
        first: list[str] = []
        others: list[tuple[int, list[str]]] = []
        for ov in parsed:
            if ov.is_sweep_override():
                values = [f"{ov.get_key_element()}={val}" for val in ov.sweep_string_iterator()]
                others.append((len(first), values[1:]))
                first.append(values[0])
            else:
                first.append(ov.input_line)
        runs = [first] + [first[:i] + [v] + first[i + 1:] for i, values in others for v in values]
        composer = Composer(search_path(argv))
        composer.check(runs)
        return composer
    except ConfigError as exc:
        fail(str(exc))
    except (HydraException, OmegaConfBaseException, ValueError, KeyError) as exc:
        fail(_one_line(exc))


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
    composer = prevalidate(argv)
    # the batch launcher (same process) takes over these compositions, unless the command line
    # picks another primary config than the one the check composed
    primary = {"--config-path", "-cp", "--config-name", "-cn"}
    share_compositions(None if any(a.split("=", 1)[0] in primary for a in argv) else composer)
    plan = sweep.plan_sweep(argv)
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
}


def main(argv: list[str] | None = None) -> None:
    """Entry point: a subcommand (``report``, ``calibrate``, ...) or a Hydra run/sweep."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "version"):
        from .. import __version__

        print(__version__)
        return
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        code = module.main(argv[1:])
        raise SystemExit(code or 0)
    run_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
