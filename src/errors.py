"""The error for input a user can fix: a config value, a command-line argument, a file."""


class ConfigError(ValueError):
    """A value or file that cannot work; the message names the key or file and the fix."""
