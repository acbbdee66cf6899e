"""The discrete reference: the chip's dynamics and step schedule, as bitsim runs them, in float64 and
unquantized (see ``stages.discretize`` for the equations). discrete -> chip is the quantization
error of a deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...targets import schedule
from ...targets.bitsim import COMPILED, check_engine, default_engine
from ...targets.bundle import InputLayer, split_by_delay
from ...targets.record import SpikeEvents
from ...targets.schedule import Arithmetic, NeuronStep
from ...targets.spikes import spike_product
from ..artifacts.discrete import DiscreteNetwork, Discretization


@dataclass(frozen=True)
class FloatPopulation:
    name: str
    size: int
    disc: Discretization

    @property
    def readout(self) -> bool:
        """A readout's state is recorded on every step (``schedule.recorded``): its membrane is the output."""
        return self.disc.readout


@dataclass(frozen=True)
class FloatConnection:
    source: str
    target: str
    gain: np.ndarray
    delays: np.ndarray | None = None  # per synapse, in steps (None: none delayed)

    def delay_groups(self) -> list[tuple[int, "FloatConnection"]]:
        return [(delay, FloatConnection(self.source, self.target, gain))
                for delay, gain in split_by_delay(self.gain, self.delays)]


@dataclass(frozen=True)
class FloatChipNetwork:
    input: InputLayer
    populations: tuple[FloatPopulation, ...]
    connections: tuple[FloatConnection, ...]


@dataclass(frozen=True)
class FloatState:
    u: np.ndarray
    v: np.ndarray
    fired: np.ndarray


def _init_state(pop: FloatPopulation, num_samples: int) -> FloatState:
    zeros = np.zeros((num_samples, pop.size))
    return FloatState(zeros, zeros.copy(), np.zeros((num_samples, pop.size), bool))


def float_lif_step(pop: FloatPopulation, state: FloatState, activation: np.ndarray) -> NeuronStep:
    """u' = a_u u + a;  v' = a_v v + u' + c;  spike where v' > theta; then reset."""
    d = pop.disc
    u = d.alpha_u * state.u + activation
    v = d.alpha_v * state.v + u + d.drive
    if d.fire_once:
        v = np.where(state.fired, 0.0, v)
    spikes = v > d.threshold
    if d.fire_once:
        spikes &= ~state.fired
    v = np.where(spikes, v - d.threshold if d.reset == "subtract" else 0.0, v)
    return NeuronStep(FloatState(u, v, state.fired | spikes), spikes)


def _synapse(conn: FloatConnection, spikes: np.ndarray) -> np.ndarray:
    return spike_product(conn.gain, spikes)


def _trace(state: FloatState) -> dict[str, np.ndarray]:
    return {"u": state.u, "v": state.v}


FLOAT_ARITHMETIC = Arithmetic(init_state=_init_state, neuron_step=float_lif_step, synapse=_synapse,
                              activation_dtype=np.float64, trace=_trace)


def _compiled_batch(network, arithmetic: Arithmetic, input_raster: np.ndarray, num_steps: int,
                    record_state: bool = False) -> schedule.BatchResult:
    """``schedule.run_batch`` with these stages as numba kernels (``discrete_compiled``); a network with delayed
    synapses runs the numpy stages (the kernels deliver every block one step later only)."""
    if any(conn.delays is not None for conn in network.connections):
        return schedule.run_batch(network, arithmetic, input_raster, num_steps, record_state)
    from . import discrete_compiled

    return discrete_compiled.run_batch(network, arithmetic, input_raster, num_steps, record_state)


# The same stages, a batch run by numba kernels: the same records bit for bit (tests/test_reference.py).
COMPILED_FLOAT_ARITHMETIC = replace(FLOAT_ARITHMETIC, batch=_compiled_batch)


def arithmetic(engine: str | None = None) -> Arithmetic:
    """The float stages run by ``engine`` (bitsim's names: "compiled" where numba is installed, the default, or
    "reference", the numpy stages above)."""
    return COMPILED_FLOAT_ARITHMETIC if check_engine(engine or default_engine()) == COMPILED else FLOAT_ARITHMETIC


def chip_network(discrete: DiscreteNetwork) -> FloatChipNetwork:
    """The discrete network laid out as the chip's populations and connections, for the step schedule."""
    return FloatChipNetwork(
        input=InputLayer(discrete.input_name, discrete.input_size),
        populations=tuple(FloatPopulation(d.name, d.size, d) for d in discrete.populations),
        connections=tuple(FloatConnection(source, d.name, gain, d.delay_from(source)) for d in discrete.populations
                          for source, gain in d.inputs))


def simulate(discrete: DiscreteNetwork, inputs: SpikeEvents, num_steps: int,
             record_state: bool = False, engine: str | None = None) -> dict[str, SpikeEvents]:
    """Spikes of every population of the float discrete-time simulation; ``engine`` as ``arithmetic``."""
    spikes, _, _ = run(discrete, inputs, num_steps, record_state=record_state, engine=engine)
    return spikes


def run(discrete: DiscreteNetwork, inputs: SpikeEvents, num_steps: int, *, record_state: bool = False,
        engine: str | None = None) -> tuple[dict, dict, dict]:
    """(spikes, counters, traces) of the float discrete-time simulation, as ``schedule.run`` returns them: the
    traces hold every population's u and v with ``record_state``, and always a readout's, in float64."""
    return schedule.run(chip_network(discrete), arithmetic(engine), inputs, num_steps, record_state=record_state)
