"""NIR graphs written by other tools (../shared/reference): compiled with their semantics stated,
run on bitsim, checked against ground truth; malformed or unsupported graphs refused by name."""

import math

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph
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
    bundle = compile_network(net, description.load("loihi2"), steps_per_tau=10_000)  # dt ~ 0.1 ms, snapped
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
