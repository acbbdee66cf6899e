"""Errors the user caused: bad input files, options or parameters.

The CLI prints their one-line message and exits with code 2; nothing else becomes exit 2 (an
unexpected exception is a bug in snn-deploy: exit 4 with its traceback).
"""

from ..targets.backends import BackendUnavailable
from ..targets.bundle import BundleError
from ..targets.description import TargetError
from ..targets.files import OutputError
from ..targets.record import RecordError


class DeployError(Exception):
    """Bad input: a missing or malformed file, an out-of-range parameter, an unknown name."""


# Every exception that means bad input: deploy/'s own, the targets' ValueError subclasses (a bundle,
# target description, spike record or output file that cannot be used), and a back end this
# machine cannot run.
BAD_INPUT_ERRORS = (DeployError, BundleError, TargetError, RecordError, OutputError, BackendUnavailable)
