"""The float references (``references``): the numpy closed form of the continuous reference on hand cases,
against scipy's Lambert W, against a brute-force membrane and against the torch closed form the zoo
models were trained with; the discrete reference on a 1-neuron hand case; and where the discretized
bias and the pipeline latency stand under Euler and exact integration."""

import math

import nir
import numpy as np
import pytest
import scipy.special

from snn_deploy.deploy.artifacts.discrete import DiscreteNetwork, Discretization
from snn_deploy.deploy.references import continuous, discrete
from snn_deploy.deploy.stages.compile import choose_timing
from snn_deploy.deploy.stages.discretize import CONSTANT_SOURCE, constant_source_name, discretize
from snn_deploy.deploy.stages.export import to_nir
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.stages.stimulus import to_steps
from snn_deploy.models import data, zoo
from snn_deploy.targets import schedule
from snn_deploy.targets.decision import FIRST_SPIKE, decide
from snn_deploy.targets.record import SpikeEvents

# ---------------------------------------------------------------------------- continuous reference


def test_lambert_w0_matches_scipy_on_the_whole_branch():
    """Values within 1e-12 of scipy's away from the branch point, the residual at float64 rounding
    everywhere; next to -1/e W is ill-conditioned (dW/dx = 1 / (e^W (1 + W))), so values agree to 1e-8."""
    x = np.concatenate([np.linspace(-math.exp(-1), 0.0, 100001), -math.exp(-1) + np.logspace(-15, -2, 500)])
    w = continuous.lambert_w0(x)
    expected = scipy.special.lambertw(x).real
    # The float nearest -1/e lies below it: scipy answers NaN there, the closed form clamps it to -1/e.
    assert np.isnan(expected[0]) and w[0] == -1.0 and np.isfinite(expected[1:]).all()
    away = x > -math.exp(-1) + 1e-6
    np.testing.assert_allclose(w[away], expected[away], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w[~away][1:], expected[~away][1:], rtol=0, atol=1e-8)
    assert np.max(np.abs(w * np.exp(w) - x)) <= 2 * np.finfo(np.float64).eps
    assert continuous.lambert_w0(np.array([0.0]))[0] == 0.0


def test_one_input_spike_crosses_where_lambert_w_says():
    """One input spike of weight w at t = 0 gives V = w t e^{-t}. Chosen w = e^{1/2} / (1/2), V = 1 at
    t* = 1/2 exactly (-W0(-1/w) = -W0(-e^{-1/2} / 2) = 1/2); V peaks at w / e, so w < e never fires."""
    w_fires, w_silent = 2 * math.exp(0.5), 2.7
    times = continuous.layer_first_spike_times(np.zeros((1, 1)), np.array([[w_fires], [w_silent]]))
    assert times.shape == (1, 2)
    assert abs(times[0, 0] - 0.5) <= 4 * np.finfo(np.float64).eps
    assert times[0, 1] == np.inf
    # Shifted in time, the same spike crosses 1/2 later than it arrives; a silent input (+inf) adds nothing.
    shifted = continuous.layer_first_spike_times(np.array([[1.25, np.inf]]), np.array([[w_fires, 5.0]]))
    assert abs(shifted[0, 0] - 1.75) <= 8 * np.finfo(np.float64).eps


def brute_force_first_crossing(t_in: np.ndarray, weight: np.ndarray, t_end: float, steps: int) -> np.ndarray:
    """V(t) = sum_i w_i (t - t_i) e^{-(t - t_i)} for t > t_i on a grid, then bisection in the first grid
    interval where it reaches 1: the first crossing of each neuron, without the closed form's window search."""
    def membrane(t: np.ndarray) -> np.ndarray:  # (times,) -> (times, neurons)
        lag = np.maximum(t[:, None] - np.where(np.isfinite(t_in), t_in, np.inf)[None, :], 0.0)
        return (lag * np.exp(-lag)) @ weight.T

    grid = np.linspace(0.0, t_end, steps)
    values = membrane(grid)
    out = np.full(weight.shape[0], np.inf)
    for neuron in range(weight.shape[0]):
        above = np.flatnonzero(values[:, neuron] >= 1.0)
        if above.size == 0:
            continue
        low, high = grid[above[0] - 1], grid[above[0]]
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (low, middle) if membrane(np.array([middle]))[0, neuron] >= 1.0 else (middle, high)
        out[neuron] = high
    return out


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_finds_the_first_crossing_of_random_membranes(seed):
    """Random inputs of both signs (excitation, then inhibition that can end a rise before threshold):
    every first crossing where a fine grid and bisection find it, and silence where they find none."""
    rng = np.random.default_rng(seed)
    t_in = np.where(rng.random((1, 6)) < 0.85, rng.uniform(0.0, 2.0, (1, 6)), np.inf)
    weight = rng.normal(0.8, 1.5, (40, 6))
    closed = continuous.layer_first_spike_times(t_in, weight)[0]
    brute = brute_force_first_crossing(t_in[0], weight, 8.0, 8001)
    assert np.array_equal(np.isfinite(closed), np.isfinite(brute))
    assert 5 < np.isfinite(closed).sum() < 40  # both outcomes occur
    np.testing.assert_allclose(closed[np.isfinite(closed)], brute[np.isfinite(brute)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["yinyang-ttfs", "digits-ttfs"])
def test_numpy_closed_form_equals_the_torch_one_on_the_zoo_test_sets(name):
    """Every layer of the zoo TTFS models on their whole test sets (measured: within 4.1e-14 relative)."""
    from snn_deploy.models.ttfs import network_spike_times_numpy

    model = zoo.load(name)
    times = model.encoding.encode(data.load(f"{model.dataset}:test").features)
    ours = continuous.first_spike_times(from_graph(to_nir(model)), times)
    theirs = network_spike_times_numpy(times, model.weights, model.threshold)
    assert len(ours) == len(theirs) == 2
    for mine, torch_times in zip(ours, theirs):
        assert mine.shape == torch_times.shape
        assert np.array_equal(np.isfinite(mine), np.isfinite(torch_times))
        spiking = np.isfinite(torch_times)
        assert 0.5 < spiking.mean() < 1.0  # both spikes and silences occur
        np.testing.assert_allclose(mine[spiking], torch_times[spiking], rtol=1e-9, atol=0)
    np.testing.assert_array_equal(decide(ours[-1], None, FIRST_SPIKE), decide(theirs[-1], None, FIRST_SPIKE))


def test_continuous_batches_give_the_same_times(monkeypatch):
    """Batching the samples (to bound the (samples, neurons, inputs) array) changes nothing."""
    model = zoo.load("yinyang-ttfs")
    net = from_graph(to_nir(model))
    times = model.encoding.encode(data.load("yinyang:validation").features[:50])
    whole = continuous.first_spike_times(net, times)
    largest = max(layer.feed_forward.weight.size for layer in net.layers)
    monkeypatch.setattr(continuous, "CONTINUOUS_BATCH_ENTRIES", 7 * largest)  # batches of 7 samples
    for batched, expected in zip(continuous.first_spike_times(net, times), whole):
        np.testing.assert_array_equal(batched, expected)


# ------------------------------------------------------------------------------ discrete reference


def one_neuron(reset: str) -> DiscreteNetwork:
    """u[n] = u[n-1] / 2 + 5/8 s[n-1];  v[n] = 3/4 v[n-1] + u[n] + 1/8;  spike when v > 1. Dyadic numbers:
    float64 holds every value exactly."""
    neuron = Discretization(name="n", inputs=(("in", np.array([[0.625]])),), alpha_u=np.array([0.5]),
                            alpha_v=np.array([0.75]), drive=np.array([0.125]), threshold=np.array([1.0]),
                            reset=reset, fire_once=False)
    return DiscreteNetwork(input_name="in", input_size=1, populations=(neuron,), output="n", dt=1.0, num_steps=6,
                           input_fires_once=False, synapses={"n": ("w",)})


HAND_V = {  # v after each step's reset
    "zero": [0.125, 0.84375, 0.0, 0.59375, 0.8046875, 0.845703125],
    "subtract": [0.125, 0.84375, 0.6953125, 0.115234375, 0.44580078125, 0.5765380859375]}
HAND_SPIKES = {"zero": [0, 0, 1, 0, 0, 0], "subtract": [0, 0, 1, 1, 0, 0]}


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_discrete_reference_on_a_hand_computed_neuron(reset):
    """Input spikes in steps 1 and 2 arrive in steps 2 and 3 (the Dense delay). By hand:
    step 1: u = 0, v = 1/8;  step 2: u = 5/8, v = 3/32 + 5/8 + 1/8 = 0.84375;
    step 3: u = 5/16 + 5/8 = 0.9375, v = 0.6328125 + 0.9375 + 1/8 = 1.6953125 > 1: a spike, then v = 0
    (zero) or 0.6953125 (subtract). Step 4: u = 0.46875; v = 0.59375 (zero), or 0.521484375 + 0.59375 =
    1.115234375 > 1 (subtract): a second spike, v = 0.115234375. Steps 5 and 6: v = 3/4 v + u + 1/8."""
    inputs = SpikeEvents.from_raster(np.array([[[True], [True], [False], [False], [False], [False]]]))
    net = one_neuron(reset)
    v, fired = HAND_V[reset], HAND_SPIKES[reset]
    spikes, _, traces = schedule.run(discrete.chip_network(net), discrete.FLOAT_ARITHMETIC, inputs, 6,
                                     record_state=True)
    u = [0.0, 0.625, 0.9375, 0.46875, 0.234375, 0.1171875]
    np.testing.assert_array_equal(traces["n"]["u"][0, :, 0], u)
    np.testing.assert_array_equal(traces["n"]["v"][0, :, 0], v)
    np.testing.assert_array_equal(spikes["n"].raster()[0, :, 0], fired)
    np.testing.assert_array_equal(discrete.simulate(net, inputs, 6)["n"].events, spikes["n"].events)


# ----------------------------------------------------------------- biases and latency by integration


def biased_if_chain(integration: str, **metadata):
    """Input(1) -> Affine(w 1, b 3/8) -> IF -> Affine(w 0, b 1/4) -> IF, r = 1, thresholds 1, time in steps."""
    def affine(weight, bias):
        return nir.Affine(weight=np.array([[weight]]), bias=np.array([bias]))

    def neuron():
        return nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))

    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])), "fc1": affine(1.0, 0.375), "if1": neuron(),
               "fc2": affine(0.0, 0.25), "if2": neuron(), "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "output")])
    return from_graph(graph, {"time_unit": "step", "fire_once": False, "reset": "zero", "decoding": "spike_count",
                              "horizon": 8, "spike": "dirac", "integration": integration, **metadata})


def test_euler_biases_of_if_layers_start_with_their_first_input():
    """The depth-2 IF's bias comes from relay constant.2, which first fires in step 2 and reaches it in
    step 3, with its first input: v = 1/4, 1/2, 3/4, 1 (not above), 5/4 fires in step 7 (the simulator's
    step 4 + depth 2 + 1). The run covers the horizon (8 steps) and the output's depth (2)."""
    net = biased_if_chain("euler")
    network = discretize(net, 1.0)
    assert [pop.name for pop in network.populations] == [CONSTANT_SOURCE, constant_source_name(2), "if1", "if2"]
    assert dict(network.population("if2").inputs)[constant_source_name(2)].tolist() == [[0.25]]
    assert not network.population("if2").drive.any()
    timing = choose_timing(net, dt=1.0, decay_bits=12)
    assert (timing.num_steps, timing.latency_steps, network.num_steps) == (10, 2, 10)
    spikes = discrete.simulate(network, SpikeEvents.from_raster(np.zeros((1, 10, 1), bool)), 10)
    assert list(np.flatnonzero(spikes["if2"].raster()[0, :, 0]) + 1) == [7]
    # if1 (depth 1) adds 3/8 from step 2: 3/8, 3/4, 9/8 fires in step 4, again in step 7 and step 10.
    assert list(np.flatnonzero(spikes["if1"].raster()[0, :, 0]) + 1) == [4, 7, 10]


def test_exact_integration_keeps_biases_in_the_chip_bias_and_adds_no_latency():
    """Every layer samples t = n dt: the bias acts from step 1, as the chip's bias, and no step is added."""
    net = biased_if_chain("exact")
    network = discretize(net, 1.0)
    assert [pop.name for pop in network.populations] == ["if1", "if2"]
    assert network.population("if2").drive.tolist() == [0.25]
    timing = choose_timing(net, dt=1.0, decay_bits=12)
    assert (timing.num_steps, timing.latency_steps) == (8, 0)


# ------------------------------------------------- the compiled discrete reference equals the numpy one


def random_discrete_network(seed: int, num_inputs: int, sizes: tuple[int, ...], recurrent: bool) -> DiscreteNetwork:
    """A network of float populations: each takes the input or an earlier population (sometimes both), the
    recurrent ones also themselves; decays, drives and thresholds per neuron, some thresholds 0 or negative, some
    drives negative; reset and fire-once drawn per population. Weights are not dyadic: sums round."""
    rng = np.random.default_rng(seed)
    pops, names = [], ["in"]
    for index, size in enumerate(sizes):
        name = f"p{index}"
        sources = sorted(set(rng.choice(names, size=rng.integers(1, 3))), key=names.index)
        if recurrent and rng.random() < 0.6:
            sources.append(name)
        inputs = tuple((source, rng.normal(0.3, 0.6, (size, num_inputs if source == "in" else
                                                     sizes[int(source[1:])])))
                       for source in sources)
        threshold = rng.uniform(0.2, 1.5, size)
        threshold[rng.random(size) < 0.1] = rng.choice([0.0, -0.05])
        pops.append(Discretization(name=name, inputs=inputs, alpha_u=rng.uniform(0.3, 1.0, size),
                                   alpha_v=rng.uniform(0.3, 1.0, size),
                                   drive=np.where(rng.random(size) < 0.3, rng.normal(0, 0.05, size), 0.0),
                                   threshold=threshold, reset=str(rng.choice(["zero", "subtract"])),
                                   fire_once=bool(rng.random() < 0.5)))
        names.append(name)
    return DiscreteNetwork(input_name="in", input_size=num_inputs, populations=tuple(pops), output=names[-1], dt=1.0,
                           num_steps=0, input_fires_once=False, synapses={})


def assert_engines_alike(net: DiscreteNetwork, inputs: SpikeEvents, num_steps: int, record_state: bool = True):
    expected = discrete.run(net, inputs, num_steps, record_state=record_state, engine="reference")
    actual = discrete.run(net, inputs, num_steps, record_state=record_state, engine="compiled")
    for name in expected[0]:
        np.testing.assert_array_equal(actual[0][name].events, expected[0][name].events, err_msg=name)
        for key in expected[2].get(name, {}):
            assert np.array_equal(actual[2][name][key], expected[2][name][key]), (name, key)
    assert actual[1] == expected[1] and set(actual[2]) == set(expected[2])
    return expected[0]


# (seed, inputs, population sizes, recurrent, samples, steps, input spike density): sparse and dense steps (the
# numpy product's BLAS path above 2% activity), one and several batches (2000 samples: two threads).
GENERATED = [(seed, n_in, sizes, recurrent, samples, steps, density)
             for seed, (n_in, sizes, recurrent, samples, steps, density) in enumerate([
                 (5, (12, 3), False, 40, 30, 0.01), (5, (12, 3), False, 40, 30, 0.2), (30, (20, 7, 4), True, 25, 40, 0.05),
                 (300, (40, 10), False, 16, 25, 0.015), (300, (40, 10), True, 16, 25, 0.3), (2, (3,), True, 4, 30, 0.8),
                 (8, (6, 6, 6, 2), True, 64, 50, 0.03), (3, (5,), False, 2000, 12, 0.1)] * 3)]


@pytest.mark.parametrize("seed, num_inputs, sizes, recurrent, samples, steps, density", GENERATED)
def test_compiled_discrete_reference_equals_the_numpy_one(seed, num_inputs, sizes, recurrent, samples, steps,
                                                          density):
    """Spike events and the u and v traces bit for bit, on generated networks (24: recurrence, several projections
    per population, both resets, fire-once or not, thresholds at or below 0, negative drives, sparse and dense
    input)."""
    net = random_discrete_network(seed, num_inputs, sizes, recurrent)
    rng = np.random.default_rng(seed + 1000)
    inputs = SpikeEvents.from_raster(rng.random((samples, steps, num_inputs)) < density)
    spikes = assert_engines_alike(net, inputs, steps, record_state=samples < 1000)
    assert sum(s.events.shape[1] for s in spikes.values()) > 0  # the case is not silent


@pytest.mark.parametrize("name", ["yinyang-ttfs", "digits-ttfs"])
def test_compiled_discrete_reference_equals_the_numpy_one_on_the_zoo_test_sets(name):
    model = zoo.load(name)
    net = from_graph(to_nir(model))
    timing = choose_timing(net, steps_per_tau=128, decay_bits=12)
    network = discretize(net, timing.dt)
    times = model.encoding.encode(data.load(f"{model.dataset}:test").features)
    inputs = to_steps(times, timing.dt, timing.num_steps)
    assert_engines_alike(network, inputs, timing.num_steps, record_state=False)


def test_compiled_discrete_reference_sums_long_sparse_rows_as_numpy_does():
    """One busy sample among silent ones keeps the batch's activity below 2% (the sparse product) while its own
    row sums hundreds of columns: numpy's pairwise summation splits those sums (above 128 terms) into halves."""
    net = random_discrete_network(7, 1000, (20, 5), recurrent=False)
    raster = np.zeros((60, 12, 1000), bool)
    raster[0] = np.random.default_rng(8).random((12, 1000)) < np.linspace(0.05, 0.6, 12)[:, None]
    assert raster[:, :-1].sum(axis=(0, 2)).max() > 300 and raster.mean(axis=(0, 2)).max() < 0.02
    assert_engines_alike(net, SpikeEvents.from_raster(raster), 12)
