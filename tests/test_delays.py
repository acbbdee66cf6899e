"""Delay nodes (NIR >= 1.0.5, y(t) = x(t - d)) through the pipeline: the schedule's timing, both bitsim engines on
generated delay networks, the float reference against a direct simulation of a hand-built graph, the bundle's
per-synapse delays, and the refusals.

snnTorch 1.0.0's NIR export writes no Delay node (snntorch/export_nir.py has none), so the float reference is
checked against a direct simulation of NIR's equations written here, not against snnTorch.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.deploy import compile_network
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.references import discrete as discrete_reference
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.targets import bitsim, description
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bundle import DenseConnection, LifPopulation
from snn_deploy.targets.bundle import load as load_bundle
from snn_deploy.targets.record import SpikeEvents

from helpers import assert_records_equal, discrete_time_semantics
from networks import DELAY_STEPS, LOIHI2, make_bundle, networks

LOIHI2_TARGET = description.load("loihi2")
DT = 0.25  # dyadic, as every weight below: the direct simulation and the reference round alike (not at all)
TAU = 1.0


# --- the schedule's timing ----------------------------------------------------------------------

def _relay(name: str) -> LifPopulation:
    """A neuron that fires in every step it receives a spike of weight 255 (no leak kept, vth 1)."""
    return LifPopulation(name, 1, du=4095, dv=4095, vth=1, bias_mant=0)


@pytest.mark.parametrize("engine", bitsim.ENGINES)
@pytest.mark.parametrize("delay", [0, 1, 7, 63])
def test_a_spike_of_step_n_delayed_by_k_arrives_in_step_n_plus_1_plus_k(engine, delay):
    conn = DenseConnection("d", "input", "relay", np.full((1, 1), 255), delays=np.full((1, 1), delay))
    bundle = make_bundle(1, [_relay("relay")], [conn], num_steps=DELAY_STEPS)
    raster = np.zeros((1, DELAY_STEPS, 1), bool)
    raster[0, 2, 0] = True  # step 3
    record = bitsim.run(bundle, SpikeEvents.from_raster(raster), engine=engine)
    assert record.spikes["relay"].raster()[0, :, 0].nonzero()[0].tolist() == [3 + 1 + delay - 1]


@pytest.mark.parametrize("engine", bitsim.ENGINES)
@pytest.mark.parametrize("delay", [0, 4])
def test_a_self_loop_through_a_delay_of_k_closes_after_1_plus_k_steps(engine, delay):
    conns = [DenseConnection("in", "input", "loop", np.full((1, 1), 255)),
             DenseConnection("self", "loop", "loop", np.full((1, 1), 255), delays=np.full((1, 1), delay))]
    bundle = make_bundle(1, [_relay("loop")], conns, num_steps=30)
    raster = np.zeros((1, 30, 1), bool)
    raster[0, 0, 0] = True
    fired = bitsim.run(bundle, SpikeEvents.from_raster(raster), engine=engine).spikes["loop"].raster()[0, :, 0]
    steps = fired.nonzero()[0] + 1
    assert steps[0] == 2 and np.all(np.diff(steps) == 1 + delay)


# --- numpy engine against the compiled engine -----------------------------------------------------

@settings(max_examples=8, deadline=None)
@given(cases=st.tuples(networks(max_delay=63, recurrent=True), networks(max_delay=63, layers=4),
                       networks(max_delay=3, fire_once=True), networks(max_delay=5, reset=fx.RESET_SUBTRACT),
                       networks(max_delay=63, weight_exp_sign=-1), networks(max_delay=2)))
def test_compiled_engine_equals_the_numpy_engine_on_delay_networks(cases):
    """6 networks per example (8 examples): delays up to 63 with recurrence, 4 layers, fire-once, subtractive reset,
    negative exponents (each delay group's sum floors on its own), short delays."""
    for case in cases:
        expected = bitsim.run(case.bundle, case.inputs, record_state=True, engine=bitsim.REFERENCE)
        actual = bitsim.run(case.bundle, case.inputs, record_state=True, engine=bitsim.COMPILED)
        assert_records_equal(expected, actual, context=case.label)


# --- the float reference against a direct simulation ---------------------------------------------

def delay_graph(k_in: int, k_loop: int, k_out: np.ndarray, seed: int = 0) -> nir.NIRGraph:
    """Input(3) -> Affine -> Delay(k_in dt) -> LIF a(4), a -> Affine -> Delay(k_loop dt) -> a (recurrence), and
    a -> Delay(k_out dt, one delay per neuron of a) -> Affine -> LIF b(2) -> Output. Weights in eighths."""
    rng = np.random.default_rng(seed)
    eighths = lambda shape, low, high: rng.integers(low, high, shape) / 8  # noqa: E731
    lif = lambda n: nir.LIF(tau=np.full(n, TAU), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.3))  # noqa: E731
    nodes = {"input": nir.Input(np.array([3])),
             "w_in": nir.Affine(weight=eighths((4, 3), 0, 16), bias=np.zeros(4)),
             "delay_in": nir.Delay(delay=np.full(4, k_in * DT)),
             "a": lif(4),
             "w_loop": nir.Affine(weight=eighths((4, 4), -4, 6), bias=np.zeros(4)),
             "delay_loop": nir.Delay(delay=np.full(4, k_loop * DT)),
             "delay_out": nir.Delay(delay=np.asarray(k_out, float) * DT),
             "w_out": nir.Affine(weight=eighths((2, 4), 0, 12), bias=np.zeros(2)),
             "b": lif(2),
             "output": nir.Output(np.array([2]))}
    edges = [("input", "w_in"), ("w_in", "delay_in"), ("delay_in", "a"), ("a", "w_loop"), ("w_loop", "delay_loop"),
             ("delay_loop", "a"), ("a", "delay_out"), ("delay_out", "w_out"), ("w_out", "b"), ("b", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def direct_simulation(graph: nir.NIRGraph, inputs: np.ndarray, k_in: int, k_loop: int, k_out: np.ndarray) -> dict:
    """NIR's equations stepped by Euler at DT as snnTorch steps them (a feed-forward chain within one step, the
    recurrence from the step before), each Delay a shift by its steps: tau dv/dt = -v + r x, pulse spikes,
    spike when v > v_threshold, then v = 0. ``inputs``: (steps, 3). Spikes of a and b, (steps, size)."""
    n = graph.nodes
    steps = inputs.shape[0]
    a, b = np.zeros((steps, 4), bool), np.zeros((steps, 2), bool)
    va, vb = np.zeros(4), np.zeros(2)
    decay, gain = 1 - DT / TAU, DT / TAU

    def past(spikes: np.ndarray, j: int) -> np.ndarray:
        return spikes[j] if j >= 0 else np.zeros(spikes.shape[1], bool)

    for j in range(steps):
        x_a = n["w_in"].weight @ past(inputs, j - k_in) + n["w_loop"].weight @ past(a, j - 1 - k_loop)
        va = decay * va + gain * x_a
        a[j] = va > 0.3
        va = np.where(a[j], 0.0, va)
        delayed = np.array([past(a, j - int(k))[i] for i, k in enumerate(k_out)])
        vb = decay * vb + gain * (n["w_out"].weight @ delayed)
        b[j] = vb > 0.3
        vb = np.where(b[j], 0.0, vb)
    return {"a": a, "b": b}


SEMANTICS = discrete_time_semantics("s", 40 * DT)


@pytest.mark.parametrize("k_in, k_loop, k_out", [(0, 0, (0, 0, 0, 0)), (2, 3, (0, 1, 5, 2)), (5, 0, (9, 9, 9, 9))])
def test_the_float_reference_equals_a_direct_simulation_of_a_graph_with_delays(k_in, k_loop, k_out):
    graph = delay_graph(k_in, k_loop, np.array(k_out))
    net = from_graph(graph, SEMANTICS)
    discrete = discretize(net, DT)
    steps = discrete.num_steps
    rng = np.random.default_rng(1)
    raster = rng.random((2, steps, 3)) < 0.3
    record = discrete_reference.simulate(discrete, SpikeEvents.from_raster(raster), steps, engine=bitsim.REFERENCE)
    # The chip's layer at feed-forward depth d lags the simulator by d steps and starts one step later (step n of
    # layer at depth d is the simulator's step n - d - 1); input step n is the simulator's step n - 1.
    for sample in range(2):
        direct = direct_simulation(graph, raster[sample, :steps - 2], k_in, k_loop, np.array(k_out))
        for name, depth in (("a", 1), ("b", 2)):
            chip = record[name].raster()[sample, depth:, :]
            np.testing.assert_array_equal(chip[:steps - 2], direct[name], err_msg=f"{name}, sample {sample}")
    assert record["b"].events[0].size > 0, "the output must spike for the comparison to mean anything"


def test_compiled_bundle_holds_the_delays_in_steps_and_survives_saving(tmp_path):
    k_out = np.array([0, 1, 5, 2])
    net = from_graph(delay_graph(2, 3, k_out), SEMANTICS)
    bundle = compile_network(net, LOIHI2_TARGET, dt=DT)
    delays = {conn.name: conn.delays for conn in bundle.network.connections}
    assert np.all(delays["input->a"][bundle.network.connections[0].weights != 0] == 2)
    out = next(conn for conn in bundle.network.connections if conn.target == "b")
    np.testing.assert_array_equal(out.delays, np.where(out.weights != 0, k_out[None, :], 0))
    report = bundle.report.delays
    assert report.max_steps == 5 and report.limit_steps == 63 and not report.rounded
    assert report.memory_bytes == -(-report.delayed_synapses * 6 // 8)
    from snn_deploy.targets.bundle import save
    save(bundle, tmp_path / "d.bundle")
    again = load_bundle(tmp_path / "d.bundle")
    assert again.checksum == bundle.checksum
    for conn, loaded in zip(bundle.network.connections, again.network.connections):
        assert (conn.delays is None) == (loaded.delays is None)
        if conn.delays is not None:
            np.testing.assert_array_equal(conn.delays, loaded.delays)


# --- composition along paths, and refusals --------------------------------------------------------

def test_routes_with_different_delays_into_one_synapse_are_refused():
    nodes = {"input": nir.Input(np.array([2])), "d1": nir.Delay(delay=np.array([1.0, 2.0])),
             "mix": nir.Linear(weight=np.ones((3, 2))), "d2": nir.Delay(delay=np.zeros(3)),
             "sum": nir.Linear(weight=np.ones((1, 3))),
             "n": nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1)),
             "output": nir.Output(np.array([1]))}
    edges = [("input", "d1"), ("d1", "mix"), ("mix", "d2"), ("d2", "sum"), ("sum", "n"), ("n", "output")]
    net = from_graph(nir.NIRGraph(nodes=nodes, edges=edges), SEMANTICS)  # one route per synapse: fine
    assert net.layers[0].projections[0].delay.tolist() == [[1.0, 2.0]]
    nodes["d2"] = nir.Delay(delay=np.array([0.0, 1.0, 0.0]))
    with pytest.raises(DeployError, match="node sum: routes with different delays join one synapse"):
        from_graph(nir.NIRGraph(nodes=nodes, edges=edges), SEMANTICS)


def test_a_delayed_bias_is_refused():
    nodes = {"input": nir.Input(np.array([2])), "fc": nir.Affine(weight=np.ones((2, 2)), bias=np.ones(2)),
             "d": nir.Delay(delay=np.ones(2)),
             "n": nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
             "output": nir.Output(np.array([2]))}
    edges = [("input", "fc"), ("fc", "d"), ("d", "n"), ("n", "output")]
    with pytest.raises(DeployError, match="node d delays a bias"):
        from_graph(nir.NIRGraph(nodes=nodes, edges=edges), SEMANTICS)


def _cli_semantics() -> list[str]:
    options = [f"--{key.replace('_', '-')}" if key != "horizon" else "--duration" for key in SEMANTICS]
    return [item for option, value in zip(options, SEMANTICS.values())
            for item in ((option if value else "--multi-spike",) if isinstance(value, bool) else (option, str(value)))]


@pytest.mark.parametrize("k_in, message", [
    (2.4, "node w_in -> delay_in: delay 0.6 is not a whole number of steps of dt = 0.25 (2.4 steps; nearest 2 or 3 "
          "steps: 0.5 or 0.75)"),
    (64, "node a: its synapses from input are delayed by up to 64 steps, above loihi2's maximum of 63 (6-bit delays)"),
])
def test_a_delay_off_the_step_grid_or_above_the_limit_exits_2_with_one_line(tmp_path, capsys, k_in, message):
    nir.write(tmp_path / "g.nir", delay_graph(k_in, 0, np.zeros(4)))
    out = tmp_path / "g.bundle"
    assert main(["compile", str(tmp_path / "g.nir"), "--dt", str(DT), *_cli_semantics(), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_round_delays_rounds_and_states_the_error(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", delay_graph(2.4, 0, np.zeros(4)))
    out = tmp_path / "g.bundle"
    assert main(["compile", str(tmp_path / "g.nir"), "--dt", str(DT), *_cli_semantics(), "--round-delays",
                 "-o", str(out)]) == 0
    assert "rounded to whole steps (--round-delays), error at most 0.1 s" in capsys.readouterr().out
    report = load_bundle(out).report.delays
    assert report.rounded and report.rounding_error == pytest.approx(0.1, rel=1e-9) and report.max_steps == 2


def test_a_target_without_delay_fields_refuses_delays():
    net = from_graph(delay_graph(2, 0, np.zeros(4)), SEMANTICS)
    with pytest.raises(DeployError, match="loihi1 has no synaptic delays"):
        compile_network(net, description.load("loihi1"), dt=DT)
