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
