"""The closed-form TTFS forward pass against brute force, and its gradients against finite differences."""

import math

import numpy as np
import pytest
import torch
from scipy.special import lambertw

from snn_deploy.models import ttfs
from snn_deploy.targets.encoding import TTFSEncoding

THRESHOLD = 1.0
GRID_STEP = 1e-4  # tau
GRID_END = 12.0  # tau: V decays after the last input (<= 3 tau here), so later crossings do not exist


def membrane(t: np.ndarray, t_in: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """V(t) = sum_i w_i (t - t_i) e^-(t - t_i) over inputs with t_i < t, for one neuron; t is a 1-D grid."""
    lag = t[:, None] - t_in[None, :]
    kernel = np.where(lag > 0, lag * np.exp(-np.clip(lag, 0, None)), 0.0)
    return kernel @ weight


def brute_force_first_spike(t_in: np.ndarray, weight: np.ndarray) -> float:
    """First threshold crossing of V on a fine grid, refined by bisection on the analytic V."""
    grid = np.arange(0.0, GRID_END, GRID_STEP)
    above = np.flatnonzero(membrane(grid, t_in, weight) >= THRESHOLD)
    if above.size == 0:
        return math.inf
    low, high = grid[above[0] - 1], grid[above[0]]
    for _ in range(60):
        middle = 0.5 * (low + high)
        if membrane(np.array([middle]), t_in, weight)[0] >= THRESHOLD:
            high = middle
        else:
            low = middle
    return high


def test_lambert_w0_matches_scipy_including_near_branch_point():
    x = np.concatenate([-math.exp(-1) + np.logspace(-14, -1, 30), np.linspace(-0.3, 5, 50), np.logspace(1, 5, 10)])
    ours = ttfs.lambert_w0(torch.tensor(x)).numpy()
    reference = lambertw(x, 0).real
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-7)
    # Away from the branch point the iteration reaches float64 precision.
    far = x > -0.3
    np.testing.assert_allclose(ours[far], reference[far], rtol=1e-14, atol=1e-15)


def test_lambert_w0_gradient_is_finite_at_the_branch_point():
    x = torch.tensor([-math.exp(-1), -math.exp(-1) + 1e-17, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    ttfs.lambert_w0(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    x = torch.tensor([-0.3, -0.1, 0.0, 0.5, 4.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ttfs.lambert_w0, (x,))


def test_closed_form_matches_brute_force_integration():
    rng = np.random.default_rng(7)
    batch, n_in, n_out = 6, 6, 12
    t_in = rng.uniform(0.0, 3.0, size=(batch, n_in))
    t_in[0, 2] = math.inf  # a silent input
    weight = rng.normal(0.6, 1.2, size=(n_out, n_in))
    closed_form = ttfs.first_spike_times(torch.tensor(t_in), torch.tensor(weight), THRESHOLD).numpy()

    n_silent = n_between_inputs = 0
    for sample in range(batch):
        finite = np.isfinite(t_in[sample])
        for neuron in range(n_out):
            expected = brute_force_first_spike(t_in[sample, finite], weight[neuron, finite])
            if math.isinf(expected):
                assert math.isinf(closed_form[sample, neuron])
                n_silent += 1
            else:
                assert abs(closed_form[sample, neuron] - expected) <= 1e-4
                n_between_inputs += expected < t_in[sample, finite].max()
    # The random case must exercise both silent neurons and crossings before the last input.
    assert n_silent > 0 and n_between_inputs > 0


def test_inhibition_after_the_crossing_does_not_cancel_the_spike():
    # A strong early input crosses at ~0.62 tau; the inhibitory input at 1.0 tau arrives after the spike.
    t_in = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    weight = torch.tensor([[5.0, -20.0]], dtype=torch.float64)
    spike = ttfs.first_spike_times(t_in, weight, THRESHOLD).item()
    assert 0.0 < spike < 1.0
    assert spike == pytest.approx(brute_force_first_spike(t_in[0].numpy(), weight[0].numpy()), abs=1e-4)


def test_gradients_match_finite_differences():
    t_in = torch.tensor(
        [[0.1, 0.5, 0.9, 1.4], [0.3, 0.2, 1.1, 0.7], [1.0, 0.4, 0.15, 0.6]], dtype=torch.float64, requires_grad=True
    )
    weight = torch.tensor([[2.4, 1.6, -0.6, 1.8], [1.4, 3.0, 0.8, -0.4]], dtype=torch.float64, requires_grad=True)
    times = ttfs.first_spike_times(t_in, weight, THRESHOLD)
    assert torch.isfinite(times).all()
    assert torch.autograd.gradcheck(lambda t, w: ttfs.first_spike_times(t, w, THRESHOLD), (t_in, weight))


def test_silent_neurons_give_finite_gradients():
    t_in = torch.tensor([[0.2, 0.5, math.inf], [0.3, 0.9, 0.4]], dtype=torch.float64)
    weights = [
        torch.tensor([[2.0, 1.0, 0.5], [-1.0, -1.0, -1.0], [0.1, 0.1, 0.1]], dtype=torch.float64, requires_grad=True),
        torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, -5.0, 1.0]], dtype=torch.float64, requires_grad=True),
    ]
    hidden, out = ttfs.network_spike_times(t_in, weights, THRESHOLD)
    assert torch.isinf(hidden[:, 1]).all() and torch.isinf(out[:, 1]).all()
    loss = ttfs.ttfs_loss(out, torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(w.grad).all() for w in weights)


def test_predict_takes_the_first_output_and_marks_silence():
    out = np.array([[1.0, 0.5, 0.7], [0.3, 0.3, 2.0], [math.inf, math.inf, math.inf]])
    np.testing.assert_array_equal(ttfs.predict(out), [1, 0, -1])


def test_encoding_appends_the_bias_spike():
    encoded = TTFSEncoding().encode(np.array([[0.0, 1.0, 0.5]]))
    np.testing.assert_allclose(encoded, [[0.15, 2.0, 1.075, 0.9]])
