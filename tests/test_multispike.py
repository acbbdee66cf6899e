"""The event-driven multi-spike model against brute-force integration, its gradients, losses, decoding and the
discrete-time (chip) form."""

import math

import numpy as np
import pytest
import torch

from snn_deploy.models import multispike as ms

torch.set_num_threads(1)  # the machine is shared; more threads only contend

THRESHOLD = 1.0
GRID_STEP = 1e-3  # tau; each crossing is then located by bisection on the exactly propagated state
HORIZON = 8.0


def propagate(current, voltage, span: float):
    """Exact solution of dI/dt = -I / tau_syn, dV/dt = (-V + I) / tau over span (tau = 2 tau_syn = 1)."""
    decay_u, decay_v = math.exp(-span / ms.TAU_SYN), math.exp(-span / ms.TAU_MEM)
    return current * decay_u, voltage * decay_v + current * (decay_v - decay_u)


def brute_force_spikes(t_in: np.ndarray, weight: np.ndarray, horizon: float = HORIZON) -> list[list[float]]:
    """Spike times of each neuron (rows of weight) for one sample: step the model definition on a fine grid with
    input jumps I += w at the exact input times; where V reaches theta within a step, bisect for the crossing,
    subtract theta there and go on from it (several spikes can fall into one step)."""
    finite = np.isfinite(t_in)
    inputs = sorted(zip(t_in[finite], range(int(finite.sum()))))
    w = weight[:, finite]
    stops = sorted(set(np.arange(0.0, horizon, GRID_STEP)) | {t for t, _ in inputs} | {horizon})
    current, voltage = np.zeros(len(weight)), np.zeros(len(weight))
    spikes: list[list[float]] = [[] for _ in weight]
    next_input = 0
    for start, end in zip(stops[:-1], stops[1:]):
        while next_input < len(inputs) and inputs[next_input][0] <= start:
            current = current + w[:, inputs[next_input][1]]
            next_input += 1
        new_current, new_voltage = propagate(current, voltage, end - start)
        for neuron in np.flatnonzero(new_voltage >= THRESHOLD):
            t, u, v = start, current[neuron], voltage[neuron]
            while propagate(u, v, end - t)[1] >= THRESHOLD:
                low, high = 0.0, end - t
                for _ in range(60):
                    middle = 0.5 * (low + high)
                    low, high = (low, middle) if propagate(u, v, middle)[1] >= THRESHOLD else (middle, high)
                u, v = propagate(u, v, high)
                t, v = t + high, v - THRESHOLD
                spikes[neuron].append(t)
            new_current[neuron], new_voltage[neuron] = propagate(u, v, end - t)
        current, voltage = new_current, new_voltage
    return spikes


def test_event_model_matches_brute_force_with_several_spikes_between_inputs():
    rng = np.random.default_rng(5)
    batch, n_in, n_out, n_max = 3, 5, 6, 30
    t_in = rng.uniform(0.0, 2.5, size=(batch, n_in))
    t_in[1, 3] = math.inf  # a silent input
    weight = rng.normal(4.0, 5.0, size=(n_out, n_in))
    weight[0] = [30.0, 0.0, 0.0, 0.0, 0.0]  # one strong input: a burst of spikes before the next input
    weight[1] = -np.abs(weight[1])  # never fires
    exact = ms.layer_spike_times(torch.tensor(t_in).unsqueeze(2), torch.tensor(weight), THRESHOLD, n_max, HORIZON)
    exact = exact.numpy()

    most_between_two_inputs = n_spiking = 0
    for sample in range(batch):
        expected = brute_force_spikes(t_in[sample], weight)
        inputs = np.sort(t_in[sample][np.isfinite(t_in[sample])])
        for neuron, times in enumerate(expected):
            ours = exact[sample, neuron]
            assert np.isfinite(ours).sum() == len(times), (sample, neuron)
            np.testing.assert_allclose(ours[: len(times)], times, atol=1e-4)
            n_spiking += len(times) > 0
            if times:
                windows = np.searchsorted(inputs, times)
                most_between_two_inputs = max(most_between_two_inputs, np.bincount(windows).max())
    assert n_spiking > batch and most_between_two_inputs >= 3


def test_the_buffer_keeps_the_earliest_spikes_and_one_gives_ttfs():
    rng = np.random.default_rng(1)
    t_in = torch.tensor(rng.uniform(0.0, 2.0, size=(4, 6, 1)))
    weight = torch.tensor(rng.normal(6.0, 4.0, size=(5, 6)))
    long = ms.layer_spike_times(t_in, weight, THRESHOLD, 20, HORIZON)
    short = ms.layer_spike_times(t_in, weight, THRESHOLD, 3, HORIZON)
    first = ms.layer_spike_times(t_in, weight, THRESHOLD, 1, HORIZON)
    np.testing.assert_array_equal(short.numpy(), long[:, :, :3].numpy())
    np.testing.assert_array_equal(first.numpy(), long[:, :, :1].numpy())
    assert (ms.spike_counts(long) > 3).any()


def test_spikes_after_the_horizon_are_dropped():
    t_in = torch.tensor([[[0.0]]], dtype=torch.float64)
    weight = torch.tensor([[40.0]], dtype=torch.float64)
    times = ms.layer_spike_times(t_in, weight, THRESHOLD, 50, HORIZON)[0, 0].numpy()
    shorter = ms.layer_spike_times(t_in, weight, THRESHOLD, 50, 1.0)[0, 0].numpy()
    spikes = times[np.isfinite(times)]
    np.testing.assert_array_equal(shorter[np.isfinite(shorter)], spikes[spikes <= 1.0])
    assert (spikes > 1.0).any()


def test_gradients_match_finite_differences_through_the_reset():
    # Neuron 0 fires three times: its later spike times depend on its earlier ones through the reset.
    t_in = torch.tensor([[[0.1], [0.5], [0.9], [1.4]], [[0.3], [0.2], [1.1], [0.7]]], dtype=torch.float64,
                        requires_grad=True)
    weight = torch.tensor([[14.0, 9.0, -2.0, 6.0], [6.0, 8.0, 3.0, -1.0]], dtype=torch.float64, requires_grad=True)
    times = ms.layer_spike_times(t_in, weight, THRESHOLD, 3, HORIZON)
    assert ms.spike_counts(times)[0, 0] == 3

    def finite_spikes(t, w):
        out = ms.layer_spike_times(t, w, THRESHOLD, 3, HORIZON)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    assert torch.autograd.gradcheck(finite_spikes, (t_in, weight))


def test_two_layer_gradients_are_finite_with_silent_neurons():
    t_in = torch.tensor([[0.2, 0.5, math.inf], [0.3, 0.9, 0.4]], dtype=torch.float64)
    weights = [
        torch.tensor([[20.0, 10.0, 5.0], [-1.0, -1.0, -1.0], [8.0, 8.0, 8.0]], dtype=torch.float64,
                     requires_grad=True),
        torch.tensor([[3.0, 1.0, 2.0], [0.0, 0.0, 0.0], [6.0, -5.0, 4.0]], dtype=torch.float64, requires_grad=True),
    ]
    losses = {
        "spike count": lambda out: ms.spike_count_loss(out, torch.tensor([1, 0])),
        "first-spike cross-entropy": lambda out: ms.first_spike_cross_entropy(out, torch.tensor([2, 0])),
    }
    for name, loss_of in losses.items():
        hidden, out = ms.network_spike_times(t_in, weights, THRESHOLD, (5, 5), HORIZON)
        assert torch.isinf(hidden[:, 1]).all() and torch.isinf(out[:, 1]).all()
        for w in weights:
            w.grad = None
        loss = loss_of(out)
        loss.backward()
        assert torch.isfinite(loss), name
        assert all(torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights), name


def test_spike_count_loss_value_and_per_spike_error():
    out = torch.tensor([[[0.5, 1.0, math.inf], [0.2, 0.4, 0.6]]], dtype=torch.float64, requires_grad=True)
    loss = ms.spike_count_loss(out, torch.tensor([0]), target_true=4, target_false=1)
    assert loss.item() == pytest.approx(0.5 * ((2 - 4) ** 2 + (3 - 1) ** 2))
    loss.backward()
    # dL/dt_k = target - count for each emitted spike: too few pull spikes earlier, too many push them later.
    np.testing.assert_array_equal(out.grad.numpy(), [[[2.0, 2.0, 0.0], [-2.0, -2.0, -2.0]]])


def test_decoding_takes_the_most_spikes_then_the_earliest_first_spike():
    inf = math.inf
    out = np.array([
        [[0.5, 1.0, inf], [0.2, 0.4, 0.6], [0.1, inf, inf]],  # 3 spikes win
        [[0.5, 1.0, inf], [0.3, 0.8, inf], [inf, inf, inf]],  # tie at 2: earliest first spike
        [[inf, inf, inf], [inf, inf, inf], [inf, inf, inf]],  # silent
    ])
    np.testing.assert_array_equal(ms.predict(out), [1, 1, -1])


def test_discrete_time_form_converges_to_the_event_model():
    rng = np.random.default_rng(2)
    t_in = rng.uniform(0.0, 2.0, size=(20, 5))
    weights = [rng.normal(3.0, 3.0, size=(30, 5)), rng.normal(0.15, 0.3, size=(4, 30))]
    out = ms.network_spike_times_numpy(t_in, weights, THRESHOLD, (40, 40), 4.0)[-1]
    for reset in ("subtract", "zero"):
        counts, first = ms.discrete_time_network(t_in, weights, THRESHOLD, 1.0 / 256, 4.0, reset)
        # Each layer delays spikes by up to one step and the horizon cuts the last ones: counts may fall short.
        count_error = counts - ms.spike_counts(out)
        assert np.abs(count_error).max() <= 2 and np.abs(count_error).mean() < 0.5
        spiking = np.isfinite(out[:, :, 0])
        np.testing.assert_array_equal(np.isfinite(first), spiking)
        # Up to one step per layer, more where a membrane grazes the threshold.
        first_error = np.abs(first[spiking] - out[:, :, 0][spiking])
        assert np.median(first_error) < 2 * 1.0 / 256 and first_error.max() < 0.1
    with pytest.raises(ValueError, match="reset"):
        ms.discrete_time_network(t_in, weights, THRESHOLD, 0.01, 4.0, "hold")
