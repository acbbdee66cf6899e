"""Float references that the chip is verified against.

1. ``continuous``: the trained model itself, exact in continuous time (the Fast & Deep closed form
   for fire-once CubaLIF neurons with tau_syn = tau_mem).
2. ``discrete``: the same chip dynamics and step schedule as bitsim, in float64 and unquantized
   (see ``quantize`` for the equations). continuous -> discrete is the time-discretization
   error; discrete -> chip is the quantization error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..targets import schedule
from ..targets.bundle import InputLayer
from ..targets.record import SpikeEvents
from ..targets.schedule import Arithmetic, NeuronStep
from ..targets.spikes import spike_product
from .network import FloatNetwork
from .quantize import Discretization, discrete_layers


def supports_continuous(net: FloatNetwork) -> bool:
    """The closed form holds for fire-once layers with tau_syn = tau_mem = one tau and no leak drive."""
    taus = np.concatenate([np.concatenate([layer.tau_syn, layer.tau_mem]) for layer in net.layers])
    chain = all(len(layer.projections) == 1 for layer in net.layers) and [
        layer.feed_forward.source for layer in net.layers] == [net.input_name] + [previous.name for previous in net.layers[:-1]]
    return (chain and net.semantics.fire_once and net.semantics.spike == "dirac"
            and net.semantics.integration == "exact"
            and all(layer.kind == "CubaLIF" for layer in net.layers) and np.all(taus == taus[0])
            and all(np.all(layer.v_leak == 0) and np.all(layer.feed_forward.bias == 0) for layer in net.layers))


# The closed form holds (samples, neurons, inputs) arrays: batches keep each under this many entries.
CONTINUOUS_BATCH_ENTRIES = 1 << 22


def continuous(net: FloatNetwork, input_times: np.ndarray) -> list[np.ndarray]:
    """Exact first-spike times of every layer, (samples, neurons) each, +inf where silent.

    In units of tau the CubaLIF membrane is v = sum_i (r w_in W_i / tau) (t - t_i) e^{-(t - t_i)};
    dividing by each neuron's threshold gives the closed form's unit threshold. Samples go in
    batches: the closed form holds a (samples, neurons, inputs) array.
    """
    from ..models.ttfs import network_spike_times_numpy

    tau = float(net.layers[0].tau_mem[0])
    weights = [(layer.r * layer.w_in / tau / layer.v_threshold)[:, None] * layer.feed_forward.weight
               for layer in net.layers]
    times = np.asarray(input_times) / tau
    batch_size = max(1, CONTINUOUS_BATCH_ENTRIES // max(w.size for w in weights))
    batches = [network_spike_times_numpy(times[start:start + batch_size], weights, 1.0)
               for start in range(0, len(times), batch_size)]
    return [np.concatenate([batch[index] for batch in batches]) * tau for index in range(len(net.layers))]


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


def discrete_network(net: FloatNetwork, dt: float) -> FloatChipNetwork:
    discs = discrete_layers(net, dt)
    return FloatChipNetwork(
        input=InputLayer(net.input_name, net.input_size),
        populations=tuple(FloatPopulation(d.name, d.size, d) for d in discs),
        connections=tuple(FloatConnection(source, d.name, gain) for d in discs for source, gain in d.inputs))


def discrete(net: FloatNetwork, dt: float, inputs: SpikeEvents, num_steps: int,
             record_state: bool = False) -> dict[str, SpikeEvents]:
    """Spikes of every layer of the float discrete-time simulation."""
    spikes, _, _ = schedule.run(discrete_network(net, dt), FLOAT_ARITHMETIC, inputs, num_steps,
                                record_state=record_state)
    return spikes
