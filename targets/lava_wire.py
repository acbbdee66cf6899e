"""What the ``lava`` and ``loihi2`` back ends and their Lava worker share: the worker's wire format.

The driver (``lava``, in this interpreter) and the worker (``lava_worker``, in Lava's) both import this
module and nothing of each other: the exchange files, the progress lines, the kinds of error a
failed worker reports, and the checks and messages both sides give.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends import BackendUnavailable
from .bundle import Bundle, BundleError
from .fixed_point import RESET_SUBTRACT
from .record import SpikeEvents

DEFAULT_BATCH_SIZE = 1024  # samples per Lava run: each run costs ~1 s to compile and start
PROGRESS_PREFIX = "snn-deploy-progress "  # the worker prints PROGRESS_PREFIX + N when N more samples are done

# A failed worker reports {"kind": ..., "message": ...}; the driver raises these kinds as themselves.
REPORTED_ERRORS: dict[str, type[Exception]] = {"BackendUnavailable": BackendUnavailable, "BundleError": BundleError,
                                               "ValueError": ValueError}


def check_inputs(bundle: Bundle, inputs: SpikeEvents) -> None:
    """The input must have the bundle's channels and at least its steps (later steps are ignored)."""
    net = bundle.network
    if inputs.size != net.input.size:
        raise ValueError(f"input has {inputs.size} channels; the bundle's input "
                         f"{net.input.name!r} has {net.input.size}")
    if inputs.num_steps < bundle.timing.num_steps:
        raise ValueError(f"input has {inputs.num_steps} steps; the bundle runs {bundle.timing.num_steps}")


def write_events(path: Path, events: SpikeEvents) -> None:
    np.savez(path, events=events.events,
             dims=np.array([events.num_samples, events.num_steps, events.size], np.int64))


def read_events(path: Path) -> SpikeEvents:
    with np.load(path, allow_pickle=False) as data:
        num_samples, num_steps, size = (int(d) for d in data["dims"])
        return SpikeEvents.from_arrays(*data["events"], num_samples=num_samples, num_steps=num_steps, size=size)


def hardware_unavailable_message(bundle: Bundle) -> str:
    """Why the loihi2 (hardware) back end cannot run here, and what to use instead."""
    message = ("the loihi2 back end runs on Loihi 2 hardware and needs Intel's lava-loihi extension, "
               "which only members of the Intel Neuromorphic Research Community (INRC) can get; "
               "--backend lava (Lava's bit-accurate CPU simulator) or --backend bitsim (this project's "
               "bit-accurate simulator) are the public equivalents and give the same spikes")
    populations = bundle.network.populations
    for kind, names in (("TTFS fire-once", [pop.name for pop in populations if pop.fire_once]),
                        ("subtractive-reset", [pop.name for pop in populations if pop.reset == RESET_SUBTRACT])):
        if names:
            message += (f". Note: the {kind} populations ({', '.join(names)}) need a custom "
                        "neuron model (microcode) on the real chip")
    return message
