"""Errors the project foresees: their message says what is wrong, where, and the fix.

They are Hydra's compact exceptions, so a run that raises one ends with its message alone, no
traceback (`HYDRA_FULL_ERROR=1` shows it), and exit code 1; in a multirun the job fails and the
sweep goes on. Any other exception is a bug and keeps its traceback.
"""

from hydra.errors import CompactHydraException


class ConfigError(ValueError, CompactHydraException):
    """A value or file that cannot work; the message names the key or file and the fix."""


class DivergedError(FloatingPointError, CompactHydraException):
    """Training met NaN or infinite values; the message names where and what to change."""


class Stopped(SystemExit):
    """A signal (Ctrl-C, SIGTERM) stopped training after a checkpoint; the message says how to
    resume. Not an error of the run: a sweep stops with it."""

    PREFIX = "Stopped by"
