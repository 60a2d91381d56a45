"""Hydra command lines: the override arguments, extra config folders, ``key=value`` splitting.

Shared by the CLI (start-up validation), sweep planning and the report, so each reads a
command line the same way.
"""

from __future__ import annotations

from typing import Any

_FLAGS_WITH_VALUE = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn",
                     "--experimental-rerun", "--cfg", "-c", "--package", "-p")


def command_overrides(argv: list[str]) -> list[str]:
    """The override arguments of a Hydra command line: flags and the values of flags that
    take one (``--config-dir DIR``) left out."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _FLAGS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def search_path(argv: list[str]) -> list[str]:
    """Extra config folders (``--config-dir DIR``, ``-cd DIR``, ``hydra.searchpath=[...]``) as a
    ``hydra.searchpath`` override, so prevalidation finds configs outside the package (e.g. a
    calibration written with ``dropout-sim calibrate --out DIR``)."""
    from pathlib import Path

    dirs: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(f"file://{Path(argv[i + 1]).expanduser().resolve()}")
        elif arg.startswith("--config-dir="):
            dirs.append(f"file://{Path(arg.split('=', 1)[1]).expanduser().resolve()}")
        elif arg.startswith("hydra.searchpath="):
            dirs += [d.strip() for d in arg.split("=", 1)[1].strip("[]").split(",") if d.strip()]
    return [f"hydra.searchpath=[{','.join(dirs)}]"] if dirs else []


def split_override(line: str) -> tuple[str, str]:
    """``+a.b=1`` -> (``a.b``, ``1``): the key without Hydra's ``+``/``++``/``~`` prefix."""
    key, _, value = line.partition("=")
    return key.lstrip("+~"), value


# --------------------------------------------------------------------------------------
# a config is data: refuse Hydra settings that run code or write outside the run folder
# --------------------------------------------------------------------------------------
SAFE_TARGET_PREFIXES = ("hydra._internal.core_plugins.", "hydra_plugins.")
"""Modules a launcher or sweeper ``_target_`` may come from (Hydra's own and installed plugins)."""
DEFAULT_LOG_FILE = "${hydra.runtime.output_dir}/${hydra.job.name}.log"
SAFE_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
UNSAFE_ENV = ("LD_", "DYLD_", "PYTHON", "PATH", "BASH_ENV", "ENV")


def unsafe_override(line: str) -> str | None:
    """Why an override line may not be used (it would make the config run code or write
    elsewhere), or None. Checks the key only, so sweeps and bad values are caught too."""
    key, _ = split_override(line)
    parts = key.split(".")
    if "_target_" in parts and not (key in ("hydra.launcher._target_", "hydra.sweeper._target_")):
        return f"{key}: a config may not name code to run (_target_); allowed: data values only"
    if key.startswith("hydra.callbacks") or key == "hydra/callbacks":
        return f"{key}: a config may not add Hydra callbacks (they run code); allowed: none"
    if key.startswith(("hydra.job_logging", "hydra.hydra_logging")) and parts[-1] in ("filename", "class", "()",
                                                                                       "stream"):
        return (f"{key}: a config may not choose log files, handler classes or streams (they write elsewhere or "
                "run code); allowed: Hydra's default logging (hydra/job_logging=disabled to turn it off)")
    return None


def unsafe_hydra_setting(hydra_cfg: Any) -> str | None:
    """Why a composed ``hydra`` config node would run code or write outside the run folder,
    or None. Sees what ``--config-dir`` files and config groups set, not only the command line."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(hydra_cfg, resolve=False)
    for name in (node.get("callbacks") or {}):
        return f"hydra.callbacks.{name}: a config may not add Hydra callbacks (they run code); allowed: none"
    for part in ("launcher", "sweeper"):
        target = str((node.get(part) or {}).get("_target_") or "")
        if target and not target.startswith(SAFE_TARGET_PREFIXES):
            return (f"hydra.{part}._target_ = {target!r}; allowed: a Hydra {part} plugin "
                    f"({' or '.join(p + '*' for p in SAFE_TARGET_PREFIXES)})")
    for part in ("job_logging", "hydra_logging"):
        problem = _unsafe_logging(node.get(part) or {}, f"hydra.{part}")
        if problem:
            return problem
    subdir = node.get("output_subdir")
    if subdir is not None and (str(subdir).startswith(("/", "~")) or ".." in str(subdir).split("/")):
        return f"hydra.output_subdir = {subdir!r} leaves the run folder; allowed: a relative folder name or null"
    for name in ((node.get("job") or {}).get("env_set") or {}):
        if str(name).upper().startswith(UNSAFE_ENV):
            return (f"hydra.job.env_set.{name}: a config may not set variables that load code; allowed: other "
                    "environment variables (e.g. OMP_NUM_THREADS)")
    found = _find_key(node, "_target_", "hydra", skip=("launcher", "sweeper"))
    if found:
        return f"{found}: a config may not name code to run (_target_); allowed: data values only"
    return None


def _unsafe_logging(cfg: dict, where: str) -> str | None:
    found = _find_key(cfg, "()", where)
    if found:
        return f"{found}: a logging factory runs code; allowed: Hydra's default logging"
    for kind in ("handlers", "formatters", "filters"):
        for name, spec in (cfg.get(kind) or {}).items():
            spec = spec or {}
            cls = str(spec.get("class") or "")
            if cls and not cls.startswith("logging."):
                return f"{where}.{kind}.{name}.class = {cls!r}; allowed: a class of Python's logging module"
            if "filename" in spec and spec["filename"] != DEFAULT_LOG_FILE:
                return (f"{where}.{kind}.{name}.filename = {spec['filename']!r} writes outside the run folder; "
                        f"allowed: {DEFAULT_LOG_FILE}")
            if "stream" in spec and spec["stream"] not in SAFE_STREAMS:
                return f"{where}.{kind}.{name}.stream = {spec['stream']!r}; allowed: {' or '.join(SAFE_STREAMS)}"
    return None


def _find_key(node: Any, key: str, path: str, skip: tuple = ()) -> str | None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in skip:
                continue
            if k == key:
                return f"{path}.{k}"
            found = _find_key(v, key, f"{path}.{k}")
            if found:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _find_key(v, key, f"{path}[{i}]")
            if found:
                return found
    return None
