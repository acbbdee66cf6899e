"""Back end ``loihi2``: the ``lava`` back end's network, run on a Loihi 2 chip with ``Loihi2HwCfg``.

That needs Intel's lava-loihi extension (given only to members of the Intel Neuromorphic Research
Community), so on most machines ``run`` raises ``BackendUnavailable`` saying so and naming the
public equivalents. The check runs in the Lava worker, where Lava is: without lava-loihi, Lava's
own run with ``Loihi2HwCfg`` fails with an unhelpful NameError, so the worker checks first.

Untested here (no lava-loihi): the per-sample reset, the fire-once latch and the subtractive reset of
the ``lava`` back end's neuron processes exist only as Python process models, which ``Loihi2HwCfg``
runs on the host CPU; on the chip's neuro-cores they need custom neuron microcode.
"""

from __future__ import annotations

from .backends import BackendUnavailable
from .bundle import Bundle
from .fixed_point import RESET_SUBTRACT
from .lava import DEFAULT_BATCH_SIZE, ProgressCallback, run_in_lava, worker_python
from .record import SpikeEvents, SpikeRecord

BACKEND = "loihi2"


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressCallback | None = None) -> SpikeRecord:
    """Run every sample of ``inputs`` through the bundle on Loihi 2 hardware (see the module doc)."""
    try:
        worker_python()
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"{unavailable_message(bundle)}. Besides, {exc}") from None
    return run_in_lava(bundle, inputs, hardware=True, record_state=record_state,
                       batch_size=batch_size, progress=progress)


def unavailable_message(bundle: Bundle) -> str:
    """Why the hardware back end cannot run here, and what to use instead."""
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
