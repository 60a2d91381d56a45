"""Hydra command lines: the override arguments, extra config folders, ``key=value`` splitting.

Shared by the CLI (start-up validation), sweep planning and the report, so each reads a
command line the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

_FLAGS_WITH_VALUE = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn",
                     "--experimental-rerun", "--cfg", "-c", "--package", "-p")


_INFO_FLAGS = ("--info", "-i")
_INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
"""``--info [TOPIC]``: Hydra's optional value (``dropout-sim --info defaults``)."""


def _override_positions(argv: Sequence[str]) -> list[int]:
    """Indices of the override arguments of a Hydra command line (not flags, not their values)."""
    out: list[int] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in _FLAGS_WITH_VALUE:
            skip = True
        elif arg in _INFO_FLAGS:
            skip = i + 1 < len(argv) and argv[i + 1] in _INFO_TOPICS
        elif not arg.startswith("-"):
            out.append(i)
    return out


def command_overrides(argv: list[str]) -> list[str]:
    """The override arguments of a Hydra command line: flags and the values of flags that
    take one (``--config-dir DIR``, ``--info defaults``) left out."""
    return [argv[i] for i in _override_positions(argv)]


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
# posterior=<name or path>: a config group choice or a path
# --------------------------------------------------------------------------------------
POSTERIOR_KEY = "posterior"
POSTERIOR_PATH_KEY = "posterior_path"
"""The plain config key a path-valued ``posterior=`` override becomes (see :func:`normalize_posterior`)."""


def search_folders(lines: Sequence[str]) -> list[Path]:
    """The local folders of ``hydra.searchpath=[...]`` overrides (``file://DIR`` or ``DIR``)."""
    out: list[Path] = []
    for line in lines:
        if not str(line).startswith("hydra.searchpath="):
            continue
        for item in str(line).split("=", 1)[1].strip("[]").split(","):
            item = item.strip().strip("'\"")
            if item.startswith("file://"):
                out.append(Path(item[len("file://"):]).expanduser())
            elif item and "://" not in item:
                out.append(Path(item).expanduser())
    return out


def normalize_posterior(lines: Sequence[str], search: Sequence[str] = (),
                        is_option: Callable[[str], bool] | None = None) -> list[str]:
    """Override lines with every path-valued ``posterior=`` rewritten to ``posterior_path=``.

    ``configs/posterior/`` is a Hydra config group, so Hydra reads ``posterior=<value>`` as the
    choice of the option ``posterior/<value>.yaml``. A value that names an option stays such a
    choice (``posterior=section9_abc``); any other value is a path to a ``particles.csv`` or its
    folder (``posterior=~/cal/county``, ``posterior=./fit``) and becomes the plain key
    ``posterior_path=<value>``, which :func:`dropout_sim.schema.to_config` moves into
    ``posterior`` (a value that is neither is refused there in one line, listing the shipped
    names). A sweep (``posterior=a,b``) stays a group sweep when every value is an option and
    becomes ``posterior_path=a,b`` otherwise (``posterior_path`` takes shipped names as well).
    ``posterior=null`` becomes ``~posterior`` (no posterior). Lines that are not ``posterior=``,
    or that Hydra cannot parse, are returned as they are; the function is idempotent.

    ``is_option(name)`` says whether ``name`` is an option of the group; by default the
    packaged options and those of the folders in ``hydra.searchpath=[...]`` lines of ``lines``
    and ``search`` (``--config-dir DIR`` as :func:`search_path` gives it).
    """
    lines = [str(x) for x in lines]
    todo = [i for i, ln in enumerate(lines) if _posterior_key(ln)]
    if not todo:
        return lines
    if is_option is None:
        from ..posterior import group_options

        options = group_options(tuple(search_folders([*lines, *search])))
        is_option = options.__contains__
    out = list(lines)
    for i in todo:
        out[i] = _normalize_one(lines[i], is_option)
    return out


def _posterior_key(line: str) -> bool:
    key = line.partition("=")[0]
    return "=" in line and key.lstrip("+") == POSTERIOR_KEY


def _normalize_one(line: str, is_option: Callable[[str], bool]) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    key, _, text = line.partition("=")
    parser = OverridesParser.create()
    try:
        ov = parser.parse_override(line)
    except Exception:  # noqa: BLE001 - e.g. an unquoted '~/fit': quote the paths, or leave it to Hydra
        text = _quoted(text)
        try:
            ov = parser.parse_override(f"{key}={text}")
        except Exception:  # noqa: BLE001
            return line
    if ov.is_sweep_override():
        try:
            values = list(ov.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - a range or interval: not a posterior; Hydra says so
            return line
    else:
        value = ov.value()
        if value is None:
            return f"~{POSTERIOR_KEY}"
        values = [value]
    if all(isinstance(v, str) and v and is_option(v) for v in values) and key == POSTERIOR_KEY:
        return line
    return f"{POSTERIOR_PATH_KEY}={text}"


def _quoted(text: str) -> str:
    """``~/a,./b`` -> ``'~/a','./b'``: each comma-separated value quoted unless it already is."""
    parts = []
    for part in text.split(","):
        part = part.strip()
        if part and part[0] not in "'\"":
            part = "'" + part.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(part)
    return ",".join(parts)


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """A Hydra command line with its override arguments through :func:`normalize_posterior`
    (options of ``--config-dir`` folders count as names); flags and their values unchanged."""
    argv = list(argv)
    positions = _override_positions(argv)
    if not any(_posterior_key(argv[i]) for i in positions):
        return argv
    new = normalize_posterior([argv[i] for i in positions], search=search_path(argv))
    for i, line in zip(positions, new):
        argv[i] = line
    return argv


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
