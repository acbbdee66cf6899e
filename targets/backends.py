"""Back ends share one interface: ``run(bundle, inputs, *, record_state, batch_size, progress)``
returning a ``SpikeRecord``. Adding a back end means adding a module here, not touching the pipeline.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module in this package that defines run(); imported lazily (lava is optional).
BACKENDS = {
    "bitsim": "bitsim",
    "lava": "lava",
    "loihi2": "loihi2",
}


class BackendUnavailable(RuntimeError):
    """A back end that cannot run on this machine; the message says why and what to use instead."""


def get(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ValueError(f"unknown back end {name!r}; choose one of: {', '.join(BACKENDS)}")
    return importlib.import_module(f".{BACKENDS[name]}", __package__)
