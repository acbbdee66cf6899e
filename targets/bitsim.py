"""bitsim: the bit-accurate integer simulator of a bundle, batched over samples.

It runs the chip's step schedule (``schedule``) with the integer stages of ``fixed_point`` in the
bundle's widths (its target's), matching Lava 0.10.0's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc``
bit for bit in Lava's widths.

Two engines give the same records bit for bit: "reference", the numpy code of this module (the readable
specification and the oracle), and "compiled", the same schedule and stages as numba kernels
(``bitsim_compiled``, the optional extra "compiled"), several times faster. The default is "compiled"
where numba is installed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import fixed_point as fx
from . import schedule
from .backends import BackendUnavailable
from .bundle import Bundle, DenseConnection, LifPopulation
from .record import SpikeEvents, SpikeRecord
from .schedule import Arithmetic, NeuronStep

BACKEND = "bitsim"
COMPILED, REFERENCE = "compiled", "reference"
ENGINES = (COMPILED, REFERENCE)


@dataclass(frozen=True)
class LifState:
    """The per-sample state of one population: current, voltage (integers carried exactly in float64,
    see ``fixed_point``) and the fire-once latch."""

    u: np.ndarray
    v: np.ndarray
    fired: np.ndarray

    @classmethod
    def zeros(cls, num_samples: int, size: int) -> "LifState":
        return cls(np.zeros((num_samples, size)), np.zeros((num_samples, size)), np.zeros((num_samples, size), bool))


@dataclass(frozen=True)
class LifStep:
    state: LifState
    spikes: np.ndarray
    wrapped: int  # neurons whose current wrapped at 24 bits this step
    saturated: int  # neurons whose voltage saturated this step


def lif_step(widths: fx.Widths, pop: LifPopulation, state: LifState, activation: np.ndarray) -> LifStep:
    """One step of a LIF population in ``widths`` (a pure function of its parameters, state and input)."""
    u, wrapped = fx.integrate_current(widths, state.u, pop.du, activation)
    v, saturated = fx.integrate_voltage(widths, state.v, pop.dv, u, fx.effective_bias(pop.bias_mant, pop.bias_exp))
    if pop.fire_once:
        # A neuron that has fired is refractory for the rest of the run: v held at 0.
        v[state.fired] = 0
        if saturated is not None:
            saturated &= ~state.fired
    spikes = fx.fire(widths, v, pop.vth)
    if pop.fire_once:
        spikes &= ~state.fired
    v = fx.reset(widths, v, spikes, pop.vth, pop.reset)
    return LifStep(LifState(u, v, state.fired | spikes), spikes, fx.count(wrapped), fx.count(saturated))


def _init_state(pop: LifPopulation, num_samples: int) -> LifState:
    return LifState.zeros(num_samples, pop.size)


def _trace(state: LifState) -> dict[str, np.ndarray]:
    return {"u": state.u.astype(np.int32), "v": state.v.astype(np.int32)}


def _synapse(conn: DenseConnection, spikes: np.ndarray) -> np.ndarray:
    return fx.dense_activation(conn.weights, conn.weight_exp, spikes, conn.num_message_bits)


def integer_arithmetic(widths: fx.Widths) -> Arithmetic:
    """The schedule's stages in the chip's integer arithmetic, in ``widths``."""
    def neuron_step(pop: LifPopulation, state: LifState, activation: np.ndarray) -> NeuronStep:
        step = lif_step(widths, pop, state, activation)
        return NeuronStep(step.state, step.spikes,
                          events={"current_wraps": step.wrapped, "voltage_saturations": step.saturated})

    return Arithmetic(init_state=_init_state, neuron_step=neuron_step, synapse=_synapse,
                      activation_dtype=np.float64, trace=_trace)


def default_engine() -> str:
    """"compiled" where numba is installed, else "reference"."""
    return COMPILED if importlib.util.find_spec("numba") is not None else REFERENCE


def check_engine(engine: str) -> str:
    """``engine`` if it is one of ENGINES and can run here: ValueError for an unknown name, BackendUnavailable
    for "compiled" without numba."""
    if engine not in ENGINES:
        raise ValueError(f"unknown bitsim engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if engine == COMPILED and importlib.util.find_spec("numba") is None:
        raise BackendUnavailable("bitsim's compiled engine needs numba, the extra 'compiled' of snn-deploy "
                                 "(pip install 'snn-deploy[compiled]'); the reference engine runs without it")
    return engine


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False, batch_size: int = schedule.DEFAULT_BATCH_SIZE,
        progress: Callable[[int], None] | None = None, engine: str | None = None) -> SpikeRecord:
    """Run every sample of ``inputs`` through the bundle, in its widths; ``progress(n)`` is told of finished samples.

    ``engine``: "compiled" or "reference" (see the module doc); None takes ``default_engine()``. Asking for
    "compiled" without numba raises BackendUnavailable.
    """
    if check_engine(engine or default_engine()) == COMPILED:
        from . import bitsim_compiled
        spikes, counters, traces = bitsim_compiled.run(bundle, inputs, record_state=record_state,
                                                       batch_size=batch_size, progress=progress)
    else:
        spikes, counters, traces = schedule.run(bundle.network, integer_arithmetic(bundle.widths), inputs,
                                                bundle.timing.num_steps, record_state=record_state,
                                                batch_size=batch_size, progress=progress)
    return SpikeRecord(backend=BACKEND, bundle_checksum=bundle.checksum, num_samples=inputs.num_samples,
                       num_steps=bundle.timing.num_steps, spikes=spikes, counters=counters, traces=traces)
