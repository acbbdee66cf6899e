"""The NIR paper's recurrent and convolutional graphs (../shared/reference/nir-paper-graphs), compiled
with the semantics of the tools that wrote them, run on the chip and checked against the float NIR
interpreter (reference.discrete) on seeded random input spike trains; and bit-exact on Lava.

snnTorch's Braille networks: dt = 1e-4 s, a spike is a one-step pulse, the Euler step snnTorch takes
(current first, then voltage from the new current), spike-count decoding. sinabs' CNN: one step per
time unit, IF neurons, an input spike adds its weight (a Dirac), subtractive reset (sinabs'
MembraneSubtract default).
"""

from __future__ import annotations

import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.stages.discretize import CONSTANT_SOURCE
from snn_deploy.deploy.stages.verify import compare_spikes, judge
from snn_deploy.targets import description

from helpers import assert_lava_matches_bitsim

BRAILLE_STEPS = 300


def braille(reference_dir, name: str, reset: str):
    return load_graph(reference_dir / "nir-paper-graphs" / f"{name}.nir", {
        "time_unit": "s", "fire_once": False, "reset": reset, "decoding": "spike_count",
        "horizon": BRAILLE_STEPS * 1e-4, "spike": "pulse", "integration": "euler"})


@pytest.fixture(scope="module")
def braille_bias_zero(reference_dir):
    net = braille(reference_dir, "braille_noDelay_bias_zero", "zero")
    return net, compile_network(net, description.load("loihi2"), dt=1e-4, split_weights=True)


@pytest.fixture(scope="module")
def braille_subtract(reference_dir):
    net = braille(reference_dir, "braille_noDelay_noBias_subtract", "subtract")
    return net, compile_network(net, description.load("loihi2"), dt=1e-4, split_weights=True)


def test_braille_recurrent_layer_has_its_feed_forward_and_recurrent_projections(braille_bias_zero):
    net, bundle = braille_bias_zero
    hidden = net.layer("lif1.lif")
    assert {(p.source, p.nodes) for p in hidden.projections} == {("input", ("fc1",)), ("lif1.lif", ("lif1.w_rec",))}
    # snnTorch's export conventions give a unit Euler gain: the chip's decays are its alpha and beta.
    pop = bundle.network.population("lif1.lif")
    assert (int(pop.du[0]), int(pop.dv[0])) == (round(4096 * 0.45) - 1, round(4096 * 0.1))
    # The Affine biases become one input per step from the constant source.
    sources = {conn.source for conn in bundle.network.connections if conn.target == "lif1.lif"}
    assert sources == {"input", "lif1.lif", CONSTANT_SOURCE}
    assert bundle.network.population(CONSTANT_SOURCE).size == 1


def test_subtractive_reset_needs_programmable_neurons(reference_dir, braille_subtract):
    net, bundle = braille_subtract
    assert {pop.reset for pop in bundle.network.populations} == {"subtract"}
    with pytest.raises(DeployError, match=r"loihi1 neurons reset by zero, not 'subtract'"):
        compile_network(net, description.load("loihi1"), dt=1e-4)


def _verdict(net, bundle, rate: float, samples: int):
    inputs = random_spike_trains(net.input_size, samples, bundle.timing.num_steps, rate, seed=0)
    comparison = compare_spikes(net, bundle, inputs)
    return comparison, judge(comparison, net, bundle).to_dict()


@pytest.mark.parametrize("graph", ["braille_bias_zero", "braille_subtract"])
def test_braille_decides_as_the_float_interpreter(graph, request):
    """Issue target: >= 95% identical decisions on seeded random spike trains (rate 0.05 per step)."""
    comparison, m = _verdict(*request.getfixturevalue(graph), rate=0.05, samples=200)
    assert m["accuracy"] is None and m["samples"] == 200
    assert m["agreement"] >= 0.95
    # Counts differ more than decisions: one weight step per synapse, integrated by the recurrence,
    # moves single spikes, and the recurrence spreads them.
    counts = m["output_spike_count_error"]
    assert counts["mean_abs"] < 0.1 * counts["reference_mean"]
    assert all(c["current_wraps"] == 0 for c in m["hardware_events"].values())
    # The chip parts from the float model only after the input arrives (step 2 at the earliest).
    assert m["divergence"]["first_step"]["min"] >= 2


def test_braille_with_biases_is_bias_driven_and_ties_often(braille_bias_zero):
    """The bias network's outputs fire about every other step whatever the input, so with sparse input
    its decisions rest on count differences of a spike or two: a third of the samples tie within one
    spike at rate 0.01, and agreement is lower there (see the README's table)."""
    comparison, m = _verdict(*braille_bias_zero, rate=0.01, samples=200)
    counts = np.sort(comparison.discrete["lif2"].counts(), axis=1)
    margin = counts[:, -1] - counts[:, -2]
    assert np.mean(margin <= 1) > 0.2
    agree = comparison.decisions["chip"] == comparison.decisions["discrete"]
    assert agree[margin > 2].mean() >= 0.97 and m["agreement"] >= 0.9


def test_split_weights_make_the_chip_follow_the_float_interpreter_closer(reference_dir, braille_bias_zero):
    """Split weights take each weight down to one activation unit; the scale, capped by the worst-case
    state, then sets the precision (here 2.5 times finer than 8 bits, not 2**7)."""
    net, split = braille_bias_zero
    eight_bit = compile_network(net, description.load("loihi2"), dt=1e-4)
    assert split.report.quantization["lif1.lif"].weight_error_max < \
        eight_bit.report.quantization["lif1.lif"].weight_error_max / 2
    errors = [_verdict(net, bundle, rate=0.01, samples=100)[1]["output_spike_count_error"]["mean_abs"]
              for bundle in (split, eight_bit)]
    assert errors[0] < errors[1]


@pytest.mark.parametrize("graph", ["braille_bias_zero", "braille_subtract"])
def test_braille_runs_bit_exact_on_lava(graph, request, lava_python):
    net, bundle = request.getfixturevalue(graph)
    inputs = random_spike_trains(net.input_size, 3, bundle.timing.num_steps, 0.01, seed=1)
    assert_lava_matches_bitsim(bundle, inputs, context=graph)


def cnn(reference_dir, steps: int):
    return load_graph(reference_dir / "nir-paper-graphs" / "cnn_sinabs.nir", {
        "time_unit": "step", "fire_once": False, "reset": "subtract", "decoding": "spike_count",
        "horizon": steps, "spike": "dirac", "integration": "euler"})


def test_cnn_convolutions_and_pools_become_dense_blocks_with_their_synapses_counted(reference_dir):
    net = cnn(reference_dir, 30)
    assert [layer.kind for layer in net.layers] == ["IF"] * 5 and net.input_shape == (2, 34, 34)
    assert [(layer.name, layer.size, layer.feed_forward.nodes) for layer in net.layers] == [
        ("1", 4096, ("0",)), ("3", 4096, ("2",)), ("6", 512, ("4", "5")), ("10", 256, ("7", "8", "9")),
        ("12", 10, ("11",))]
    # Conv 0: 5x5 kernels, stride 2, padding 1 over 2x34x34 -> 16x16x16. Output row 0 reads padded input
    # row -1, so only 4 of its 5 kernel rows land (79 = 16 * 5 - 1 row taps per axis), columns alike.
    assert np.count_nonzero(net.layer("1").feed_forward.weight) == 16 * 2 * 79 * 79
    bundle = compile_network(net, description.load("loihi2"), dt=1)
    synapses = {name: layer.synapses for name, layer in bundle.report.placement.layers.items()}
    # Every nonzero 8-bit weight is a synapse in the compile report (weights that round to 0 are not).
    stored = np.count_nonzero(next(c.weights for c in bundle.network.connections if c.target == "1"))
    assert synapses["1"] == stored and stored > 0.99 * np.count_nonzero(net.layer("1").feed_forward.weight)


def test_cnn_runs_bit_exact_on_lava(reference_dir, lava_python):
    net = cnn(reference_dir, 30)
    bundle = compile_network(net, description.load("loihi2"), dt=1, split_weights=True)
    inputs = random_spike_trains(net.input_size, 2, bundle.timing.num_steps, 0.05, seed=2)
    expected, _ = assert_lava_matches_bitsim(bundle, inputs, record_state=False, context="cnn")
    assert expected.spikes["12"].events.shape[1] > 0  # the output layer is reached


def test_cnn_decides_as_the_float_interpreter(reference_dir):
    """Issue target: >= 95% identical decisions on seeded random spike trains (rate 0.05, 100 steps).
    Leak-free IF neurons under sustained inhibition reach the chip's negative voltage rail (counted as
    saturations); the float model has no rail, so their spike trains part, but rarely the decision."""
    net = cnn(reference_dir, 100)
    bundle = compile_network(net, description.load("loihi2"), dt=1, split_weights=True)
    comparison, m = _verdict(net, bundle, rate=0.05, samples=20)
    assert m["agreement"] >= 0.95
    counts = m["output_spike_count_error"]
    assert counts["mean_abs"] < 0.2 * counts["reference_mean"]
    assert all(c["current_wraps"] == 0 for c in m["hardware_events"].values())
    assert m["hardware_events"]["1"]["voltage_saturations"] > 0
