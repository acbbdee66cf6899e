"""NIR graphs written by other tools (../shared/reference): compiled with their semantics stated,
run on bitsim, checked against ground truth; malformed or unsupported graphs refused by name."""

import math

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.errors import DeployError
from snn_deploy.targets import bitsim, description
from snn_deploy.targets.record import SpikeEvents

CHIP_OUTPUT_ROWS = [461, 511, 711, 761]  # lif_lava_loihi_fixed.csv, recorded on Loihi 2


def _semantics(spike: str) -> dict:
    # These graphs carry no snn-deploy metadata: every choice is stated, as a user states it with options.
    return {"time_unit": "s", "fire_once": False, "reset": "zero", "decoding": "spike_count", "horizon": 0.1,
            "spike": spike, "integration": "exact"}


def _run(path, spike: str, input_raster: np.ndarray, dt: float = 1e-4):
    net = load_graph(path, _semantics(spike))
    bundle = compile_network(net, description.load("loihi2"), dt=dt)
    inputs = SpikeEvents.from_raster(input_raster[None, :bundle.timing.num_steps])
    chip = bitsim.run(bundle, inputs)
    discrete = reference.simulate(discretize(net, dt), inputs, bundle.timing.num_steps)
    return net, bundle, chip, discrete


def test_norse_lif_graph_reproduces_the_loihi2_output_spikes(reference_dir):
    folder = reference_dir / "nir-paper-lif"
    table = np.loadtxt(folder / "lif_lava_loihi_fixed.csv", delimiter=",")
    net, bundle, chip, discrete = _run(folder / "lif_norse.nir", "pulse", table[:, :1].astype(bool))
    assert net.layers[0].kind == "LIF"
    pop = bundle.network.populations[0]
    assert pop.du[0] == 4095  # a LIF has no synaptic current: u holds one step's input
    assert pop.dv[0] == round(4096 * (1 - math.exp(-1e-4 / 0.0025)))  # 161
    rows = chip.spikes["1"].events[1] - 1  # steps count from 1, CSV rows from 0
    assert list(rows) == CHIP_OUTPUT_ROWS
    np.testing.assert_array_equal(discrete["1"].events, chip.spikes["1"].events)


def test_reading_the_same_spikes_as_dirac_impulses_would_be_a_different_network(reference_dir):
    """Why --spike is never defaulted: as an impulse of area 1, each input spike lifts this LIF by
    r w / tau = 400 against a threshold of 0.1, so it fires on every input."""
    folder = reference_dir / "nir-paper-lif"
    table = np.loadtxt(folder / "lif_lava_loihi_fixed.csv", delimiter=",")
    _, _, chip, _ = _run(folder / "lif_norse.nir", "dirac", table[:, :1].astype(bool))
    assert chip.spikes["1"].events.shape[1] == int(table[:, 0].sum()) == 34


def test_bias_driven_lif_fires_with_the_analytic_period(reference_dir):
    """two_lif_neurons.nir: lif1 has v_leak = 1.2 > threshold 1 and no input, so it charges as
    v = 1.2 (1 - e^(-t/tau)) and fires when that passes 1, after tau ln 6; then again after each
    reset. With dt snapped so the 12-bit decay is exact, the float discrete model fires every
    ceil(tau ln 6 / dt) steps exactly.

    The chip cannot be exact here, and the compile report shows why: lif1's input weight is 99
    times its threshold, and an 8-bit weight mantissa shares the neuron's scale with the threshold
    and the bias, which are left with a few hundred levels (a 0.7% error in the resting level at
    most). The chip's period must stay within 2% of the formula and be constant."""
    path = reference_dir / "nir-paper-graphs" / "two_lif_neurons.nir"
    net = load_graph(path, _semantics("dirac"))
    bundle = compile_network(net, description.load("loihi2"), steps_per_tau=100)  # tau 10 ms: dt ~ 0.1 ms, snapped
    dt, steps = bundle.timing.dt, bundle.timing.num_steps
    assert bundle.report.snapped_dt and abs(dt - 1e-4) < 1e-6
    inputs = SpikeEvents.from_raster(np.zeros((1, steps, 1), bool))
    discrete = reference.simulate(discretize(net, dt), inputs, steps)
    period = math.ceil(0.01 * math.log(6) / dt)
    assert list(discrete["lif1"].events[1]) == [period * k for k in range(1, steps // period + 1)]

    report = bundle.report.quantization["lif1"]
    assert report.vth < 1000 and report.decay_v_error < 1e-15
    chip_steps = bitsim.run(bundle, inputs).spikes["lif1"].events[1]
    chip_period = chip_steps[0]
    assert abs(chip_period - period) <= 0.02 * period
    assert list(chip_steps) == [chip_period * k for k in range(1, len(chip_steps) + 1)]


def test_a_given_dt_keeps_the_resting_level_where_the_decay_is_not_exact(reference_dir):
    """At dt = 0.1 ms exactly, 4096 (1 - e^-0.01) = 40.76 rounds to 41: the chip decays 0.6% faster.
    Its bias is set from its own decay, so v still settles at v_leak, and the period stays within
    the same 2% as with an exact decay."""
    path = reference_dir / "nir-paper-graphs" / "two_lif_neurons.nir"
    _, bundle, chip, discrete = _run(path, "dirac", np.zeros((1000, 1), bool))
    first_chip, first_float = chip.spikes["lif1"].events[1][0], discrete["lif1"].events[1][0]
    assert first_float == 180 and abs(first_chip - first_float) <= 0.02 * first_float


def test_rockpool_graph_that_fails_nirs_type_check_is_refused_naming_the_file(reference_dir):
    with pytest.raises(DeployError, match=r"lif_rockpool.nir is a malformed NIR graph: Type inference error"):
        load_graph(reference_dir / "nir-paper-lif" / "lif_rockpool.nir", _semantics("dirac"))


def test_a_node_type_the_chip_cannot_run_is_refused_by_name_and_type(tmp_path):
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.eye(2)),
               "step": nir.Threshold(threshold=np.ones(2)), "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "step"), ("step", "output")])
    nir.write(tmp_path / "threshold.nir", graph)
    with pytest.raises(DeployError, match="node step is a Threshold, which the target cannot run"):
        load_graph(tmp_path / "threshold.nir", _semantics("pulse"))


def test_threshold_is_refused_with_the_reason():
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.eye(2)),
               "step": nir.Threshold(threshold=np.ones(2)), "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "step"), ("step", "output")])
    with pytest.raises(DeployError, match="fires only from a neuron's membrane"):
        from_graph(graph, _semantics("pulse"))


def _lif(size: int, seed: int) -> nir.LIF:
    rng = np.random.default_rng(seed)
    tau = rng.uniform(2e-3, 5e-3, size)
    return nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(size), v_threshold=rng.uniform(0.5, 1.0, size))  # snnTorch's r


def _recurrent_graphs() -> tuple[nir.NIRGraph, nir.NIRGraph]:
    """Input(3) -> Affine -> a recurrent LIF(4) -> Affine -> LIF(2) -> Output, once with the recurrent layer as a
    nested subgraph (the form NIR allows and snnTorch's RLeaky export builds before nirtorch flattens it), once
    flat with the names nirtorch gives (``1.lif``, ``1.w_rec``)."""
    rng = np.random.default_rng(3)
    fc1 = nir.Affine(weight=rng.uniform(-1, 3, (4, 3)), bias=rng.uniform(0, 0.2, 4))
    w_rec = nir.Linear(weight=rng.uniform(-1.5, 1.0, (4, 4)))
    fc2 = nir.Affine(weight=rng.uniform(-1, 3, (2, 4)), bias=np.zeros(2))
    outer = {"input": nir.Input(np.array([3])), "0": fc1, "2": fc2, "3": _lif(2, 1), "output": nir.Output(np.array([2]))}
    sub = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "lif": _lif(4, 0), "w_rec": w_rec,
                              "output": nir.Output(np.array([4]))},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    nested = nir.NIRGraph(nodes={**outer, "1": sub},
                          edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "output")])
    flat = nir.NIRGraph(nodes={**outer, "1.lif": sub.nodes["lif"], "1.w_rec": w_rec},
                        edges=[("input", "0"), ("0", "1.lif"), ("1.lif", "1.w_rec"), ("1.w_rec", "1.lif"),
                               ("1.lif", "2"), ("2", "3"), ("3", "output")])
    return nested, flat


def test_a_nested_subgraph_is_inlined_as_the_flat_graph_it_stands_for(tmp_path):
    """Written to a file and read back (nir.read keeps the nesting), the nested graph compiles to the same
    integers as the flat one and runs to the same spikes; the recurrent projection is there."""
    nested, flat = _recurrent_graphs()
    nir.write(tmp_path / "nested.nir", nested)
    assert isinstance(nir.read(tmp_path / "nested.nir").nodes["1"], nir.NIRGraph)
    semantics = {**_semantics("pulse"), "integration": "euler"}
    bundles = [compile_network(net, description.load("loihi2"), dt=1e-4, calibrate=None)
               for net in (load_graph(tmp_path / "nested.nir", semantics), from_graph(flat, semantics))]
    a, b = (bundle.network for bundle in bundles)
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    assert {c.name for c in a.connections} == {c.name for c in b.connections} >= {"1.lif->1.lif"}
    for x, y in zip(a.populations, b.populations):
        for key in ("du", "dv", "vth", "bias_mant"):
            np.testing.assert_array_equal(getattr(x, key), getattr(y, key))
    for x in a.connections:
        np.testing.assert_array_equal(x.weights, next(c for c in b.connections if c.name == x.name).weights)
    inputs = SpikeEvents.from_raster(np.random.default_rng(0).random((4, bundles[0].timing.num_steps, 3)) < 0.3)
    runs = [bitsim.run(bundle, inputs) for bundle in bundles]
    for name in ("1.lif", "3"):
        np.testing.assert_array_equal(runs[0].spikes[name].events, runs[1].spikes[name].events)
    assert all(len(runs[0].spikes[name].events[0]) > 0 for name in ("1.lif", "3"))


@pytest.mark.parametrize("change, message", [
    (lambda sub: sub.nodes.update(extra=nir.Input(np.array([4]))), "subgraph 1 needs exactly one Input"),
    (lambda sub: sub.edges.append(("input", "output")), "passes its Input straight to its Output"),
])
def test_a_subgraph_that_cannot_be_inlined_is_refused(change, message):
    nested, _ = _recurrent_graphs()
    change(nested.nodes["1"])
    with pytest.raises(DeployError, match=message):
        from_graph(nested, _semantics("pulse"))
