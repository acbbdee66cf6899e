"""Back end ``loihi2``: the ``lava`` back end's network, run on a Loihi 2 chip with ``Loihi2HwCfg``.

That needs Intel's lava-loihi extension (given only to members of the Intel Neuromorphic Research
Community), so on most machines ``run`` raises ``BackendUnavailable`` saying so and naming the
public equivalents. The check runs in the Lava worker, where Lava is: without lava-loihi, Lava's
own run with ``Loihi2HwCfg`` fails with an unhelpful NameError, so the worker checks first.

A stock bundle (``compile --stock``) runs as Lava's own LIFReset and Dense processes, the same network as on the
CPU (``lava_worker.build_stock_network``). Untested here (no lava-loihi): the per-sample reset, the fire-once latch and the subtractive reset of
the ``lava`` back end's neuron processes exist only as Python process models, which ``Loihi2HwCfg``
runs on the host CPU; on the chip's neuro-cores they need custom neuron microcode.
"""

from __future__ import annotations

from .backends import BackendUnavailable
from .bundle import Bundle
from .lava import ProgressCallback, run_in_lava, worker_python
from .lava_wire import DEFAULT_BATCH_SIZE, hardware_unavailable_message
from .record import SpikeEvents, SpikeRecord

BACKEND = "loihi2"


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressCallback | None = None) -> SpikeRecord:
    """Run every sample of ``inputs`` through the bundle on Loihi 2 hardware (see the module doc)."""
    try:
        worker_python()
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"{hardware_unavailable_message(bundle)}. Besides, {exc}") from None
    return run_in_lava(bundle, inputs, hardware=True, record_state=record_state,
                       batch_size=batch_size, progress=progress)
