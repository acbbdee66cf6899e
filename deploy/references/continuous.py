"""The continuous reference: the trained model itself, exact in continuous time (the Fast & Deep closed
form for fire-once CubaLIF neurons with tau_syn = tau_mem). continuous -> discrete is the
time-discretization error of a deployment.
"""

from __future__ import annotations

import numpy as np

from ..artifacts.network import FloatNetwork


def supports(net: FloatNetwork) -> bool:
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


def first_spike_times(net: FloatNetwork, input_times: np.ndarray) -> list[np.ndarray]:
    """Exact first-spike times of every layer, (samples, neurons) each, +inf where silent.

    In units of tau the CubaLIF membrane is v = sum_i (r w_in W_i / tau) (t - t_i) e^{-(t - t_i)};
    dividing by each neuron's threshold gives the closed form's unit threshold. Samples go in
    batches: the closed form holds a (samples, neurons, inputs) array.
    """
    from ...models.ttfs import network_spike_times_numpy

    tau = float(net.layers[0].tau_mem[0])
    weights = [(layer.r * layer.w_in / tau / layer.v_threshold)[:, None] * layer.feed_forward.weight
               for layer in net.layers]
    times = np.asarray(input_times) / tau
    batch_size = max(1, CONTINUOUS_BATCH_ENTRIES // max(w.size for w in weights))
    batches = [network_spike_times_numpy(times[start:start + batch_size], weights, 1.0)
               for start in range(0, len(times), batch_size)]
    return [np.concatenate([batch[index] for batch in batches]) * tau for index in range(len(net.layers))]
