"""Readouts (NIR's LI, CubaLI and I): non-spiking neurons whose membrane is the output, through the pipeline.

Import and compile for loihi2, the worst-case bound that keeps a readout's chip LIF below its threshold (and its
count when the bound cannot hold), the membrane decodings and their ties, the refusal of a decoding that does
not fit the output, the membrane in the spike record and in verify, and the float reference against norse's own
LIBoxCell. bitsim against Lava on random readout networks is in tests/test_lava_equivalence.py.
"""

from __future__ import annotations

import json
import warnings

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compare_spikes, compile_network, judge, verify
from snn_deploy.deploy.reporting.html import render
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.reporting.text import format_quantization, format_summary
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.targets import bitsim, decision, description
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import record as record_io
from snn_deploy.targets.record import SpikeEvents

from helpers import lif_graph

LOIHI2 = description.load("loihi2")
DT, STEPS = 1e-4, 25
EULER = {"time_unit": "s", "fire_once": False, "reset": "zero", "spike": "pulse", "integration": "euler",
         "horizon": STEPS * DT}
READOUT_KINDS = ("LI", "CubaLI", "I")


def readout_node(kind: str, size: int):
    ones, zeros = np.ones(size), np.zeros(size)
    if kind == "LI":
        return nir.LI(tau=np.linspace(4e-3, 6e-3, size), r=ones, v_leak=zeros)
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=np.full(size, 2e-3), tau_mem=np.linspace(4e-3, 6e-3, size), r=ones, v_leak=zeros)
    return nir.I(r=ones)


def readout_graph(kind: str, seed: int = 0, n_in: int = 6, hidden: int = 8, outputs: int = 3) -> nir.NIRGraph:
    """Input -> Affine -> LIF -> Affine (mixed signs, a bias) -> readout -> Output."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Input(np.array([n_in])), nir.Affine(weight=rng.uniform(0, 30, (hidden, n_in)), bias=np.zeros(hidden)),
        nir.LIF(tau=np.full(hidden, 5e-3), r=np.ones(hidden), v_leak=np.zeros(hidden), v_threshold=np.ones(hidden)),
        nir.Affine(weight=rng.uniform(-1, 1, (outputs, hidden)), bias=rng.uniform(-0.5, 0.5, outputs)),
        readout_node(kind, outputs), nir.Output(np.array([outputs])))


def input_readout_graph(kind: str, weight: np.ndarray, bias: np.ndarray) -> nir.NIRGraph:
    """Input -> Affine -> readout -> Output: the readout's error is its own, no spiking layer's flips before it."""
    outputs, n_in = weight.shape
    return nir.NIRGraph.from_list(nir.Input(np.array([n_in])), nir.Affine(weight=weight, bias=bias),
                                  readout_node(kind, outputs), nir.Output(np.array([outputs])))


def compiled(graph, decoding: str = decision.MAX_MEMBRANE, **semantics):
    net = from_graph(graph, {**EULER, "decoding": decoding, **semantics})
    return net, compile_network(net, LOIHI2, dt=DT)


def raster(seed: int, samples: int, steps: int, channels: int, density: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).random((samples, steps, channels)) < density


# --- import and compile -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", READOUT_KINDS)
def test_each_readout_compiles_for_loihi2_as_a_lif_that_cannot_fire(kind, tmp_path):
    net, bundle = compiled(readout_graph(kind))
    layer = net.layer(net.output)
    assert layer.readout and layer.kind == kind and np.all(np.isinf(layer.v_threshold))
    pop = bundle.network.population(net.output)
    widths = LOIHI2.widths
    assert pop.readout and np.all(pop.vth == widths.threshold_max)
    if kind == "I":  # no leak: the chip keeps all of v (dv = 0 with voltage offset 0) and u only one step
        assert np.all(pop.dv == 0) and widths.voltage_decay_offset == 0
        assert np.all(pop.du + widths.current_decay_offset == widths.decay_unity)
    row = bundle.report.quantization[net.output]
    assert row.readout and row.scale == row.scale_max and row.v_headroom >= 1
    assert format_quantization(bundle.report.quantization)[-1].endswith("readout: never fires")
    bundle_io.save(bundle, tmp_path / "b.bundle")
    again = bundle_io.load(tmp_path / "b.bundle")
    assert again.checksum == bundle.checksum and again.network.population(net.output).readout


def test_a_readout_that_feeds_another_layer_is_refused_by_name():
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2])), nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)), readout_node("LI", 2),
        nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
        nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)), nir.Output(np.array([2])))
    with pytest.raises(DeployError, match="node li is a LI readout, which never spikes, yet it feeds lif"):
        from_graph(graph, {**EULER, "decoding": decision.SPIKE_COUNT})


def _compile_argv(path, out, decoding: str) -> list[str]:
    return ["compile", str(path), "--target", "loihi2", "-o", str(out), "--dt", str(DT), "--time-unit", "s",
            "--multi-spike", "--reset", "zero", "--decoding", decoding, "--spike", "pulse", "--integration", "euler",
            "--duration", str(STEPS * DT), "-q"]


@pytest.mark.parametrize("output, decoding, message", [
    ("readout", decision.SPIKE_COUNT, "the output node cubali is a CubaLI readout, which never spikes: decode its "
                                      "membrane (--decoding max_membrane|final_membrane|mean_membrane), not "
                                      "spike_count"),
    ("spiking", decision.MEAN_MEMBRANE, "the output node lif is a spiking LIF: decode its spikes (--decoding "
                                        f"{'|'.join(decision.SPIKE_DECODINGS)}), not mean_membrane"),
])
def test_a_decoding_that_does_not_fit_the_output_exits_2_in_one_line(output, decoding, message, tmp_path, capsys):
    graph = readout_graph("CubaLI") if output == "readout" else lif_graph(6, 3)
    nir.write(tmp_path / "net.nir", graph)
    code = main(_compile_argv(tmp_path / "net.nir", tmp_path / "net.bundle", decoding))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "net.bundle").exists()


# --- the worst-case bound -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", READOUT_KINDS)
def test_a_readout_driven_at_its_bound_never_fires_and_comes_near_it(kind):
    """Every input on every step, through excitatory weights only: the worst case the scale was set for."""
    n_in, outputs = 20, 4
    rng = np.random.default_rng(1)
    net, bundle = compiled(input_readout_graph(kind, rng.uniform(0.5, 1.0, (outputs, n_in)), np.full(outputs, 0.3)))
    record = bitsim.run(bundle, SpikeEvents.from_raster(np.ones((2, bundle.timing.num_steps, n_in), bool)))
    limit = min(LOIHI2.widths.threshold_max << LOIHI2.widths.threshold_shift, LOIHI2.widths.state_limit - 1)
    membrane = record.membrane(net.output)
    assert record.spikes[net.output].events.shape[1] == 0
    assert record.counters[net.output] == {"current_wraps": 0, "voltage_saturations": 0}
    # The bound is nearly reached at the neuron it is set by: it counts an input on every step of the run, while the
    # Dense stage delivers from step 2 on (one step less of a rising CubaLI membrane: 91% of the bound on this net).
    assert 0.9 * limit < membrane.max() <= limit
    assert bundle.report.quantization[net.output].v_headroom >= 1


def test_a_bound_that_cannot_hold_is_reported_and_its_spikes_fail_verify():
    """A perfect integrator of 200 inputs firing on every one of 2000 steps: 4e5 times its largest weight, more
    than a 24-bit state holds at 4 levels of weight mantissa. The compile says so; the chip's readout fires and
    verify counts each spike against max_hardware_events."""
    n_in, steps = 200, 2000
    graph = input_readout_graph("I", np.full((2, n_in), 1.0), np.zeros(2))
    net, bundle = compiled(graph, horizon=steps * DT)
    row = bundle.report.quantization[net.output]
    assert row.v_headroom < 1
    assert "readout: CAN FIRE in the worst case" in format_quantization(bundle.report.quantization)[-1]
    inputs = np.ones((2, bundle.timing.num_steps, n_in), bool)
    verdict = verify(graph, bundle, data=inputs)
    fired = verdict.metrics.readout.readout_spikes
    assert fired > 0 and fired == bitsim.run(bundle, SpikeEvents.from_raster(inputs)).spikes[net.output].events.shape[1]
    assert any(f"readout {net.output} fired {fired} times on the chip" in failure for failure in verdict.failures)


# --- decodings ----------------------------------------------------------------------------------

def test_the_membrane_decodings_differ_as_defined_and_ties_go_to_the_lowest_index():
    # One sample, three steps, three outputs: 0 peaks highest, 1 ends highest, 2 has the highest mean.
    membrane = np.array([[[9.0, 0.0, 5.0], [0.0, 1.0, 5.0], [0.0, 6.0, 5.0]]])
    assert [int(decision.decide_membrane(membrane, d)[0]) for d in decision.MEMBRANE_DECODINGS] == [0, 1, 2]
    tied = np.array([[[1.0, 3.0, 3.0], [2.0, 3.0, 3.0]]])
    for decoding in decision.MEMBRANE_DECODINGS:
        assert decision.decide_membrane(tied, decoding)[0] == 1, decoding
    integers = np.array([[[7, -2, 7]]], np.int32)  # the chip's membranes are integers: exact ties
    for decoding in decision.MEMBRANE_DECODINGS:
        assert decision.decide_membrane(integers, decoding)[0] == 0, decoding
    with pytest.raises(ValueError, match="unknown membrane decoding 'spike_count'"):
        decision.decide_membrane(membrane, decision.SPIKE_COUNT)
    assert set(decision.DECODINGS) == set(decision.SPIKE_DECODINGS) | set(decision.MEMBRANE_DECODINGS)


# --- the membrane through the record, the references and verify ------------------------------------

def test_both_engines_and_both_float_engines_record_the_readout_membrane_alone_and_alike(tmp_path):
    net, bundle = compiled(readout_graph("CubaLI", seed=2))
    inputs = SpikeEvents.from_raster(raster(3, 5, bundle.timing.num_steps, 6))
    records = [bitsim.run(bundle, inputs, engine=engine) for engine in bitsim.ENGINES]
    for record in records:
        assert list(record.traces) == [net.output]
    np.testing.assert_array_equal(records[0].membrane(net.output), records[1].membrane(net.output))
    np.testing.assert_array_equal(records[0].traces[net.output]["u"], records[1].traces[net.output]["u"])
    assert np.any(records[0].membrane(net.output))
    floats = [reference.run(discretize(net, DT), inputs, bundle.timing.num_steps, engine=engine)[2]
              for engine in bitsim.ENGINES]
    assert list(floats[0]) == list(floats[1]) == [net.output]
    np.testing.assert_array_equal(floats[0][net.output]["v"], floats[1][net.output]["v"])
    for path, save in ((tmp_path / "run.h5", record_io.save),
                       (tmp_path / "run.nir.h5", lambda r, p: record_io.save_nir_data(r, inputs, bundle, p))):
        save(records[0], path)
        np.testing.assert_array_equal(record_io.load(path).membrane(net.output), records[0].membrane(net.output))
    with pytest.raises(KeyError, match="no membrane trace of 'lif'"):
        records[0].membrane("lif")


@pytest.mark.parametrize("kind", READOUT_KINDS)
def test_verify_measures_the_readout_membrane_error_in_chip_units(kind):
    rng = np.random.default_rng(5)
    graph = input_readout_graph(kind, rng.uniform(-1, 1, (3, 6)), rng.uniform(-0.5, 0.5, 3))
    net, bundle = compiled(graph, decoding=decision.MEAN_MEMBRANE)
    data = raster(6, 40, bundle.timing.num_steps, 6)
    verdict = verify(graph, bundle, data=data, labels=np.arange(40) % 3)
    readout = verdict.metrics.readout
    assert readout.layer == net.output and readout.readout_spikes == 0 and readout.headroom >= 1
    assert readout.scale == bundle.report.quantization[net.output].scale
    # Fed by the input, the membrane error is the readout's own rounding (8-bit weights, decays, the bias): a small
    # fraction of the membrane's range, and not zero.
    assert 0 < max(readout.error.max) < 0.02 * readout.float_range
    assert all(m <= p <= x for m, p, x in zip(readout.error.median, readout.error.p95, readout.error.max))
    assert json.loads(verdict.to_json())["readout"]["error"]["p95"] == list(readout.error.p95)
    assert any(line.strip().startswith(f"readout {net.output} membrane") for line in format_summary(verdict))
    assert verdict.metrics.decision_latency_steps["chip"].undecided == 0


@pytest.mark.parametrize("can_fire", [False, True])
def test_the_html_report_shows_the_readout_error_and_marks_its_spikes(can_fire):
    """The report's readout section: a row per output neuron, and the readout-spikes row marked as exceeded
    exactly when the chip's readout fired (its bound failed); the membrane decoding's timing plots render."""
    n_in = 200 if can_fire else 6
    graph = input_readout_graph("I", np.full((2, n_in), 1.0), np.zeros(2)) if can_fire else \
        input_readout_graph("LI", np.random.default_rng(5).uniform(-1, 1, (2, n_in)), np.zeros(2))
    net, bundle = compiled(graph, decoding=decision.FINAL_MEMBRANE, horizon=(2000 if can_fire else STEPS) * DT)
    inputs = np.ones((2, bundle.timing.num_steps, n_in), bool) if can_fire else raster(7, 4, bundle.timing.num_steps, n_in)
    comparison = compare_spikes(net, bundle, SpikeEvents.from_raster(inputs))
    verdict = judge(comparison, net, bundle)
    page = render(comparison, verdict, net, bundle)
    section = page[page.index('id="readout"'):]
    section = section[:section.index("</section>")]
    assert all(f"{net.output}[{index}]" in section for index in range(2))
    assert ('class="exceeded"' in section) == can_fire == (verdict.metrics.readout.readout_spikes > 0)


# --- against norse ------------------------------------------------------------------------------

NORSE_DT, NORSE_STEPS = 1e-3, 40


def test_the_float_reference_equals_norses_li_readout_membrane(tmp_path):
    """norse 1.1.0: Linear -> LIFBoxCell -> Linear (with bias) -> LIBoxCell, exported by norse.to_nir. Its
    exporter writes tau as dt * tau (the bug tests/test_interop.py documents): undone here. norse steps the chain
    within one step; the chip's readout at depth 2 shows norse's step t at index t + 2 (latency_steps)."""
    # Imported, not skipped: tools/test installs torch and norse, and a missing one must fail this test.
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # norse still calls torch.jit.script
        import norse.torch as norse
    torch.manual_seed(3)
    fc1, fc2 = torch.nn.Linear(3, 5), torch.nn.Linear(5, 4)
    with torch.no_grad():
        fc1.weight.mul_(15.0)
        fc1.bias.add_(1.0)
        fc2.weight.mul_(5.0)
    hidden = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.linspace(150.0, 250.0, 5),
                                                     v_leak=torch.zeros(5), v_th=torch.linspace(0.9, 1.1, 5),
                                                     v_reset=torch.zeros(5), method="heaviside"), dt=NORSE_DT)
    readout = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.linspace(80.0, 160.0, 4),
                                                    v_leak=torch.zeros(4)), dt=NORSE_DT)
    spikes = raster(2, 8, NORSE_STEPS, 3)
    with torch.no_grad():
        states, trace, fired = [None, None], [], 0
        for step in range(NORSE_STEPS):
            z, states[0] = hidden(fc1(torch.from_numpy(spikes[:, step]).float()), states[0])
            v, states[1] = readout(fc2(z), states[1])
            fired += int(z.sum())
            trace.append(v.numpy().astype(np.float64))
    norse_membrane = np.stack(trace, axis=1)
    assert fired > 100

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = norse.to_nir(norse.SequentialState(fc1, hidden, fc2, readout), torch.zeros(3), dt=NORSE_DT)
    for node in graph.nodes.values():
        if isinstance(node, (nir.LIF, nir.LI)):
            node.tau = np.asarray(node.tau) / NORSE_DT
    nir.write(tmp_path / "norse.nir", graph)
    graph = nir.read(tmp_path / "norse.nir")
    net = from_graph(graph, {**EULER, "decoding": decision.MAX_MEMBRANE, "horizon": NORSE_STEPS * NORSE_DT})
    assert net.layer(net.output).kind == "LI"
    bundle = compile_network(net, LOIHI2, dt=NORSE_DT)
    latency = bundle.timing.latency_steps
    assert latency == 2 and bundle.timing.num_steps == NORSE_STEPS + latency
    padded = np.zeros((8, bundle.timing.num_steps, 3), bool)
    padded[:, :NORSE_STEPS] = spikes
    inputs = SpikeEvents.from_raster(padded)
    _, _, traces = reference.run(discretize(net, NORSE_DT), inputs, bundle.timing.num_steps)
    membrane = traces[net.output]["v"]
    assert not np.any(membrane[:, :latency])  # nothing reaches the readout before its first input
    relative = np.abs(membrane[:, latency:] - norse_membrane).max() / np.abs(norse_membrane).max()
    print(f"float reference vs norse LI membrane: max |difference| / max |membrane| = {relative:.2e}")
    assert relative <= 1e-6
    chip = bitsim.run(bundle, inputs)
    for decoding in decision.MEMBRANE_DECODINGS:
        norse_decisions = decision.decide_membrane(norse_membrane, decoding)
        np.testing.assert_array_equal(decision.decide_membrane(membrane[:, latency:], decoding), norse_decisions)
        agreement = np.mean(decision.decide_membrane(chip.membrane(net.output)[:, latency:], decoding)
                            == norse_decisions)
        print(f"{decoding}: chip (bitsim) agrees with norse on {agreement:.0%} of 8 samples")
    assert chip.spikes[net.output].events.shape[1] == 0
