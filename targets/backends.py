"""Back ends share one interface: ``run(bundle, inputs, *, record_state, batch_size, progress)``
returning a ``SpikeRecord``. Adding a back end means adding a module here, not touching the pipeline.

A bundle runs only on the back ends its target lists (``Bundle.backends``, from the description's
``backends`` key): ``get(name, bundle)`` is the one check.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .bundle import Bundle, BundleError

# name -> module in this package that defines run(); imported lazily (lava is optional).
BACKENDS = {
    "bitsim": "bitsim",
    "lava": "lava",
    "loihi2": "loihi2",
}


class BackendUnavailable(RuntimeError):
    """A back end that cannot run on this machine; the message says why and what to use instead."""


def get(name: str, bundle: Bundle | None = None) -> ModuleType:
    """The back end called ``name``; with a bundle, one that the bundle's target lists (``check_runs``)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown back end {name!r}; choose one of: {', '.join(BACKENDS)}")
    if bundle is not None:
        check_runs(name, bundle)
    return importlib.import_module(f".{BACKENDS[name]}", __package__)


def check_runs(name: str, bundle: Bundle) -> None:
    """Raise BundleError unless the bundle's target lists back end ``name``."""
    if name not in bundle.backends:
        raise BundleError(f"the {bundle.target} bundle runs on {', '.join(bundle.backends)}; its target does not "
                          f"list {name}")
