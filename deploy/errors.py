"""Errors the user caused: bad input files, options or parameters.

The CLI prints their one-line message and exits with code 2; nothing else becomes exit 2 (an
unexpected exception is a bug in snn-deploy: exit 4 with its traceback). A missing optional dependency is the
installation's doing, not a bug: ``missing_extra`` names the extra that brings it.
"""

import importlib

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


# The modules each optional dependency of pyproject.toml ([project.optional-dependencies]) brings, by its extra.
EXTRAS = {"torch": ("torch",), "data": ("sklearn",), "report": ("matplotlib", "jinja2"),
          "onnx": ("onnx", "onnxruntime"), "events": ("tonic",), "compiled": ("numba",),
          "distributed": ("distributed",)}


def install_hint(extra: str) -> str:
    return f"pip install 'snn-deploy[{extra}]'"


def missing_extra(error: ImportError) -> DeployError | None:
    """The bad-input error for an import that failed because an extra is not installed; None for any other module
    (a module snn-deploy always has, missing, is a bug)."""
    module = (error.name or "").partition(".")[0]
    for extra, modules in EXTRAS.items():
        if module in modules:
            return DeployError(f"{module} is not installed; it comes with the extra '{extra}': {install_hint(extra)}")
    return None


def require_extra(extra: str, purpose: str) -> None:
    """Raise DeployError unless every module of ``extra`` imports: a check before work that would need it."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DeployError(f"{purpose} needs {' and '.join(missing)}, the extra '{extra}' ({install_hint(extra)})")
