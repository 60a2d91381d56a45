"""Errors every layer may raise, and the one-line exit every command uses for bad input.

A bad input (config value, command argument, input file) stops a command with one line on
stderr naming what is wrong and what is allowed, and exit code 2 (:data:`EXIT_BAD_INPUT`),
before anything is written.
"""

from __future__ import annotations

import sys
from typing import NoReturn

EXIT_BAD_INPUT = 2


class ConfigError(ValueError):
    """A configuration value or input outside its allowed range; the message is one line."""


def fail(message: str, prog: str = "dropout-sim") -> NoReturn:
    """Print ``<prog>: error: <message>`` on stderr and exit with code 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def one_line(exc: BaseException) -> str:
    """A Hydra/OmegaConf error (what failed, then why, then the search path) or a YAML syntax
    error (file, line, problem) on one line."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # yaml.MarkedYAMLError
        problem = getattr(exc, "problem", None) or type(exc).__name__
        return f"{mark.name}: line {mark.line + 1}: YAML syntax error ({problem}); allowed: valid YAML"
    text = str(exc) + ("\n" + str(exc.__cause__) if exc.__cause__ is not None else "")
    text = text.split("Config search path:")[0]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("full_key:", "object_type", "Set the environment"))]
    return " ".join(lines[:3]) if lines else type(exc).__name__
