"""bitsim and Lava 0.10.0 agree bit for bit: every spike, every u and v at every step, every counter.

Lava is slow to start (~1 s a run) and to step (~1 ms a step per few processes), so the cases of a
test are combined side by side into one bundle (``combine``) and run in one Lava run. A test
that has a bundle and its input spikes needs only ``assert_lava_matches_bitsim(bundle, inputs)``.

Needs the Lava environment (``./tools/setup-lava``): skipped without it, except under CI
(CI=true), where a missing environment fails.
"""

from __future__ import annotations

import subprocess
import textwrap
from dataclasses import replace

import nir
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from snn_deploy.deploy import compile_network
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.targets import bitsim, decision, description, lava
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bundle import Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation, Placement
from snn_deploy.targets.record import SpikeEvents, SpikeRecord

from helpers import assert_lava_matches_bitsim, assert_records_equal, target_fields
from networks import (FORCED, LOIHI2, NUM_STEPS, READOUT_DECAYS, UNFORCED, Case, current_wrap_cases, make_bundle,
                      networks, random_inputs, readout_networks, sample_boundary_case, voltage_saturation_cases)


@pytest.fixture(scope="module", autouse=True)
def lava_environment(lava_python):
    """Every test here needs the Lava worker (see conftest.lava_python)."""


# --- helpers ------------------------------------------------------------------------------------

def prefixed(index: int, name: str) -> str:
    return f"case{index}.{name}"


def combine(cases: list[Case]) -> tuple[Bundle, SpikeEvents]:
    """The cases side by side as one bundle: case i's names get the prefix ``case{i}.``.

    The input channels are concatenated; each case's input weights are zero-padded to all of them
    (zeros change neither a Dense's sign mode nor its sums).
    """
    offsets = np.cumsum([0] + [case.inputs.size for case in cases])
    num_inputs = int(offsets[-1])
    populations, connections, events = [], [], []
    for index, case in enumerate(cases):
        net = case.bundle.network
        populations += [replace(pop, name=prefixed(index, pop.name)) for pop in net.populations]
        for conn in net.connections:
            weights, delays = conn.weights, conn.delays
            if conn.source == net.input.name:
                weights = np.zeros((weights.shape[0], num_inputs), np.int32)
                weights[:, offsets[index]:offsets[index + 1]] = conn.weights
                if conn.delays is not None:
                    delays = np.zeros(weights.shape, np.int32)
                    delays[:, offsets[index]:offsets[index + 1]] = conn.delays
            connections.append(replace(conn, name=prefixed(index, conn.name), weights=weights, delays=delays,
                                       source=conn.source if conn.source == net.input.name
                                       else prefixed(index, conn.source),
                                       target=prefixed(index, conn.target)))
        sample, step, channel = case.inputs.events
        events.append(np.stack([sample, step, channel + offsets[index]]))
    first = cases[0]
    network = IntNetwork(input=InputLayer(first.bundle.network.input.name, num_inputs),
                         populations=tuple(populations), connections=tuple(connections),
                         output=populations[-1].name)
    bundle = Bundle(**target_fields("loihi2"), network=network, placement=Placement("loihi2", ()),
                    timing=first.bundle.timing)
    inputs = SpikeEvents.from_arrays(*np.concatenate(events, axis=1), num_samples=first.inputs.num_samples,
                                     num_steps=first.inputs.num_steps, size=num_inputs)
    return bundle, inputs


@settings(max_examples=3, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(cases=st.tuples(*(networks(**forced) for forced in FORCED), *(networks() for _ in range(UNFORCED))))
def test_random_networks_match_bitsim_bit_for_bit(cases):
    """20 random networks, each forced to cover one property, all in one Lava run (per example).

    No shrinking: each shrink step would be another Lava run; a failure names its case instead.
    """
    assert_cases_match(combine(list(cases)), cases)


def assert_cases_match(combined: tuple[Bundle, SpikeEvents], cases) -> None:
    """bitsim and Lava on the combined cases in one run: equal records, case by case (naming the failing case)."""
    bundle, inputs = combined
    expected = bitsim.run(bundle, inputs, record_state=True)
    actual = lava.run(bundle, inputs, record_state=True)
    for index, case in enumerate(cases):
        names = [prefixed(index, pop.name) for pop in case.bundle.network.populations]
        assert_records_equal(_only(expected, names), _only(actual, names), context=f"in case {index}: {case.label}")
    assert_records_equal(expected, actual)
    assert sum(len(events.events[0]) for events in actual.spikes.values()) > 0


@settings(max_examples=3, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(cases=st.tuples(*(readout_networks(dynamics) for dynamics in READOUT_DECAYS for _ in range(2))))
def test_random_networks_with_readouts_match_bitsim_bit_for_bit(cases):
    """Two random networks per readout kind (LI, CubaLI, I), each ending in a readout, in one Lava run: spikes,
    counters, the readouts' u and v on every step (recorded without asking) and the membrane decisions."""
    bundle, inputs = combine(list(cases))
    expected, actual = bitsim.run(bundle, inputs), lava.run(bundle, inputs)
    readouts = [pop.name for pop in bundle.network.populations if pop.readout]
    assert sorted(actual.traces) == sorted(expected.traces) == sorted(readouts)
    assert_records_equal(expected, actual)
    for name in readouts:
        for decoding in decision.MEMBRANE_DECODINGS:
            np.testing.assert_array_equal(decision.decide_membrane(actual.membrane(name), decoding),
                                          decision.decide_membrane(expected.membrane(name), decoding))
    assert any(np.any(actual.membrane(name)) for name in readouts)


def _only(record: SpikeRecord, names: list[str]) -> SpikeRecord:
    return replace(record, spikes={n: record.spikes[n] for n in names},
                   counters={n: record.counters[n] for n in names}, traces={n: record.traces[n] for n in names})


# Each entry forces one property on one delay network (tests/networks.py: per-synapse delays 0 .. max_delay,
# the first synapse of every block at max_delay and the last at 0, DELAY_STEPS steps per sample).
DELAY_FORCED = (
    {"max_delay": 63, "recurrent": True}, {"max_delay": 63, "layers": 4}, {"max_delay": 63, "weight_exp_sign": -1},
    {"max_delay": 63, "sign_mode": fx.INHIBITORY}, {"max_delay": 2, "recurrent": True, "fire_once": True},
    {"max_delay": 5, "reset": fx.RESET_SUBTRACT, "fire_once": False}, {"max_delay": 1, "num_weight_bits": 1},
    {"max_delay": 9, "weight_exp_sign": 1},
)


@settings(max_examples=3, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(cases=st.tuples(*(networks(**forced) for forced in DELAY_FORCED)))
def test_random_delay_networks_match_bitsim_bit_for_bit(cases):
    """8 random networks with per-synapse delays (DelayDense), each forced to cover one property, in one Lava run
    per example; 3 samples each, so the delayed spikes of a sample must not reach the next one."""
    combined = combine(list(cases))
    assert any(conn.max_delay == 63 for conn in combined[0].network.connections)
    assert_cases_match(combined, cases)


def test_a_compiled_graph_with_conv1d_and_delays_matches_bitsim():
    """Input(2, 12) -> Conv1d(stride 2, dilation 2, padding 1) -> Delay (per channel and position) -> LIF,
    -> Flatten -> Affine -> Delay -> LIF (with a delayed self-loop), compiled for loihi2 as the pipeline does."""
    rng = np.random.default_rng(5)
    # One group: nir 1.0.8's Conv1d takes weight.shape[1] (in / groups) for its input's channels, so a grouped
    # Conv1d fails NIR's own type check in a graph (groups are covered by tests/test_connectivity.py).
    conv = nir.Conv1d(input_shape=12, weight=rng.uniform(-0.2, 0.8, (4, 2, 3)), stride=2, padding=1, dilation=2,
                      groups=1, bias=np.zeros(4))
    hidden = (4, 5)
    lif = lambda shape: nir.LIF(tau=np.full(shape, 2.0), r=np.ones(shape), v_leak=np.zeros(shape),  # noqa: E731
                                v_threshold=np.full(shape, 0.5))
    nodes = {"input": nir.Input(np.array([2, 12])), "conv": conv,
             "delay_conv": nir.Delay(delay=rng.integers(0, 4, hidden).astype(float)), "hidden": lif(hidden),
             "flat": nir.Flatten(input_type={"input": np.array(hidden)}, start_dim=0),
             "fc": nir.Affine(weight=rng.uniform(-0.3, 0.6, (3, 20)), bias=np.zeros(3)),
             "delay_fc": nir.Delay(delay=np.array([0.0, 2.0, 7.0])), "out": lif(3),
             "self": nir.Linear(weight=np.diag([0.3, -0.2, 0.4])), "delay_self": nir.Delay(delay=np.full(3, 3.0)),
             "output": nir.Output(np.array([3]))}
    edges = [("input", "conv"), ("conv", "delay_conv"), ("delay_conv", "hidden"), ("hidden", "flat"), ("flat", "fc"),
             ("fc", "delay_fc"), ("delay_fc", "out"), ("out", "self"), ("self", "delay_self"), ("delay_self", "out"),
             ("out", "output")]
    semantics = {"time_unit": "step", "fire_once": False, "reset": "zero", "decoding": "spike_count", "horizon": 60.0,
                 "spike": "pulse", "integration": "euler"}
    net = from_graph(nir.NIRGraph(nodes=nodes, edges=edges), semantics)
    bundle = compile_network(net, description.load("loihi2"), dt=1.0)
    assert {conn.name: conn.max_delay for conn in bundle.network.connections} == {
        "input->hidden": 3, "hidden->out": 7, "out->out": 3}
    inputs = SpikeEvents.from_raster(rng.random((3, bundle.timing.num_steps, 24)) < 0.3)
    expected, _ = assert_lava_matches_bitsim(bundle, inputs)
    assert all(len(expected.spikes[name].events[0]) > 0 for name in ("hidden", "out"))


# --- constructed edge cases ---------------------------------------------------------------------

def test_wraparound_saturation_and_sample_boundaries_match_and_are_counted():
    cases = current_wrap_cases() + voltage_saturation_cases() + [sample_boundary_case()]
    bundle, inputs = combine(cases)
    _, actual = assert_lava_matches_bitsim(bundle, inputs)
    counters = {name.split(".", 1)[1]: value for name, value in actual.counters.items()}
    assert counters["wraps_up"]["current_wraps"] > 0 and counters["wraps_down"]["current_wraps"] > 0
    for name in ("saturates_up", "saturates_up_subtracting", "saturates_down", "saturates_once"):
        assert counters[name]["voltage_saturations"] > 0, name
    busy = next(events for name, events in actual.spikes.items() if name.endswith("busy"))
    assert busy.raster()[:, -1].all(), "the case must spike on each sample's last step"


# --- graded spikes ------------------------------------------------------------------------------

def test_graded_dense_with_binary_payloads_matches_bitsim():
    """A Dense with num_message_bits > 0 sums W . s; the spikes of a LIF and of SpikeEvents are 0/1."""
    rng = np.random.default_rng(7)
    pops = [LifPopulation("hidden", 4, du=500, dv=300, vth=40, bias_mant=10),
            LifPopulation("out", 2, du=500, dv=300, vth=40, bias_mant=0)]
    weights = [fx.stored_weights(LOIHI2, rng.integers(-256, 256, (4, 3)), 8),
               fx.stored_weights(LOIHI2, rng.integers(0, 256, (2, 4)), 8)]
    conns = [DenseConnection("d0", "input", "hidden", weights[0], num_message_bits=8),
             DenseConnection("d1", "hidden", "out", weights[1], num_message_bits=3)]
    assert_lava_matches_bitsim(make_bundle(3, pops, conns), random_inputs(rng, 3, 0.3))


# SpikeEvents carry no payload, so this compares the batch runners of both sides directly, inside
# the Lava environment: bitsim's schedule with an integer input raster, and the worker's run_batch,
# whose RingBuffer source sends the integers as graded spikes.
GRADED_PAYLOAD_CHECK = """
import numpy as np
from snn_deploy.targets import bitsim, description, fixed_point as fx, lava_worker, schedule
from snn_deploy.targets.bundle import (Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, Timing)

loihi2 = description.load("loihi2")
widths = loihi2.widths
rng = np.random.default_rng(3)
steps = 40
payload = rng.integers(0, 2**8, (3, steps, 4)) * (rng.random((3, steps, 4)) < 0.4)
network = IntNetwork(
    input=InputLayer("input", 4),
    populations=(LifPopulation("graded", 3, du=800, dv=600, vth=3000, bias_mant=0),
                 LifPopulation("next", 2, du=800, dv=600, vth=100, bias_mant=0)),
    connections=(DenseConnection("payload", "input", "graded",
                                 fx.stored_weights(widths, rng.integers(-256, 256, (3, 4)), 8),
                                 weight_exp=-3, num_message_bits=8),
                 DenseConnection("binary", "input", "graded",
                                 fx.stored_weights(widths, rng.integers(0, 256, (3, 4)), 8)),
                 DenseConnection("onward", "graded", "next", fx.stored_weights(widths, rng.integers(0, 256, (2, 3)), 8),
                                 num_message_bits=8)),
    output="next")
bundle = Bundle(target="loihi2", network=network, placement=Placement("loihi2", ()),
                timing=Timing(dt=1.0, num_steps=steps), widths=widths, backends=loihi2.backends)
expected = schedule.run_batch(network, bitsim.integer_arithmetic(widths), payload, steps, record_state=True)
actual = lava_worker.run_batch(bundle, payload, hardware=False, record_state=True)
def raster(events, shape):
    out = np.zeros(shape, bool)
    sample, step, neuron = events
    out[sample, step - 1, neuron] = True
    return out
rasters = {pop.name: raster(expected.spikes[pop.name], actual[pop.name]["spikes"].shape)
           for pop in network.populations}
for pop in network.populations:
    np.testing.assert_array_equal(actual[pop.name]["spikes"], rasters[pop.name])
    for key in ("u", "v"):
        np.testing.assert_array_equal(actual[pop.name]["traces"][key], expected.traces[pop.name][key])
    assert actual[pop.name]["counters"] == expected.events[pop.name], pop.name
assert rasters["graded"].any() and rasters["next"].any()
print("graded payloads match")
"""


def run_in_lava_environment(script: str) -> str:
    """Run a Python script with the Lava interpreter; its stdout, or a failure with its output."""
    result = subprocess.run([lava.worker_python(), "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_graded_payloads_from_the_source_match_bitsim():
    assert "graded payloads match" in run_in_lava_environment(GRADED_PAYLOAD_CHECK)


def test_samples_split_over_several_lava_runs_match_bitsim():
    """batch_size 2 on 5 samples: three Lava runs whose samples are renumbered into one record."""
    rng = np.random.default_rng(11)
    pops = [LifPopulation("hidden", 3, du=200, dv=100, vth=20, bias_mant=5, fire_once=True)]
    conns = [DenseConnection("d0", "input", "hidden", fx.stored_weights(LOIHI2, rng.integers(0, 256, (3, 2)), 8))]
    bundle = make_bundle(2, pops, conns)
    inputs = SpikeEvents.from_raster(rng.random((5, NUM_STEPS, 2)) < 0.3)
    done = []
    record = lava.run(bundle, inputs, record_state=True, batch_size=2, progress=done.append)
    assert_records_equal(bitsim.run(bundle, inputs, record_state=True), record)
    assert done == [2, 2, 1]


# --- the NIR paper's reference trace ------------------------------------------------------------

def test_reference_trace_through_lava_equals_lava_cpu_fixed_point_csv(reference_dir):
    """The paper's one-neuron run (du = 4095, dv = 163, vth = 25, weight 10) gives Lava's own CSV."""
    table = np.loadtxt(reference_dir / "nir-paper-lif" / "lif_lava_cpu_fixed.csv", delimiter=",")
    bundle = make_bundle(1, [LifPopulation("lif", 1, du=4095, dv=163, vth=25, bias_mant=0)],
                         [DenseConnection("correction", "input", "lif", np.array([[10]]))], num_steps=len(table))
    inputs = SpikeEvents.from_raster(table[None, :, :1].astype(bool))
    _, record = assert_lava_matches_bitsim(bundle, inputs)
    np.testing.assert_array_equal(record.traces["lif"]["v"][0, :, 0], table[:, 1].astype(np.int64))
    np.testing.assert_array_equal(record.spikes["lif"].raster()[0, :, 0], table[:, 2].astype(bool))
