"""Hydra command lines: the override arguments, extra config folders, ``key=value`` splitting.

Shared by the CLI (start-up validation), sweep planning and the report, so each reads a
command line the same way.
"""

from __future__ import annotations

_FLAGS_WITH_VALUE = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn",
                     "--experimental-rerun")


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
