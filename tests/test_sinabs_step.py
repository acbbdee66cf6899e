"""``--integration exponential``: the float reference against sinabs 3.1's own step, written out here from its
documented equations (sinabs is not installed in CI: it pins nir <= 1.0.4).

sinabs steps a ``Linear -> LIF`` layer as v <- alpha v + (1 - alpha) (W z + b), alpha = exp(-1 / tau_mem)
(``norm_input=True``, its default), an ``IAF`` as v <- v + W z + b; ``SingleSpike`` fires where v >= threshold
and ``MembraneSubtract`` subtracts the threshold. A ``Sequential`` advances the whole chain within one step.
``sinabs.to_nir`` writes each LIF as a NIR LIF (tau = tau_mem in steps, r = 1, v_leak = 0) and each IAF as an
IF (r = 1): the graphs below are what it writes for such a network.

The chip delays each layer by one step: a layer at depth d that fires at sinabs' step t fires at raster index
t + d of the reference, whose run covers the horizon plus the output's depth.
"""

import nir
import numpy as np
import pytest

from snn_deploy.deploy.references import discrete
from snn_deploy.deploy.stages.compile import choose_timing
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.load import from_graph

from helpers import padded

NUM_SAMPLES, NUM_STEPS, SIZES = 6, 40, (5, 7, 6, 4)
SEMANTICS = {"time_unit": "step", "fire_once": False, "reset": "subtract", "decoding": "spike_count_argmax",
             "horizon": NUM_STEPS, "spike": "pulse"}
# No membrane of the sinabs model comes this close to its threshold on these seeds (asserted), so neither
# float64 rounding nor sinabs' >= (NIR's and the chip's >) can move a spike.
MARGIN = 1e-9
WEIGHTS = {"lif": (1.2, 1.5), "iaf": (0.0, 0.4)}  # (mean, sd): every layer fires in 7-55% of its steps


def input_spikes(seed: int) -> np.ndarray:
    """Random 0/1 input of the test's seed, (samples, steps, channels)."""
    return np.random.default_rng(100 + seed).random((NUM_SAMPLES, NUM_STEPS, SIZES[0])) < 0.4


def sinabs_layers(seed: int, kinds: tuple[str, ...]):
    """Per layer (kind, weight, bias, tau_mem, threshold): weights of both signs (a LIF's larger, as its input is
    scaled by 1 - alpha), biases of both signs, per-neuron taus of 3-12 steps and thresholds of 0.6-1.2."""
    rng = np.random.default_rng(seed)
    return [(kind, rng.normal(*WEIGHTS[kind], (n_out, n_in)), rng.uniform(-0.2, 0.2, n_out),
             rng.uniform(3, 12, n_out), rng.uniform(0.6, 1.2, n_out))
            for kind, n_in, n_out in zip(kinds, SIZES[:-1], SIZES[1:])]


def sinabs_graph(layers) -> nir.NIRGraph:
    """The graph sinabs.to_nir writes for Linear -> LIF/IAF layers."""
    nodes, edges, previous = {"input": nir.Input(input_type=np.array([SIZES[0]]))}, [], "input"
    for index, (kind, weight, bias, tau, threshold) in enumerate(layers):
        linear, neuron = str(2 * index), str(2 * index + 1)
        nodes[linear] = nir.Affine(weight=weight, bias=bias)
        n = weight.shape[0]
        nodes[neuron] = (nir.LIF(tau=tau, r=np.ones(n), v_leak=np.zeros(n), v_threshold=threshold) if kind == "lif"
                         else nir.IF(r=np.ones(n), v_threshold=threshold))
        edges += [(previous, linear), (linear, neuron)]
        previous = neuron
    nodes["output"] = nir.Output(output_type=np.array([SIZES[-1]]))
    return nir.NIRGraph(nodes=nodes, edges=edges + [(previous, "output")])


def sinabs_run(layers, spikes: np.ndarray) -> tuple[list[np.ndarray], float]:
    """sinabs' own step (module docstring) in float64: each layer's raster, and the closest any membrane came to
    its threshold before the spike test."""
    rasters, closest = [], np.inf
    z = spikes.astype(np.float64)
    for kind, weight, bias, tau, threshold in layers:
        alpha = np.exp(-1.0 / tau)
        v, out = np.zeros((z.shape[0], weight.shape[0])), []
        for step in range(z.shape[1]):
            x = z[:, step] @ weight.T + bias
            v = alpha * v + (1 - alpha) * x if kind == "lif" else v + x
            closest = min(closest, float(np.abs(v - threshold).min()))
            fired = v >= threshold
            v = v - fired * threshold
            out.append(fired)
        rasters.append(np.stack(out, axis=1))
        z = rasters[-1].astype(np.float64)
    return rasters, closest


@pytest.mark.parametrize("kinds", [("lif", "lif", "lif"), ("lif", "iaf", "lif"), ("iaf", "iaf", "iaf")])
@pytest.mark.parametrize("seed", [0, 1])
def test_exponential_integration_fires_every_spike_of_sinabs(seed, kinds):
    """Every spike of every layer and sample is sinabs', after the depth shift; the run covers the horizon and
    the output's depth, and nothing fires before its input can arrive."""
    layers = sinabs_layers(seed, kinds)
    spikes = input_spikes(seed)
    expected, closest = sinabs_run(layers, spikes)
    assert closest > MARGIN
    net = from_graph(sinabs_graph(layers), {**SEMANTICS, "integration": "exponential"})
    timing = choose_timing(net, dt=1.0, decay_bits=12)
    assert (timing.latency_steps, timing.num_steps) == (3, NUM_STEPS + 3)
    events = discrete.simulate(discretize(net, 1.0), padded(spikes, timing.num_steps), timing.num_steps)
    for depth, (layer, simulated) in enumerate(zip(net.layers, expected), start=1):
        interpreted = events[layer.name].raster()
        assert 0.05 < simulated.mean() < 0.6, f"layer {layer.name} busy, not saturated"
        assert not interpreted[:, :depth].any()
        np.testing.assert_array_equal(interpreted[:, depth:depth + NUM_STEPS], simulated,
                                      err_msg=f"layer {layer.name}")


def test_euler_is_another_network_for_sinabs_lif_layers():
    """The same LIF graph stepped by Euler (1 - dt/tau, the only simulator step before ``exponential``) moves
    spikes: the option decides whether the reference is the user's sinabs model."""
    layers = sinabs_layers(0, ("lif", "lif", "lif"))
    spikes = input_spikes(0)
    expected, _ = sinabs_run(layers, spikes)
    net = from_graph(sinabs_graph(layers), {**SEMANTICS, "integration": "euler"})
    events = discrete.simulate(discretize(net, 1.0), padded(spikes, NUM_STEPS + 3), NUM_STEPS + 3)
    output = net.layers[-1].name
    assert not np.array_equal(events[output].raster()[:, 3:3 + NUM_STEPS], expected[-1])


def test_an_if_layer_steps_alike_under_euler_and_exponential():
    """An IF has no leak: both simulator steps add dt r x, so an all-IAF network discretizes identically."""
    graph = sinabs_graph(sinabs_layers(3, ("iaf", "iaf", "iaf")))
    networks = [discretize(from_graph(graph, {**SEMANTICS, "integration": integration}), 1.0)
                for integration in ("euler", "exponential")]
    for euler, exponential in zip(*(n.populations for n in networks)):
        assert euler.name == exponential.name
        for field in ("alpha_u", "alpha_v", "drive", "threshold"):
            np.testing.assert_array_equal(getattr(euler, field), getattr(exponential, field))
        for (source_e, gain_e), (source_x, gain_x) in zip(euler.inputs, exponential.inputs):
            assert source_e == source_x
            np.testing.assert_array_equal(gain_e, gain_x)


def test_the_command_line_compiles_and_verifies_a_sinabs_lif_graph(tmp_path, capsys):
    """``--integration exponential`` from the command line: the bundle holds it and the pipeline latency, and
    verify on the raster the float reference was shown equal to sinabs on (above) passes."""
    from snn_deploy.deploy.interfaces.cli import main
    from snn_deploy.targets import bundle as bundle_io

    layers = sinabs_layers(0, ("lif", "lif", "lif"))
    nir.write(tmp_path / "sinabs.nir", sinabs_graph(layers))
    spikes = input_spikes(0)
    np.savez(tmp_path / "test.npz", spikes=spikes)
    assert main(["compile", str(tmp_path / "sinabs.nir"), "-o", str(tmp_path / "sinabs.bundle"), "--dt", "1",
                 "--time-unit", "step", "--multi-spike", "--reset", "subtract", "--decoding", "spike_count_argmax",
                 "--spike", "pulse", "--integration", "exponential", "--duration", str(NUM_STEPS),
                 "--split-weights", "-q"]) == 0
    bundle = bundle_io.load(tmp_path / "sinabs.bundle")
    assert bundle.source.semantics["integration"] == "exponential" and bundle.timing.latency_steps == 3
    assert main(["verify", str(tmp_path / "sinabs.nir"), str(tmp_path / "sinabs.bundle"), "--data",
                 str(tmp_path / "test.npz"), "--json", str(tmp_path / "verdict.json")]) == 0
    assert "PASS" in capsys.readouterr().out


def test_a_cubalif_steps_by_exponential_euler():
    """NIR's CubaLIF under ``exponential`` (no sinabs export writes one: the formula as the semantics state it):
    I <- a_s I + (1 - a_s) w_in x, then v <- a_m v + (1 - a_m) (v_leak + r I), the input x = W z held over the
    step, here with v_leak = 0, one spike in the second step and the membrane never reaching its threshold. The
    float reference's v is this, one step later (the layer's depth), to float64 rounding."""
    tau_syn, tau_mem, r, w_in, weight = 3.0, 5.0, 1.5, 0.7, 2.0
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])), "fc": nir.Linear(weight=np.array([[weight]])),
               "lif": nir.CubaLIF(tau_syn=np.array([tau_syn]), tau_mem=np.array([tau_mem]), r=np.array([r]),
                                  v_leak=np.zeros(1), v_threshold=np.array([100.0]), w_in=np.array([w_in])),
               "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    net = from_graph(graph, {**SEMANTICS, "horizon": 12, "integration": "exponential"})
    z = np.zeros(12)
    z[1] = 1.0
    a_s, a_m, current, v, expected = np.exp(-1 / tau_syn), np.exp(-1 / tau_mem), 0.0, 0.0, []
    for step in range(12):
        current = a_s * current + (1 - a_s) * w_in * weight * z[step]
        v = a_m * v + (1 - a_m) * r * current
        expected.append(v)
    _, _, traces = discrete.run(discretize(net, 1.0), padded(z.astype(bool)[None, :, None], 13), 13,
                                record_state=True)
    np.testing.assert_allclose(traces["lif"]["v"][0, 1:, 0], expected, rtol=1e-12, atol=0)
