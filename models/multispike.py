"""Multi-spike network with exact, event-driven spike times, after Bacho & Chu, "Exploring Tradeoffs in Spiking
Neural Networks", Neural Computation 35(10), 1627 (2023), doi:10.1162/neco_a_01609 (their code: Florian-BACHO/bats).

Neuron model: current-based LIF with tau_mem = 2 tau_syn and subtractive reset (delta theta = theta). Time is in
units of tau = tau_mem (so tau_syn = 1/2). Model definition (the one the tests integrate):
    dI/dt = -I / tau_syn,           I += w_i at each input spike t_i,
    dV/dt = (-V + I) / tau,         V -= theta at each own spike t_k (V reaches theta there, so V -> 0).
Its solution is, with the kernel e^{-s/tau} - e^{-s/tau_syn} (peak 1/4 at s = tau ln 2),
    V(t) = sum_{t_i < t} w_i (e^{-(t - t_i)/tau} - e^{-2 (t - t_i)/tau}) - theta sum_{t_k < t} e^{-(t - t_k)/tau}.
With x = e^{t/tau} and the running sums (Bacho & Chu 2023, Sec. 2; here V is not scaled by tau, so c = theta)
    a = sum_i w_i e^{t_i/tau_syn},   b = sum_i w_i e^{t_i/tau} - theta sum_k e^{t_k/tau},   c = theta,
V(t) = b / x - a / x^2, and V = theta is the quadratic c x^2 - b x + a = 0. Its earliest root,
    t = tau ln[2a / (b + sqrt(b^2 - 4ac))],
is a threshold crossing when a > 0, b > 0, b^2 >= 4ac (for a <= 0 the membrane cannot rise to theta again
once below it). It is the next spike if it lies after the last event (input or own spike) and before the next
input. After each spike b drops by theta e^{t_k/tau} and the root is solved again: several spikes can fall
between two inputs. Each neuron keeps at most n_max spikes (n_max = 1: time to first spike).

Gradients are exact: the spike times are differentiable torch expressions of the weights and of the input and
own earlier spike times (the recursion through the reset is part of the graph). Only the derivative of the square
root is bounded where the membrane grazes the threshold (b^2 -> 4ac), where dt/dw diverges.

On chip (Loihi) the reset is to zero. In continuous time the two coincide (V = theta exactly at the crossing);
they differ only by the overshoot above theta within one time step, which discrete_time_network measures.
Spike tensors have shape (batch, neurons, n_max), ascending in the last axis, inf = no spike; weights have shape
(n_out, n_in) like NIR's Affine.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..targets.decision import SPIKE_COUNT, decide

from .time_constants import TAU_MEM, TAU_SYN
from .ttfs import on_numpy

# Bacho & Chu (2023) spike-count targets (also the bats MNIST experiment): 15 for the label, 3 for the others.
TARGET_TRUE = 15
TARGET_FALSE = 3
# Softmax temperature of the first-spike cross-entropy (tau); Göltz et al. (2021) use 0.2.
FIRST_SPIKE_XI = 0.2

# The square root's derivative 1 / (2 sqrt(D)) is evaluated with sqrt(D) >= this fraction of b: it bounds
# dt/dw for membranes that barely reach the threshold without changing any spike time.
_MIN_ROOT_FRACTION = 1e-3


class _SqrtWithBoundedGradient(torch.autograd.Function):
    """sqrt(d) for d >= 0, with the derivative 1 / (2 max(sqrt(d), floor))."""

    @staticmethod
    def forward(ctx, d: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        root = torch.sqrt(torch.clamp(d, min=0.0))
        ctx.save_for_backward(torch.maximum(root, floor))
        return root

    @staticmethod
    def backward(ctx, grad_root: torch.Tensor):
        (bounded_root,) = ctx.saved_tensors
        return grad_root / (2.0 * bounded_root), None


def presynaptic_events(t_in: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten spike buffers (B, n_in, k) into time-sorted events: times (B, E) and their weights (B, n_out, E).

    Columns that are empty in every sample of the batch are dropped (at least one is kept).
    """
    batch, n_in, per_neuron = t_in.shape
    times = t_in.reshape(batch, n_in * per_neuron)
    event_weights = weight.repeat_interleave(per_neuron, dim=1)  # column j belongs to input neuron j // k
    order = torch.argsort(times, dim=1)
    n_events = max(1, int(torch.isfinite(times).sum(dim=1).max().item()))
    order = order[:, :n_events]
    sorted_times = torch.gather(times, 1, order)
    sorted_weights = event_weights.t()[order].transpose(1, 2)
    return sorted_times, sorted_weights


def layer_spike_times(
    t_in: torch.Tensor, weight: torch.Tensor, threshold: float, n_max: int, horizon: float
) -> torch.Tensor:
    """Exact spike times (B, n_out, n_max) of a layer fed with input spike buffers t_in (B, n_in, k).

    Between the sorted input events t_j <= t < t_{j+1} the running sums a_j, b_j are prefix sums; each loop
    iteration finds every neuron's next spike t = tau ln[2a / (b + sqrt(b^2 - 4ac))] in the first window that holds
    it after the neuron's previous spike, then lowers b by theta e^{t/tau} (subtractive reset). Spikes after
    horizon are dropped.
    """
    times, weights = presynaptic_events(t_in, weight)
    is_event = torch.isfinite(times)
    t_finite = torch.where(is_event, times, torch.zeros_like(times)).unsqueeze(1)
    w_events = torch.where(is_event.unsqueeze(1), weights, torch.zeros_like(weights))
    fast = torch.cumsum(w_events * torch.exp(t_finite / TAU_SYN), dim=2)  # a_j
    slow = torch.cumsum(w_events * torch.exp(t_finite / TAU_MEM), dim=2)  # b_j before resets
    window_start = times.unsqueeze(1)
    next_event = torch.cat([times[:, 1:], torch.full_like(times[:, :1], math.inf)], dim=1).unsqueeze(1)
    window_end = torch.clamp(next_event, max=horizon)

    batch, n_out = fast.shape[0], fast.shape[1]
    reset_sum = torch.zeros((batch, n_out, 1), dtype=times.dtype)  # sum_k e^{t_k / tau} over own spikes
    last_spike = torch.full((batch, n_out, 1), -math.inf, dtype=times.dtype)
    spikes = []
    for _ in range(n_max):
        b = slow - threshold * reset_sum
        with torch.no_grad():
            discriminant = b**2 - 4.0 * fast * threshold
            crosses = (fast > 0) & (b > 0) & (discriminant >= 0) & is_event.unsqueeze(1)
        # Masked entries get stand-ins (a = 1, b = 2, D = 4: t = 0) so that their zero gradients stay finite.
        a_safe = torch.where(crosses, fast, torch.ones_like(fast))
        b_safe = torch.where(crosses, b, torch.full_like(b, 2.0))
        d_safe = torch.where(crosses, b_safe**2 - 4.0 * a_safe * threshold, torch.full_like(b, 4.0))
        root = _SqrtWithBoundedGradient.apply(d_safe, _MIN_ROOT_FRACTION * b_safe.detach())
        crossing = TAU_MEM * (torch.log(2.0 * a_safe) - torch.log(b_safe + root))
        with torch.no_grad():
            causal = crosses & (crossing >= torch.maximum(window_start, last_spike)) & (crossing <= window_end)
        candidates = torch.where(causal, crossing, torch.full_like(crossing, math.inf))
        # Windows are in time order, so the earliest causal root is the next spike.
        spike = candidates.min(dim=2, keepdim=True).values
        fired = torch.isfinite(spike)
        spikes.append(spike)
        if not bool(fired.any()):
            spikes.extend(torch.full_like(spike, math.inf) for _ in range(n_max - len(spikes)))
            break
        spike_or_zero = torch.where(fired, spike, torch.zeros_like(spike))
        reset_sum = reset_sum + torch.where(fired, torch.exp(spike_or_zero / TAU_MEM), torch.zeros_like(spike))
        last_spike = torch.where(fired, spike, last_spike)
    return torch.cat(spikes, dim=2)


def network_spike_times(
    t_in: torch.Tensor, weights: Sequence[torch.Tensor], threshold: float, n_max: Sequence[int], horizon: float
) -> list[torch.Tensor]:
    """Spike buffers of every layer; t_in (B, n_in) holds one spike per input (inf = none), bias columns included."""
    layer_times = []
    times = t_in.unsqueeze(2)
    for weight, buffer_size in zip(weights, n_max):
        times = layer_spike_times(times, weight, threshold, buffer_size, horizon)
        layer_times.append(times)
    return layer_times


def network_spike_times_numpy(
    t_in: np.ndarray, weights: Sequence[np.ndarray], threshold: float, n_max: Sequence[int], horizon: float
) -> list[np.ndarray]:
    """network_spike_times for numpy arrays (float64), without gradients."""
    return on_numpy(network_spike_times, t_in, weights, threshold, n_max, horizon)


def spike_counts(times) -> np.ndarray:
    """Number of spikes per neuron, (B, n) from (B, n, n_max)."""
    times = times.detach().cpu().numpy() if isinstance(times, torch.Tensor) else np.asarray(times)
    return np.isfinite(times).sum(axis=2)


def predict(out_times) -> np.ndarray:
    """decide() on an output spike buffer (B, n_out, n_max)."""
    times = out_times.detach().cpu().numpy() if isinstance(out_times, torch.Tensor) else np.asarray(out_times)
    return decide(times[:, :, 0], spike_counts(times), SPIKE_COUNT)


def count_targets(labels: torch.Tensor, n_classes: int, target_true: float, target_false: float) -> torch.Tensor:
    """(B, n_classes) float64: target_true at the label, target_false elsewhere."""
    targets = torch.full((len(labels), n_classes), float(target_false), dtype=torch.float64)
    targets[torch.arange(len(labels)), labels] = float(target_true)
    return targets


def spike_count_loss(
    out_times: torch.Tensor, labels: torch.Tensor, target_true: float = TARGET_TRUE, target_false: float = TARGET_FALSE
) -> torch.Tensor:
    """Bacho & Chu (2023) spike-count loss, batch mean of L = 1/2 sum_j (n_j - target_j)^2.

    Counts are piecewise constant in the spike times, so, as in the paper (and bats' SpikeCountLoss), every emitted
    spike of output j receives the error dL/dt_k = target_j - n_j: too few spikes pull them earlier (room for more),
    too many push them later (past the horizon).
    """
    is_spike = torch.isfinite(out_times)
    counts = is_spike.sum(dim=2).to(torch.float64)
    targets = count_targets(labels, out_times.shape[1], target_true, target_false)
    loss_value = 0.5 * ((counts - targets) ** 2).sum(dim=1).mean()
    spike_times = torch.where(is_spike, out_times, torch.zeros_like(out_times))
    error = (targets - counts).unsqueeze(2)
    # Value: loss_value; gradient: error per spike (the second term is zero in value).
    surrogate = (error * (spike_times - spike_times.detach())).sum(dim=(1, 2)).mean()
    return loss_value + surrogate


def first_spike_cross_entropy(
    out_times: torch.Tensor, labels: torch.Tensor, xi: float = FIRST_SPIKE_XI, silent_time: float | None = None
) -> torch.Tensor:
    """TTFS loss on the first output spikes: batch mean of -log softmax(-t_first / xi)[label] (Bacho & Chu 2023,
    TTFS variant). Silent outputs enter as silent_time (default: the latest first spike of the batch + 1 tau),
    without gradient."""
    first = out_times[:, :, 0]
    is_spike = torch.isfinite(first)
    if silent_time is None:
        silent_time = (first[is_spike].max().item() if bool(is_spike.any()) else 0.0) + TAU_MEM
    times = torch.where(is_spike, first, torch.full_like(first, silent_time))
    return torch.nn.functional.cross_entropy(-times / xi, labels)


def discrete_time_network(
    t_in: np.ndarray,
    weights: Sequence[np.ndarray],
    threshold: float,
    dt: float,
    horizon: float,
    reset: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Output spike counts and first spike times (B, n_out) of the chip's discrete-time form, in float64.

    The step h = dt integrates the model exactly (deploy/quantize.py): with a_u = e^{-h/tau_syn}, a_v = e^{-h/tau},
        u[n] = a_u u[n-1] + g s[n-1],   v[n] = a_v v[n-1] + u[n],   g = (a_v - a_u) W  (tau = 2 tau_syn),
    a spike when v[n] >= theta, then v[n] -= theta (reset "subtract") or v[n] = 0 (reset "zero", the chip's).
    Input spikes sit on step round(t / h); step n samples the continuous membrane at n h. Steps n h <= horizon run.
    No spike buffer limit applies here (the chip has none).
    """
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    t_in = np.asarray(t_in, dtype=np.float64)
    alpha_u, alpha_v = math.exp(-dt / TAU_SYN), math.exp(-dt / TAU_MEM)
    gains = [torch.as_tensor((alpha_v - alpha_u) * np.asarray(w, dtype=np.float64)) for w in weights]
    n_steps = int(math.floor(horizon / dt + 1e-9))
    input_steps = torch.as_tensor(np.where(np.isfinite(t_in), np.rint(np.nan_to_num(t_in, posinf=-1) / dt), -1))
    batch = t_in.shape[0]
    currents = [torch.zeros((batch, g.shape[0]), dtype=torch.float64) for g in gains]
    voltages = [torch.zeros_like(u) for u in currents]
    previous = [torch.zeros((batch, g.shape[0]), dtype=torch.float64) for g in gains]  # spikes of step n-1
    counts = torch.zeros((batch, gains[-1].shape[0]), dtype=torch.int64)
    first = torch.full((batch, gains[-1].shape[0]), math.inf, dtype=torch.float64)
    with torch.no_grad():
        for step in range(1, n_steps + 1):
            source = (input_steps == step - 1).to(torch.float64)
            for index, gain in enumerate(gains):
                currents[index] = alpha_u * currents[index] + source @ gain.t()
                voltages[index] = alpha_v * voltages[index] + currents[index]
                spiking = voltages[index] >= threshold
                if reset == "subtract":
                    voltages[index] = voltages[index] - threshold * spiking
                else:
                    voltages[index] = torch.where(spiking, torch.zeros_like(voltages[index]), voltages[index])
                # The next layer sees this layer's spikes of the previous step (the Dense delay).
                source, previous[index] = previous[index], spiking.to(torch.float64)
            counts += previous[-1].to(torch.int64)
            first = torch.where((previous[-1] > 0) & torch.isinf(first), torch.full_like(first, step * dt), first)
    return counts.numpy(), first.numpy()
