"""Time-to-first-spike network with exact spike times, after Göltz et al., "Fast and energy-efficient
neuromorphic deep learning with first-spike times", Nature Machine Intelligence 3, 823 (2021) ("Fast & Deep").

Neuron model: current-based LIF with tau_mem = tau_syn = tau, no reset, only the first spike counts. Time is in
units of tau. An input spike at t_i with weight w_i adds w_i to the current I (dI/dt = -I, dV/dt = -V + I), so
    V(t) = sum_{t_i < t} w_i (t - t_i) exp(-(t - t_i)).
Weights have shape (n_out, n_in), like NIR's Affine.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..targets.decision import FIRST_SPIKE, decide

# Loss constants of Fast & Deep for Yin-Yang: softmax temperature xi, regulariser alpha * (exp(t_label / beta) - 1).
XI = 0.2
ALPHA = 0.005
BETA = 1.0

# Stand-in time for silent outputs in the loss: late enough to carry no softmax weight (exp(-50) next to a spike
# within the 4 tau window) and to make the regulariser large (alpha * e^10 ~ 110).
SILENT_TIME = 10.0

_INV_E = math.exp(-1.0)
_HALLEY_STEPS = 8
# Below this distance of W from the branch point -1, dW/dx = 1 / (e^W (1 + W)) is capped: the membrane maximum
# only grazes the threshold, and an unbounded derivative there would only produce inf/NaN gradients.
_MIN_ONE_PLUS_W = 1e-9


def _lambert_w0_initial_guess(x: torch.Tensor) -> torch.Tensor:
    """Starting point for Halley: branch-point series near -1/e, log1p in the middle, log x - log log x for large x."""
    p = torch.sqrt(torch.clamp(2.0 * (math.e * x + 1.0), min=0.0))
    near_branch = -1.0 + p - p**2 / 3.0 + 11.0 / 72.0 * p**3
    large = torch.log(torch.clamp(x, min=3.0))
    asymptotic = large - torch.log(large)
    middle = torch.log1p(torch.clamp(x, min=-0.25))
    return torch.where(x < -0.25, near_branch, torch.where(x > 3.0, asymptotic, middle))


def _lambert_w0_value(x: torch.Tensor) -> torch.Tensor:
    """W0(x) for x >= -1/e by Halley's iteration on f(w) = w e^w - x (cubic convergence, float64 precision)."""
    x = torch.clamp(x, min=-_INV_E)
    w = _lambert_w0_initial_guess(x)
    for _ in range(_HALLEY_STEPS):
        exp_w = torch.exp(w)
        f = w * exp_w - x
        one_plus_w = torch.clamp(w + 1.0, min=_MIN_ONE_PLUS_W)
        # Halley: w <- w - f / (f'(w) - f''(w) f / (2 f'(w))), with f' = e^w (w + 1), f'' = e^w (w + 2).
        step = f / (exp_w * one_plus_w - (w + 2.0) * f / (2.0 * one_plus_w))
        w = torch.clamp(w - torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0), min=-1.0)
    return w


class LambertW0(torch.autograd.Function):
    """Principal branch of the Lambert W function, W(x) e^W(x) = x, with dW/dx = W / (x (1 + W)) = 1 / (e^W (1 + W))."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        w = _lambert_w0_value(x)
        ctx.save_for_backward(w)
        return w

    @staticmethod
    def backward(ctx, grad_w: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return grad_w / (torch.exp(w) * torch.clamp(1.0 + w, min=_MIN_ONE_PLUS_W))


def lambert_w0(x: torch.Tensor) -> torch.Tensor:
    """Principal-branch Lambert W, differentiable; arguments below -1/e are treated as -1/e."""
    return LambertW0.apply(x)


def first_spike_times(t_in: torch.Tensor, weight: torch.Tensor, threshold: float) -> torch.Tensor:
    """Exact first spike times (B, n_out) of LIF neurons receiving input spikes t_in (B, n_in), inf = no spike.

    weight is (n_out, n_in), or (B, n_out, n_in) for per-sample copies (training: per-sample gradient clipping).
    After sorting the inputs, the membrane between the k-th and (k+1)-th input is V(t) = e^-t (a_k t - b_k) with
        a_k = sum_{i<=k} w_i e^{t_i},  b_k = sum_{i<=k} w_i t_i e^{t_i},
    and its first threshold crossing is (Göltz et al. 2021, Methods)
        t*_k = b_k / a_k - W0(-(theta / a_k) e^{b_k / a_k}),
    which exists if a_k > 0 and the argument is >= -1/e. The spike is the first t*_k in [t_k, t_{k+1}].
    """
    batch, n_in = t_in.shape
    n_out = weight.shape[-2]
    order = torch.argsort(t_in, dim=1)
    t_sorted = torch.gather(t_in, 1, order)
    weight_per_sample = weight.expand(batch, n_out, n_in)
    w_sorted = torch.gather(weight_per_sample, 2, order.unsqueeze(1).expand(batch, n_out, n_in))

    # Silent inputs (t = inf) contribute nothing; zero them before exp so no inf * 0 reaches the gradients.
    is_input_spike = torch.isfinite(t_sorted)
    t_finite = torch.where(is_input_spike, t_sorted, torch.zeros_like(t_sorted)).unsqueeze(1)
    w_finite = torch.where(is_input_spike.unsqueeze(1), w_sorted, torch.zeros_like(w_sorted))
    weighted_exp = w_finite * torch.exp(t_finite)
    a = torch.cumsum(weighted_exp, dim=2)
    b = torch.cumsum(weighted_exp * t_finite, dim=2)

    # V is continuous across input windows, so the first spike lies in the first window [t_k, t_{k+1}] whose
    # maximum of V_k(t) = e^-t (a_k t - b_k) reaches the threshold. V_k peaks at t = 1 + b_k / a_k (a_k > 0), so the
    # window maximum is at that peak clamped into the window. Find that window without gradients, then evaluate
    # the closed form (and its Lambert W) once per neuron, there.
    t_start = t_finite
    t_next = torch.cat([t_sorted[:, 1:], torch.full_like(t_sorted[:, :1], math.inf)], dim=1).unsqueeze(1)
    with torch.no_grad():
        a_positive = a > 0
        peak = torch.where(a_positive, 1.0 + b / torch.where(a_positive, a, torch.ones_like(a)), t_start)
        t_max = torch.minimum(torch.maximum(peak, t_start), t_next)
        v_max = torch.exp(-t_max) * (a * t_max - b)
        reaches = is_input_spike.unsqueeze(1) & a_positive & (v_max >= threshold)
        fires = reaches.any(dim=2)
        window = reaches.to(torch.int8).argmax(dim=2, keepdim=True)
    a_k = torch.where(fires, torch.gather(a, 2, window).squeeze(2), torch.ones_like(fires, dtype=a.dtype))
    b_k = torch.where(fires, torch.gather(b, 2, window).squeeze(2), torch.zeros_like(fires, dtype=b.dtype))
    # At the window's maximum the argument is >= -1/e: the crossing exists.
    argument = -(threshold / a_k) * torch.exp(b_k / a_k)
    w = torch.zeros_like(argument).masked_scatter(fires, lambert_w0(argument[fires]))
    crossing = b_k / a_k - w
    return torch.where(fires, crossing, torch.full_like(crossing, math.inf))


def network_spike_times(
    t_in: torch.Tensor, weights: Sequence[torch.Tensor], threshold: float
) -> list[torch.Tensor]:
    """Spike times of every layer, the first layer fed with t_in (B, n_in) including any bias spike columns."""
    layer_times = []
    times = t_in
    for weight in weights:
        times = first_spike_times(times, weight, threshold)
        layer_times.append(times)
    return layer_times


def on_numpy(network_function, t_in: np.ndarray, weights: Sequence[np.ndarray], *args) -> list[np.ndarray]:
    """Call a torch ``network_function(t_in, weights, *args)`` on float64 numpy arrays, without gradients."""
    with torch.no_grad():
        layer_times = network_function(
            torch.as_tensor(np.asarray(t_in, dtype=np.float64)),
            [torch.as_tensor(np.asarray(w, dtype=np.float64)) for w in weights],
            *args,
        )
    return [times.numpy() for times in layer_times]


def network_spike_times_numpy(t_in: np.ndarray, weights: Sequence[np.ndarray], threshold: float) -> list[np.ndarray]:
    """network_spike_times for numpy arrays (float64), without gradients."""
    return on_numpy(network_spike_times, t_in, weights, threshold)


def predict(out_times) -> np.ndarray:
    """Label = first output to fire (``targets.decision``: ties -> lowest index), -1 if every output is silent."""
    times = out_times.detach().cpu().numpy() if isinstance(out_times, torch.Tensor) else np.asarray(out_times)
    return decide(times, None, FIRST_SPIKE)


def ttfs_loss(
    out_times: torch.Tensor, labels: torch.Tensor, xi: float = XI, alpha: float = ALPHA, beta: float = BETA
) -> torch.Tensor:
    """Mean over the batch of the Fast & Deep loss (Göltz et al. 2021, Methods):
        L = -log softmax(-t / xi)[label] + alpha (exp(t_label / beta) - 1).
    Silent outputs enter as SILENT_TIME, without gradient.
    """
    is_spike = torch.isfinite(out_times)
    times = torch.where(is_spike, out_times, torch.full_like(out_times, SILENT_TIME))
    cross_entropy = torch.nn.functional.cross_entropy(-times / xi, labels, reduction="none")
    label_times = times.gather(1, labels.view(-1, 1)).squeeze(1)
    regulariser = alpha * torch.expm1(label_times / beta)
    return (cross_entropy + regulariser).mean()
