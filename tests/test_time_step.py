"""The time step: the compiler chooses it (about tau / --steps-per-tau, tau the graph's most common time constant)
only where the model leaves it free; under a simulator's step (euler, exponential) it is the simulator's and must
be given, except where time is counted in steps."""

import math

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.targets import description

LOIHI2 = description.load("loihi2")


def lif_graph(tau_mem: np.ndarray) -> nir.NIRGraph:
    """Input(3) -> Affine -> LIF(2) -> Output, as snnTorch writes a Leaky layer (r = tau_mem / dt for dt 1e-4)."""
    size = tau_mem.size
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Affine(weight=np.full((size, 3), 0.5), bias=np.zeros(size)),
        "lif": nir.LIF(tau=tau_mem, r=tau_mem / 1e-4, v_leak=np.zeros(size), v_threshold=np.ones(size)),
        "output": nir.Output(output_type=np.array([size]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def semantics(integration: str, time_unit: str = "s") -> dict:
    return {"time_unit": time_unit, "fire_once": False, "reset": "zero", "decoding": "spike_count",
            "horizon": 2.5e-3 if time_unit == "s" else 25, "spike": "pulse", "integration": integration}


def test_the_chosen_step_is_about_tau_over_steps_per_tau_in_any_time_unit():
    """tau = 1 ms in seconds: 128 steps per tau is dt ~ 7.8 us (not 1/128 s, a run of one step), snapped so that
    4096 (1 - e^(-dt/tau)) is the integer 32."""
    net = from_graph(lif_graph(np.full(2, 1e-3)), semantics("exact"))
    bundle = compile_network(net, LOIHI2)
    assert bundle.report.snapped_dt
    assert bundle.timing.dt == -1e-3 * math.log1p(-32 / 4096)
    assert bundle.timing.num_steps == math.ceil(2.5e-3 / bundle.timing.dt)
    unsnapped = compile_network(net, LOIHI2, steps_per_tau=100, snap_decay=False)
    assert unsnapped.timing.dt == 1e-3 / 100 and not unsnapped.report.snapped_dt


def test_a_simulator_step_must_be_given_unless_time_is_counted_in_steps(tmp_path, capsys):
    net = from_graph(lif_graph(np.full(2, 1e-3)), semantics("euler"))
    with pytest.raises(DeployError, match=r"^--integration euler runs the network at the step its simulator took, "
                                          r"which the graph does not record: give it with --dt"):
        compile_network(net, LOIHI2)
    assert compile_network(net, LOIHI2, dt=1e-4).timing.dt == 1e-4

    in_steps = from_graph(lif_graph(np.full(2, 10.0)), semantics("exponential", time_unit="step"))
    bundle = compile_network(in_steps, LOIHI2)
    assert bundle.timing.dt == 1.0 and not bundle.report.snapped_dt

    nir.write(tmp_path / "leaky.nir", lif_graph(np.full(2, 1e-3)))
    argv = ["compile", str(tmp_path / "leaky.nir"), "--time-unit", "s", "--multi-spike", "--reset", "zero",
            "--decoding", "spike_count", "--duration", "2.5e-3", "--spike", "pulse", "--integration", "euler",
            "-o", str(tmp_path / "leaky.bundle")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("snn-deploy compile: error: --integration euler runs the network")
    assert not (tmp_path / "leaky.bundle").exists()


def test_an_euler_tau_one_float32_rounding_below_dt_is_dt():
    """snnTorch writes tau = dt / (1 - beta) in float32: beta = 0 gives 9.99999975e-05 for dt = 1e-4. That is a
    neuron without memory (decay 0), not a step longer than its time constant."""
    tau = np.full(2, np.float32(1e-4), dtype=np.float32).astype(np.float64)
    assert tau[0] < 1e-4
    net = from_graph(lif_graph(tau), semantics("euler"))
    layer = discretize(net, 1e-4).population("lif")
    assert np.array_equal(layer.alpha_v, np.zeros(2))
    compile_network(net, LOIHI2, dt=1e-4)
    with pytest.raises(DeployError, match=r"the Euler step dt = 0\.000100001 exceeds a time constant "
                                          r"\(9\.99999975e-05\)"):
        discretize(net, 1.00001e-4)


def test_the_tau_of_steps_per_tau_is_the_membranes():
    """yinyang-multispike has as many tau_syn = 1/2 as tau_mem = 1 (time in tau_mem): 128 steps per tau_mem, the
    step snapped for the equally common tau_syn: 4096 (1 - e^(-2 / 128)) = 63.50 rounds to 64: 127.0 steps per tau."""
    from snn_deploy.deploy.stages.export import to_nir
    from snn_deploy.models import zoo

    bundle = compile_network(from_graph(to_nir(zoo.load("yinyang-multispike"))), LOIHI2)
    assert bundle.timing.dt == -0.5 * math.log1p(-64 / 4096)
    assert round(1 / bundle.timing.dt, 3) == 126.997


def test_the_step_snntorchs_export_implies_is_named_when_missing_or_contradicted(tmp_path, capsys):
    """snnTorch writes r = tau / dt for its hard-coded dt = 1e-4 s (lif_graph does too): a missing --dt names it, and
    another --dt compiles (it may be meant) with a note on stderr, even under --quiet."""
    taus = np.array([2e-4, 1e-3], dtype=np.float32).astype(np.float64)  # float32, as snnTorch computes them
    net = from_graph(lif_graph(taus), semantics("euler"))
    with pytest.raises(DeployError, match=r"give it with --dt \(its r = tau / dt holds for --dt 0\.0001, as "
                                          r"snnTorch's export writes it\)$"):
        compile_network(net, LOIHI2)
    nir.write(tmp_path / "leaky.nir", lif_graph(taus))
    argv = ["compile", str(tmp_path / "leaky.nir"), "--time-unit", "s", "--multi-spike", "--reset", "zero",
            "--decoding", "spike_count", "--duration", "2.5e-3", "--spike", "pulse", "--integration", "euler", "-q"]
    assert main([*argv, "--dt", "1e-4", "-o", str(tmp_path / "right.bundle")]) == 0
    assert capsys.readouterr().err == ""
    assert main([*argv, "--dt", "1e-5", "-o", str(tmp_path / "other.bundle")]) == 0
    assert capsys.readouterr().err.strip() == (
        "snn-deploy compile: note: this graph's r = tau / dt (as snnTorch's export writes it) holds for dt = 0.0001, "
        "not the 1e-05 of this compile: at another dt its inputs are scaled otherwise; check --dt")

    nir_default = lif_graph(taus)
    nir_default.nodes["lif"].r[:] = 1.0  # NIR's default r: no step implied
    with pytest.raises(DeployError, match=r"\(snnTorch's default export: --dt 1e-4 with --time-unit s\)$"):
        compile_network(from_graph(nir_default, semantics("euler")), LOIHI2)
