"""Errors the user caused: bad input files, options or parameters.

The CLI prints their one-line message and exits with code 2; nothing else becomes exit 2.
"""


class DeployError(Exception):
    """Bad input: a missing or malformed file, an out-of-range parameter, an unknown name."""
