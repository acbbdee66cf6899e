"""The discrete reference: the chip's dynamics and step schedule, as bitsim runs them, in float64 and
unquantized (see ``stages.discretize`` for the equations). discrete -> chip is the quantization
error of a deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...targets import schedule
from ...targets.bundle import InputLayer
from ...targets.record import SpikeEvents
from ...targets.schedule import Arithmetic, NeuronStep
from ...targets.spikes import spike_product
from ..artifacts.discrete import DiscreteNetwork, Discretization


@dataclass(frozen=True)
class FloatPopulation:
    name: str
    size: int
    disc: Discretization


@dataclass(frozen=True)
class FloatConnection:
    source: str
    target: str
    gain: np.ndarray


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


FLOAT_ARITHMETIC = Arithmetic(init_state=_init_state, neuron_step=float_lif_step,
                              synapse=lambda conn, spikes: spike_product(conn.gain, spikes),
                              activation_dtype=np.float64, trace=lambda state: {"u": state.u, "v": state.v})


def chip_network(discrete: DiscreteNetwork) -> FloatChipNetwork:
    """The discrete network laid out as the chip's populations and connections, for the step schedule."""
    return FloatChipNetwork(
        input=InputLayer(discrete.input_name, discrete.input_size),
        populations=tuple(FloatPopulation(d.name, d.size, d) for d in discrete.populations),
        connections=tuple(FloatConnection(source, d.name, gain) for d in discrete.populations
                          for source, gain in d.inputs))


def simulate(discrete: DiscreteNetwork, inputs: SpikeEvents, num_steps: int,
             record_state: bool = False) -> dict[str, SpikeEvents]:
    """Spikes of every population of the float discrete-time simulation."""
    spikes, _, _ = schedule.run(chip_network(discrete), FLOAT_ARITHMETIC, inputs, num_steps,
                                record_state=record_state)
    return spikes
