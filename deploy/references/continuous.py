"""The continuous reference: the trained model itself, exact in continuous time (the Fast & Deep closed
form for fire-once CubaLIF neurons with tau_syn = tau_mem). continuous -> discrete is the
time-discretization error of a deployment. numpy only, so that verify runs without torch: the zoo
models' torch closed form (``models.ttfs``) gives the same times to 1e-13 (tests/test_reference.py).
"""

from __future__ import annotations

import numpy as np

from ..artifacts.network import FloatNetwork


def supports(net: FloatNetwork) -> bool:
    """The closed form holds for fire-once layers with tau_syn = tau_mem = one tau, no leak drive and no delay."""
    taus = np.concatenate([np.concatenate([layer.tau_syn, layer.tau_mem]) for layer in net.layers])
    chain = all(len(layer.projections) == 1 for layer in net.layers) and [
        layer.feed_forward.source for layer in net.layers] == [net.input_name] + [previous.name for previous in net.layers[:-1]]
    return (chain and net.semantics.fire_once and net.semantics.spike == "dirac"
            and net.semantics.integration == "exact"
            and all(layer.kind == "CubaLIF" for layer in net.layers) and np.all(taus == taus[0])
            and all(np.all(layer.v_leak == 0) and np.all(layer.feed_forward.bias == 0)
                    and layer.feed_forward.delay is None for layer in net.layers))


# The closed form holds (samples, neurons, inputs) arrays: batches keep each under this many entries.
CONTINUOUS_BATCH_ENTRIES = 1 << 22

# Halley's iteration converges cubically from the branch-point series: 3 steps bring the residual
# |w e^w - x| to float64 rounding on all of [-1/e, 0] (measured; tests/test_reference.py checks W
# against scipy.special.lambertw). A fixed count, one more for margin, makes each value independent of
# what else is in its batch.
HALLEY_STEPS = 4


def lambert_w0(x: np.ndarray) -> np.ndarray:
    """The principal branch of Lambert's W on [-1/e, 0]: the w >= -1 with w e^w = x.

    The start is W's series about the branch point, -1 + p - p^2/3 + 11 p^3/72 with p = sqrt(2 (e x + 1))
    (Corless et al. 1996, "On the Lambert W function", eq. 4.22), within 0.2 of W anywhere on the
    interval; Halley's iteration on f(w) = w e^w - x follows. At the branch point itself (w = -1,
    where f' = e^w (1 + w) vanishes) the series is exact and the step is left out.
    """
    x = np.maximum(np.asarray(x, dtype=np.float64), -np.exp(-1.0))
    p = np.sqrt(np.maximum(2.0 * (np.e * x + 1.0), 0.0))
    w = -1.0 + p - p ** 2 / 3.0 + 11.0 / 72.0 * p ** 3
    for _ in range(HALLEY_STEPS):
        exp_w, one_plus_w = np.exp(w), w + 1.0
        f = w * exp_w - x
        # Halley: w -= f / (f' - f'' f / (2 f')), with f' = e^w (1 + w) and f'' = e^w (2 + w).
        with np.errstate(divide="ignore", invalid="ignore"):
            step = f / (exp_w * one_plus_w - (w + 2.0) * f / (2.0 * one_plus_w))
        step = np.where(np.isfinite(step), step, 0.0)
        w = np.maximum(w - step, -1.0)
    return w


def layer_first_spike_times(t_in: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact first-spike times (samples, neurons) of fire-once neurons of unit threshold, +inf where silent,
    for input spike times t_in (samples, inputs; +inf: no spike) and weights (neurons, inputs), time in tau.

    Between the k-th and (k+1)-th input spike (in time order) the membrane is V_k(t) = e^-t (a_k t - b_k),
    a_k = sum_{i<=k} w_i e^{t_i}, b_k = sum_{i<=k} w_i t_i e^{t_i}. V is continuous, so the first spike
    lies in the first window [t_k, t_{k+1}] whose maximum of V_k reaches the threshold; V_k peaks at
    t = 1 + b_k / a_k when a_k > 0. There V_k = 1 at (Göltz et al. 2021, Methods)
        t* = b_k / a_k - W0(-e^{b_k / a_k} / a_k),
    the earlier root (principal branch), the argument being in [-1/e, 0) at a window that reaches it.
    """
    order = np.argsort(t_in, axis=1, kind="stable")
    t_sorted = np.take_along_axis(t_in, order, axis=1)[:, None, :]  # (samples, 1, inputs)
    w_sorted = np.moveaxis(weight[:, order], 1, 0)  # (samples, neurons, inputs)
    spike = np.isfinite(t_sorted)
    t_spike = np.where(spike, t_sorted, 0.0)
    weighted = np.where(spike, w_sorted, 0.0) * np.exp(t_spike)
    a = np.cumsum(weighted, axis=2)
    b = np.cumsum(weighted * t_spike, axis=2)
    t_next = np.concatenate([t_sorted[:, :, 1:], np.full_like(t_sorted[:, :, :1], np.inf)], axis=2)
    rising = a > 0
    safe_a = np.where(rising, a, 1.0)
    t_peak = np.minimum(np.maximum(np.where(rising, 1.0 + b / safe_a, t_spike), t_spike), t_next)
    reaches = spike & rising & (np.exp(-t_peak) * (a * t_peak - b) >= 1.0)
    fires = reaches.any(axis=2)
    window = np.argmax(reaches, axis=2)[:, :, None]
    a_k = np.where(fires, np.take_along_axis(safe_a, window, axis=2)[:, :, 0], 1.0)
    b_k = np.where(fires, np.take_along_axis(b, window, axis=2)[:, :, 0], 0.0)
    crossing = b_k / a_k - lambert_w0(np.where(fires, -np.exp(b_k / a_k) / a_k, 0.0))
    return np.where(fires, crossing, np.inf)


def first_spike_times(net: FloatNetwork, input_times: np.ndarray) -> list[np.ndarray]:
    """Exact first-spike times of every layer, (samples, neurons) each, +inf where silent.

    In units of tau the CubaLIF membrane is v = sum_i (r w_in W_i / tau) (t - t_i) e^{-(t - t_i)};
    dividing by each neuron's threshold gives the closed form's unit threshold. Samples go in
    batches: the closed form holds a (samples, neurons, inputs) array.
    """
    tau = float(net.layers[0].tau_mem[0])
    weights = [(layer.r * layer.w_in / tau / layer.v_threshold)[:, None] * layer.feed_forward.weight
               for layer in net.layers]
    times = np.asarray(input_times, dtype=np.float64) / tau
    batch_size = max(1, CONTINUOUS_BATCH_ENTRIES // max(w.size for w in weights))
    layers: list[list[np.ndarray]] = [[] for _ in weights]
    for start in range(0, len(times), batch_size):
        batch = times[start:start + batch_size]
        for index, weight in enumerate(weights):
            batch = layer_first_spike_times(batch, weight)
            layers[index].append(batch)
    return [np.concatenate(parts) * tau for parts in layers]
