"""The float NIR interpreter (``reference.discrete``) against snnTorch 1.0.0 and norse 1.1.0: each
tool exports a small net to NIR, simulates it itself, and the interpreter reads the file and must
fire the same spikes wherever the two semantics coincide (exact rasters, float32 vs float64).

Alignment: snnTorch and norse run a feed-forward chain within one step, while on the chip every
projection delivers one step later. A layer at depth d that fires at the tool's step t (0-based)
fires at chip step t + d + 1, i.e. at raster index t + d.

Robustness: in every exact comparison below no membrane comes within 1e-4 of its threshold
(measured on these seeds; the Leaky nets' closest, snnTorch's float32 membrane, is 2.1e-4 away),
far above float32 rounding, so no spike can flip on precision.
"""

import os
import warnings

import numpy as np
import pytest

try:
    import nir
    import snntorch
    import snntorch.utils
    import torch
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # norse still calls torch.jit.script
        import norse.torch as norse
except ImportError as exc:
    if os.environ.get("CI") == "true":
        raise  # CI must run these tests: tools/env.sh installs the simulators
    pytest.skip(f"snnTorch/norse not installed (tools/env.sh installs them; under CI this fails): {exc}",
                allow_module_level=True)

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.stages.compile import choose_timing
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.errors import DeployError
from snn_deploy.targets import bitsim, description

from helpers import assert_lava_matches_bitsim, padded

# Both exporters still call nirtorch's deprecated extract_nir_graph.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SNNTORCH_DT = 1e-4  # hard-coded in snnTorch's exporter
NORSE_DT = 1e-3  # norse's default, passed to its cells and to to_nir
NUM_SAMPLES, NUM_STEPS = 8, 40
SEMANTICS = {"time_unit": "s", "fire_once": False, "decoding": "spike_count", "spike": "pulse",
             "integration": "euler"}


def input_spikes(seed: int) -> np.ndarray:
    """Random 0/1 input, (samples, steps, 3)."""
    return np.random.default_rng(seed).random((NUM_SAMPLES, NUM_STEPS, 3)) < 0.5


def imported(path, dt: float, reset: str, spikes: np.ndarray):
    """The float network read from the file, with a horizon of the input's steps."""
    return load_graph(path, {**SEMANTICS, "reset": reset, "horizon": spikes.shape[1] * dt})


def interpret(path, dt: float, reset: str, spikes: np.ndarray) -> dict[str, np.ndarray]:
    """The interpreter's raster of every layer over the run the compiler chooses for a horizon of the
    input's steps: the pipeline latency (the output layer's depth) added, so the deepest layer sees all
    input."""
    net = imported(path, dt, reset, spikes)
    timing = choose_timing(net, dt=dt, decay_bits=12)
    assert timing.num_steps == spikes.shape[1] + timing.latency_steps
    events = reference.simulate(discretize(net, dt), padded(spikes, timing.num_steps), timing.num_steps)
    return {layer.name: events[layer.name].raster() for layer in net.layers}


def assert_same_spikes(interpreted: np.ndarray, simulated: np.ndarray, depth: int, layer: str) -> None:
    """Equal after the depth shift, and nothing fired before the first input could arrive."""
    assert not interpreted[:, :depth].any(), f"layer {layer} fired before its input arrived"
    np.testing.assert_array_equal(interpreted[:, depth:depth + simulated.shape[1]], simulated, err_msg=f"layer {layer}")


def simulate(net, spikes: np.ndarray, neuron_types: tuple) -> dict[int, np.ndarray]:
    """The tool's own run: raster (samples, steps, neurons) of each neuron module, by Sequential index.
    snnTorch keeps its state in the modules: reset it first (``snntorch.utils.reset``)."""
    states = {index: None for index, module in enumerate(net) if isinstance(module, neuron_types)}
    rasters = {index: [] for index in states}
    with torch.no_grad():
        for step in range(spikes.shape[1]):
            current = torch.from_numpy(spikes[:, step]).float()
            for index, module in enumerate(net):
                if isinstance(module, norse.LIFCell):
                    current, states[index] = module(current, states[index])
                else:
                    current = module(current)
                if index in rasters:
                    rasters[index].append(current.numpy() > 0)
    return {index: np.stack(steps, axis=1) for index, steps in rasters.items()}


# ---------------------------------------------------------------------------------------- snnTorch


def synaptic(size: int, recurrent: bool = False, beta_scale: float = 1.0, **reset):
    """A Synaptic (or RSynaptic) layer with per-neuron parameters: the exporter rejects 0-d ones."""
    params = {"alpha": torch.linspace(0.5, 0.7, size), "beta": beta_scale * torch.linspace(0.75, 0.85, size),
              "threshold": torch.linspace(0.9, 1.1, size), "init_hidden": True, **reset}
    return snntorch.RSynaptic(linear_features=size, **params) if recurrent else snntorch.Synaptic(**params)


def snntorch_net(seed: int, output_bias: bool = False, hidden=None, **reset):
    """Linear(3, 4) with its bias -> hidden -> Linear(4, 2) -> Synaptic; the output Linear's bias is
    zero unless asked for."""
    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    with torch.no_grad():
        fc1.weight.mul_(3.0)
        fc2.weight.mul_(6.0)
        if output_bias:
            fc2.bias.add_(0.5)  # one step of it too early or late flips several output spikes
        else:
            fc2.bias.zero_()
    return torch.nn.Sequential(fc1, hidden or synaptic(4, **reset), fc2, synaptic(2, **reset))


def export_snntorch(net, path):
    nir.write(path, export_to_nir(net, torch.zeros(NUM_SAMPLES, 3), ignore_dims=[0]))
    snntorch.utils.reset(net)  # the export ran a forward pass
    return path


NIR_RESET = {"reset_mechanism": "zero", "reset_delay": False}  # immediate reset to 0: NIR's literal semantics


def test_snntorch_feed_forward_matches_interpreter(tmp_path):
    """Both Linear layers have biases: the depth-2 layer's comes from a relay of the constant source that
    starts one step later, with that layer's first input (deploy/quantize.discrete_layers)."""
    net = snntorch_net(seed=1, output_bias=True, **NIR_RESET)
    path = export_snntorch(net, tmp_path / "synaptic.nir")
    spikes = input_spikes(seed=1)
    simulated = simulate(net, spikes, (snntorch.Synaptic,))
    interpreted = interpret(path, SNNTORCH_DT, "zero", spikes)
    assert list(interpreted) == ["1", "3"]
    assert simulated[1].sum() > 50 and simulated[3].sum() > 20  # both layers busy, with many resets
    assert_same_spikes(interpreted["1"], simulated[1], depth=1, layer="1")
    assert_same_spikes(interpreted["3"], simulated[3], depth=2, layer="3")


def test_snntorch_default_reset_is_not_in_the_file(tmp_path):
    """snnTorch's default reset (subtract, one step late) exports the same file as NIR's reset, and
    reading that file with reset "subtract" (immediate) does not reproduce it: --reset must be stated,
    and snnTorch's delayed reset has no NIR equivalent."""
    default = snntorch_net(seed=1)
    assert (default[1].reset_mechanism, default[1].reset_delay) == ("subtract", True)
    default_graph = export_to_nir(default, torch.zeros(NUM_SAMPLES, 3), ignore_dims=[0])
    nir_graph = export_to_nir(snntorch_net(seed=1, **NIR_RESET), torch.zeros(NUM_SAMPLES, 3), ignore_dims=[0])
    for name in ("1", "3"):
        for field in ("tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold", "v_reset"):
            np.testing.assert_array_equal(getattr(default_graph.nodes[name], field),
                                          getattr(nir_graph.nodes[name], field), err_msg=f"{name}.{field}")
    nir.write(tmp_path / "default.nir", default_graph)
    snntorch.utils.reset(default)
    spikes = input_spikes(seed=1)
    simulated = simulate(default, spikes, (snntorch.Synaptic,))
    interpreted = interpret(tmp_path / "default.nir", SNNTORCH_DT, "subtract", spikes)
    assert not np.array_equal(interpreted["1"][:, 1:1 + NUM_STEPS], simulated[1])


def test_snntorch_recurrent_wiring_matches_interpreter(tmp_path):
    """RSynaptic exports a recurrent Affine (weights and bias, one step of delay: nirtorch flattens the
    subgraph into '1.lif', '1.w_rec'). Its reset_delay=False is broken in snnTorch 1.0.0, and its
    delayed zero reset drops the membrane of the step after a spike. With beta = 0 the membrane is
    just the current, so that drop changes nothing unless a neuron fires on consecutive steps, which
    self-inhibition prevents (asserted): then snnTorch and NIR's immediate reset agree exactly."""
    hidden = synaptic(4, recurrent=True, beta_scale=0.0, reset_mechanism="zero", reset_delay=True)
    net = snntorch_net(seed=1, hidden=hidden, **NIR_RESET)
    with torch.no_grad():
        hidden.recurrent.weight.mul_(2.0)
        hidden.recurrent.weight.fill_diagonal_(-4.0)
    path = export_snntorch(net, tmp_path / "rsynaptic.nir")
    spikes = input_spikes(seed=1)
    simulated = simulate(net, spikes, (snntorch.Synaptic, snntorch.RSynaptic))
    interpreted = interpret(path, SNNTORCH_DT, "zero", spikes)
    assert list(interpreted) == ["1.lif", "3"]
    assert not (interpreted["1.lif"][:, 1:] & interpreted["1.lif"][:, :-1]).any()
    assert_same_spikes(interpreted["1.lif"], simulated[1], depth=1, layer="1.lif")
    assert_same_spikes(interpreted["3"], simulated[3], depth=2, layer="3")
    # The recurrent projection matters: without it the hidden layer fires differently.
    with torch.no_grad():
        hidden.recurrent.weight.zero_()
        hidden.recurrent.bias.zero_()
    snntorch.utils.reset(net)
    assert not np.array_equal(simulate(net, spikes, (snntorch.RSynaptic,))[1], simulated[1])


def leaky(size: int):
    """A Leaky layer with per-neuron beta and threshold (the exporter writes 0-d arrays for scalars), NIR's reset."""
    return snntorch.Leaky(beta=torch.linspace(0.6, 0.9, size), threshold=torch.linspace(0.8, 1.2, size),
                          init_hidden=True, **NIR_RESET)


LEAKY_SIZES = (3, 6, 5, 4)  # Input(3) -> Linear -> Leaky(6) -> Linear -> Leaky(5) -> Linear -> Leaky(4)


def leaky_net(seed: int, sizes=LEAKY_SIZES):
    """Biased Linear -> Leaky layers: random weights of both signs, biases uniform in [-0.4, 0.4] (both
    signs, every layer)."""
    torch.manual_seed(seed)
    modules = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        linear = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.mul_(3.0).add_(0.4)  # mostly excitatory: every layer stays busy
            linear.bias.uniform_(-0.4, 0.4)
        modules += [linear, leaky(n_out)]
    return torch.nn.Sequential(*modules)


def test_snntorch_leaky_bias_starts_with_the_layers_first_input(tmp_path):
    """Linear(1, 1) of bias 0.3 -> Leaky(beta 0.9, threshold 1), no input: snnTorch's v = 0.9 v + 0.3 first
    exceeds 1 at its step 3 (0.3, 0.57, 0.813, 1.0317), then every 4 steps after the zero reset. A bias
    acting one step before the layer's first input (the chip's bias, from step 1) would fire at 2, 6, 10.
    The run covers the pipeline latency: the spike at the horizon's last step is on the chip too."""
    linear = torch.nn.Linear(1, 1)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(0.3)
    net = torch.nn.Sequential(linear, snntorch.Leaky(beta=torch.tensor([0.9]), threshold=torch.tensor([1.0]),
                                                     init_hidden=True, **NIR_RESET))
    nir.write(tmp_path / "bias.nir", export_to_nir(net, torch.zeros(1, 1), ignore_dims=[0]))
    snntorch.utils.reset(net)
    silence = np.zeros((1, 16, 1), bool)
    simulated = simulate(net, silence, (snntorch.Leaky,))[1]
    assert list(np.flatnonzero(simulated[0, :, 0])) == [3, 7, 11, 15]
    interpreted = interpret(tmp_path / "bias.nir", SNNTORCH_DT, "zero", silence)["1"]
    assert_same_spikes(interpreted, simulated, depth=1, layer="1")
    bundle = compile_network(imported(tmp_path / "bias.nir", SNNTORCH_DT, "zero", silence), description.load("loihi2"),
                             dt=SNNTORCH_DT)
    assert (bundle.timing.num_steps, bundle.timing.latency_steps) == (17, 1)
    chip = bitsim.run(bundle, padded(silence, bundle.timing.num_steps)).spikes["1"].raster()
    assert chip[0, -1, 0]  # snnTorch's step 15, the horizon's last
    assert_same_spikes(chip, simulated, depth=1, layer="1")


LEAKY_LAYERS = (("1", 1), ("3", 3), ("5", 5))  # (NIR node, Sequential index) of each Leaky, by depth


def leaky_case(tmp_path, seed: int):
    """A biased Leaky net of this seed, exported by snnTorch: (its file, the input, snnTorch's own rasters)."""
    net = leaky_net(seed)
    path = export_snntorch(net, tmp_path / "leaky.nir")
    spikes = input_spikes(seed=10 + seed)
    return path, spikes, simulate(net, spikes, (snntorch.Leaky,))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_snntorch_leaky_layers_with_biases_match_interpreter(tmp_path, seed):
    """Three biased Linear -> Leaky layers, exported by snnTorch's own exporter: every layer's bias starts
    with the layer's first input at its depth (the constant source's relay ``constant.<depth>``), and
    every spike of every layer and sample is snnTorch's, after the depth shift."""
    path, spikes, simulated = leaky_case(tmp_path, seed)
    interpreted = interpret(path, SNNTORCH_DT, "zero", spikes)
    assert list(interpreted) == [name for name, _ in LEAKY_LAYERS]
    for depth, (name, index) in enumerate(LEAKY_LAYERS, start=1):
        # Every layer busy (at least 246 spikes on these seeds), far from firing in every step.
        assert 200 < simulated[index].sum() < 0.6 * simulated[index].size, f"layer {name}"
        assert_same_spikes(interpreted[name], simulated[index], depth=depth, layer=name)


def leaky_bundle(path, spikes):
    """The biased Leaky net compiled for loihi2 with split weights (about 14 bits, its biases too)."""
    net = imported(path, SNNTORCH_DT, "zero", spikes)
    return compile_network(net, description.load("loihi2"), dt=SNNTORCH_DT, split_weights=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_snntorch_leaky_layers_with_biases_run_spike_identical_on_the_chip(tmp_path, seed):
    """On the chip (bitsim) the same nets fire every spike of snnTorch too, on these seeds: 14-bit
    weights and biases move none (with 8-bit ones, measured, up to 31 of a layer's 246 to 1,080 do)."""
    path, spikes, simulated = leaky_case(tmp_path, seed)
    bundle = leaky_bundle(path, spikes)
    assert bundle.timing.latency_steps == 3 and bundle.timing.num_steps == NUM_STEPS + 3
    # Each layer's bias comes from the relay that starts with its first input.
    for name, source in (("1", "constant"), ("3", "constant.2"), ("5", "constant.3")):
        assert source in {conn.source for conn in bundle.network.connections if conn.target == name}
        assert not bundle.network.population(name).bias_mant.any()
    record = bitsim.run(bundle, padded(spikes, bundle.timing.num_steps))
    for depth, (name, index) in enumerate(LEAKY_LAYERS, start=1):
        assert_same_spikes(record.spikes[name].raster(), simulated[index], depth=depth, layer=name)


def test_snntorch_leaky_bundle_runs_bit_exact_on_lava(tmp_path, lava_python):
    """The relays are ordinary populations: Lava runs the biased Leaky bundle exactly as bitsim does."""
    path, spikes, _ = leaky_case(tmp_path, seed=0)
    bundle = leaky_bundle(path, spikes)
    assert_lava_matches_bitsim(bundle, padded(spikes, bundle.timing.num_steps), context="biased Leaky net")


# ------------------------------------------------------------------------------------------- norse


def norse_net(seed: int, v_reset: float = 0.0):
    """SequentialState(Linear, LIFCell, Linear, LIFCell), per-neuron parameters, v_leak = 0 (norse's
    v starts at v_leak, the interpreter's at 0). The output Linear has no bias."""
    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    with torch.no_grad():
        fc1.weight.mul_(15.0)
        fc1.bias.add_(1.0)
        fc2.weight.mul_(15.0)
        fc2.bias.zero_()

    def cell(size):
        params = norse.LIFParameters(tau_syn_inv=torch.linspace(300.0, 500.0, size),
                                     tau_mem_inv=torch.linspace(150.0, 250.0, size), v_leak=torch.zeros(size),
                                     v_th=torch.linspace(0.9, 1.1, size), v_reset=torch.full((size,), v_reset),
                                     method="heaviside")
        return norse.LIFCell(params, dt=NORSE_DT)

    return norse.SequentialState(fc1, cell(4), fc2, cell(2))


def export_norse(net) -> nir.NIRGraph:
    # An unbatched sample: to_nir has no ignore_dims, and a batched Input type fails nir.read.
    return norse.to_nir(net, torch.zeros(3), dt=NORSE_DT)


def test_norse_exporter_bugs():
    """tau is written as dt * tau, w_in is not written (NIR's default 1), v_reset is not written (0)."""
    net = norse_net(seed=4, v_reset=-0.1)
    graph = export_norse(net)
    for name, cell in (("1", net[1]), ("3", net[3])):
        node = graph.nodes[name]
        np.testing.assert_allclose(node.tau_syn, NORSE_DT / cell.p.tau_syn_inv.numpy(), rtol=1e-6)
        np.testing.assert_allclose(node.tau_mem, NORSE_DT / cell.p.tau_mem_inv.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(node.w_in, 1.0)
        np.testing.assert_array_equal(node.r, 1.0)
        np.testing.assert_array_equal(node.v_reset, 0.0)


def tau_corrected(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The true tau is the written one / dt."""
    for name in ("1", "3"):
        node = graph.nodes[name]
        node.tau_syn = np.asarray(node.tau_syn) / NORSE_DT
        node.tau_mem = np.asarray(node.tau_mem) / NORSE_DT
    return graph


def corrected(graph: nir.NIRGraph, net) -> nir.NIRGraph:
    """All three bugs undone: tau; w_in = tau_syn / dt, which makes NIR's Euler input gain
    dt / tau_syn * w_in equal to norse's 1; and v_reset, which is the model's."""
    tau_corrected(graph)
    for name, cell in (("1", net[1]), ("3", net[3])):
        node = graph.nodes[name]
        node.w_in = node.tau_syn / NORSE_DT
        node.v_reset = cell.p.v_reset.numpy()
    return graph


def test_norse_matches_interpreter_after_corrections(tmp_path):
    net = norse_net(seed=4)
    spikes = input_spikes(seed=2)
    simulated = simulate(net, spikes, (norse.LIFCell,))
    assert simulated[1].sum() > 50 and simulated[3].sum() > 20

    nir.write(tmp_path / "literal.nir", export_norse(net))
    with pytest.raises(DeployError, match="exceeds a time constant"):  # the written tau is dt * tau << dt
        interpret(tmp_path / "literal.nir", NORSE_DT, "zero", spikes)

    nir.write(tmp_path / "tau_only.nir", tau_corrected(export_norse(net)))
    interpreted = interpret(tmp_path / "tau_only.nir", NORSE_DT, "zero", spikes)
    assert not np.array_equal(interpreted["1"][:, 1:1 + NUM_STEPS], simulated[1])  # w_in = 1 is too weak

    nir.write(tmp_path / "corrected.nir", corrected(export_norse(net), net))
    interpreted = interpret(tmp_path / "corrected.nir", NORSE_DT, "zero", spikes)
    assert list(interpreted) == ["1", "3"]
    assert_same_spikes(interpreted["1"], simulated[1], depth=1, layer="1")
    assert_same_spikes(interpreted["3"], simulated[3], depth=2, layer="3")
