"""Energy and latency per inference from measured activity: exact counts on a hand-checked network,
and a sanity check against published Loihi measurements."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from snn_deploy.deploy.reporting.text import format_energy
from snn_deploy.deploy.stages.energy import decision_steps, estimate
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.stages.place import place
from snn_deploy.targets import description
from snn_deploy.targets.bundle import (Bundle, CoreAssignment, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, Timing)
from snn_deploy.targets.record import SpikeEvents, SpikeRecord

from helpers import target_fields

STEPS = 5


def tiny_network() -> IntNetwork:
    """input (3) -> a (4) -> b (2); fan-outs: inputs 2, 2, 1; a 1, 2, 1, 1."""
    w_a = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    w_b = np.array([[1, 1, 0, 0], [0, 1, 1, 1]])
    pops = (LifPopulation(name="a", size=4, du=0, dv=0, vth=10, bias_mant=0),
            LifPopulation(name="b", size=2, du=0, dv=0, vth=10, bias_mant=0))
    conns = (DenseConnection(name="input->a", source="input", target="a", weights=w_a),
             DenseConnection(name="a->b", source="a", target="b", weights=w_b))
    return IntNetwork(input=InputLayer("input", 3), populations=pops, connections=conns, output="b")


def tiny_run(traces=None):
    """Two samples. Sample 0: inputs 0 (step 1) and 2 (step 2), a1 at 2, b1 at 3. Sample 1: input 1
    (step 1), a2 at 3, b silent."""
    inputs = SpikeEvents.from_arrays([0, 0, 1], [1, 2, 1], [0, 2, 1], 2, STEPS, 3)
    spikes = {"a": SpikeEvents.from_arrays([0, 1], [2, 3], [1, 2], 2, STEPS, 4),
              "b": SpikeEvents.from_arrays([0], [3], [1], 2, STEPS, 2)}
    return inputs, SpikeRecord("bitsim", "", 2, STEPS, spikes, traces=traces or {})


def tiny_bundle(target: str, b_core: int) -> Bundle:
    placement = Placement(target, (CoreAssignment(core=0, population="a", start=0, stop=4),
                                   CoreAssignment(core=b_core, population="b", start=0, stop=2)))
    return Bundle(**target_fields(target), network=tiny_network(), placement=placement, timing=Timing(1, STEPS))


def test_counts_per_layer_are_exact_and_match_the_hand_count():
    inputs, record = tiny_run()
    # loihi2: one core per tile, 8 tiles east-west: core 9 sits 1 hop east and 1 hop north of core 0.
    result = asdict(estimate(tiny_bundle("loihi2", b_core=9), record, inputs, description.load("loihi2")))
    json.dumps(result)
    a, b = result["layers"]["a"], result["layers"]["b"]
    # Synaptic ops: inputs 0 + 2 (sample 0: 2 + 1) and input 1 (sample 1: 2) = 5 over 2 samples.
    assert (a["synaptic_ops"], b["synaptic_ops"]) == (2.5, 1.5)
    assert (a["spike_messages"], b["spike_messages"]) == (1.5, 1.0)
    assert (a["hops_east_west"], a["hops_north_south"], b["hops_east_west"], b["hops_north_south"]) == (0, 0, 1.0, 1.0)
    assert (a["spikes"], b["spikes"], a["neuron_updates"], b["neuron_updates"]) == (1.0, 0.5, 20, 10)
    # Active from the first arriving input (one step after the source spike) to step 5:
    # a: sample 0 a0, a1 from 2, a3 from 3 -> 4 + 4 + 3; sample 1 a1, a2 from 2 -> 4 + 4. b: 3 + 3; 2.
    assert (a["neuron_updates_active"], a["neuron_updates_inactive"]) == (9.5, 10.5)
    assert (b["neuron_updates_active"], b["neuron_updates_inactive"]) == (4.0, 6.0)
    assert result["total"]["messages_between_chips"] == 0
    bench = result["neurobench"]
    assert (bench["effective_acs"], bench["effective_macs"], bench["dense_synops"]) == (4.0, 0, 100.0)
    assert bench["activation_sparsity"] == pytest.approx(1 - 1.5 / 30)
    assert bench["membrane_updates"] == 13.5
    assert result["ann_baseline"]["dense_macs"] == 20
    assert result["ann_baseline"]["energy_j"]["fp32"] == pytest.approx(20 * 4.6e-12)


def test_energy_and_latency_follow_the_cost_table():
    inputs, record = tiny_run()
    target = description.load("loihi1")
    # loihi1: four cores per tile, 8 tiles east-west: core 9 is in tile 2, two hops east of core 0.
    estimated = estimate(tiny_bundle("loihi1", b_core=9), record, inputs, target,
                         decision_steps(record.spikes["b"], "first_spike"))
    result = asdict(estimated)
    dynamic_pj = 4.0 * 23.6 + 13.5 * 81 + 16.5 * 52 + 2.5 * 1.7 + 2.0 * 3.0
    assert result["total"]["energy_j"]["dynamic"]["nominal"] == pytest.approx(dynamic_pj * 1e-12)
    # Step times in ns (busiest core + longest route + 299 ns barrier), by hand:
    # sample 0: 4 x 6.0 | a: 2 x 3.5 + 2 x 9.7 + 2 x 6.0 + 1 message x 2.1, route 2 x 4.1 | a: 3.5 + 3 x 9.7 + 6.0
    #           | a: 3 x 9.7 + 6.0 | a: 3 x 9.7 + 6.0
    # sample 1: 4 x 6.0 | a: 2 x 3.5 + 2 x 9.7 + 2 x 6.0 | a: 2 x 9.7 + 2 x 6.0 + 2.1, route 8.2 | a: 31.4 | a: 31.4
    sample0 = [24 + 299, 40.5 + 8.2 + 299, 38.6 + 299, 35.1 + 299, 35.1 + 299]
    sample1 = [24 + 299, 38.4 + 299, 33.5 + 8.2 + 299, 31.4 + 299, 31.4 + 299]
    latency = result["latency"]
    assert latency["run_s"]["nominal"] == pytest.approx((sum(sample0) + sum(sample1)) / 2 * 1e-9)
    # Sample 0 decides at step 3 (b's first spike), sample 1 never: it counts the whole run.
    assert latency["to_decision_s"]["nominal"] == pytest.approx((sum(sample0[:3]) + sum(sample1)) / 2 * 1e-9)
    assert (latency["steps_to_decision"], latency["decided"]) == (4.0, 0.5)
    static = 0.029 * latency["run_s"]["nominal"]
    assert result["total"]["energy_j"]["static"]["nominal"] == pytest.approx(static)
    low, nominal, high = (result["total"]["energy_j"]["total"][level] for level in ("low", "nominal", "high"))
    assert low < nominal < high  # Loihi 1's ranges reach to SANA-FE's hardware-calibrated costs
    lines = format_energy(estimated)
    assert lines[0].startswith("  energy per inference on loihi1: ")
    assert any(line.startswith("  NeuroBench: 4 effective ACs") for line in lines)


def test_recorded_traces_give_exact_active_updates_and_membrane_updates():
    a_v = np.zeros((2, STEPS, 4), np.int32)
    a_v[0, 1:, 0] = [5, 5, 3, 0]  # changes at steps 2, 4, 5
    a_u = np.zeros((2, STEPS, 4), np.int32)
    a_u[1, 2, 3] = 7
    silent = np.zeros((2, STEPS, 2), np.int32)
    traces = {"a": {"u": a_u, "v": a_v}, "b": {"u": silent, "v": silent}}
    inputs, record = tiny_run(traces)
    result = asdict(estimate(tiny_bundle("loihi2", b_core=1), record, inputs, description.load("loihi2")))
    # active where u or v is nonzero: a0 at steps 2, 3, 4 of sample 0, a3 at step 3 of sample 1
    assert result["layers"]["a"]["neuron_updates_active"] == 2.0
    assert result["layers"]["b"]["neuron_updates_active"] == 0.0
    # NeuroBench: all 6 neurons at the first step of both samples + 3 changes of v = 15 over 2 samples
    assert result["neurobench"]["membrane_updates"] == 7.5
    assert result["basis"]["active_updates"] == "recorded u and v traces"


def test_decision_steps():
    out = SpikeEvents.from_arrays([0, 0, 2], [7, 4, 9], [1, 0, 1], 3, 10, 2)
    assert decision_steps(out, "first_spike").tolist() == [4, -1, 9]
    assert decision_steps(out, "spike_count").tolist() == [10, 10, 10]


def test_a_bundle_without_placement_is_refused():
    inputs, record = tiny_run()
    bundle = Bundle(**target_fields("loihi2"), network=tiny_network(), placement=Placement("loihi2", ()),
                    timing=Timing(1, STEPS))
    with pytest.raises(DeployError, match="no placement"):
        estimate(bundle, record, inputs, description.load("loihi2"))


# --- sanity against published hardware figures ---------------------------------------------------
# Renner et al., "The backpropagation algorithm implemented on spiking neuromorphic hardware", Nature
# Communications 15:9691 (2024), Table 1: their 400-400-10 MNIST network, inference on Loihi (1):
# 2.5 uJ and 0.17 ms per sample at 96.3%.
PUBLISHED_J, PUBLISHED_S = 2.5e-6, 0.17e-3
FACTOR = 3  # stated tolerance: the estimate must land within 3x of each published figure


@pytest.fixture(scope="module")
def renner_sized_run():
    """A 400-400-10 network with random 8-bit weights (none zero) at a stated activity level: each of
    the 400 inputs fires once with probability 0.2 (about 80 spikes, like a binarized 20 x 20 MNIST
    digit), in steps 1-4; 20% of the hidden neurons fire once, in steps 3-8; one output neuron fires
    per sample, in steps 6-10 (the decision); 16 steps per sample, 100 samples."""
    rng = np.random.default_rng(0)
    samples, steps = 100, 16
    weights = [rng.integers(1, 128, (400, 400)) * rng.choice([-1, 1], (400, 400)),
               rng.integers(1, 128, (10, 400)) * rng.choice([-1, 1], (10, 400))]
    pops = (LifPopulation(name="hidden", size=400, du=0, dv=0, vth=100, bias_mant=0, fire_once=True),
            LifPopulation(name="output", size=10, du=0, dv=0, vth=100, bias_mant=0, fire_once=True))
    conns = (DenseConnection(name="in->hidden", source="input", target="hidden", weights=weights[0]),
             DenseConnection(name="hidden->output", source="hidden", target="output", weights=weights[1]))
    network = IntNetwork(input=InputLayer("input", 400), populations=pops, connections=conns, output="output")

    def fire_once(size, probability, first, last):
        sample, neuron = np.nonzero(rng.random((samples, size)) < probability)
        return SpikeEvents.from_arrays(sample, rng.integers(first, last + 1, sample.size), neuron, samples, steps, size)

    inputs, hidden = fire_once(400, 0.2, 1, 4), fire_once(400, 0.2, 3, 8)
    output = SpikeEvents.from_arrays(np.arange(samples), rng.integers(6, 11, samples), rng.integers(0, 10, samples),
                                     samples, steps, 10)
    record = SpikeRecord("synthetic", "", samples, steps, {"hidden": hidden, "output": output})
    return network, record, inputs


def _estimate(run, name):
    network, record, inputs = run
    target = description.load(name)
    bundle = Bundle(**target_fields(name), network=network, placement=place(network, target),
                    timing=Timing(1, record.num_steps))
    return asdict(estimate(bundle, record, inputs, target, decision_steps(record.spikes["output"], "first_spike")))


def test_loihi1_estimate_is_within_3x_of_the_published_400_400_10_measurement(renner_sized_run):
    """Loihi 1, nominal (Davies 2018 Table 2): 1.29 uJ dynamic + 2.64 uJ static = 3.93 uJ, and 73 us to
    the decision (2.3x below 0.17 ms). The published 2.5 uJ cannot include the whole chip's idle power
    (29 mW x 0.17 ms = 4.9 uJ alone), so it is compared both with our dynamic energy (1.9x below it) and
    with our total (1.6x above it)."""
    result = _estimate(renner_sized_run, "loihi1")
    joules = result["total"]["energy_j"]
    for estimate_j in (joules["dynamic"]["nominal"], joules["total"]["nominal"]):
        assert PUBLISHED_J / FACTOR < estimate_j < PUBLISHED_J * FACTOR
    assert PUBLISHED_S / FACTOR < result["latency"]["to_decision_s"]["nominal"] < PUBLISHED_S * FACTOR
    assert result["cores_used"] == 3


def test_loihi2_estimate_is_below_the_loihi1_measurement_within_its_stated_bounds(renner_sized_run):
    """The published figure is a Loihi 1 measurement; Loihi 2's costs are bounded above by Hala Point's
    peak figures (6.8 pJ per synaptic op against Loihi 1's 23.6), so its estimate should land below it:
    dynamic 0.030-0.29 uJ (nominal 0.093 uJ, 27x below 2.5 uJ), 7-73 us to the decision. Stated check:
    dynamic energy between 1/100 and 1x of 2.5 uJ, latency between 1/30 and 1x of 0.17 ms."""
    result = _estimate(renner_sized_run, "loihi2")
    dynamic = result["total"]["energy_j"]["dynamic"]
    assert PUBLISHED_J / 100 < dynamic["low"] < dynamic["nominal"] < dynamic["high"] < PUBLISHED_J
    latency = result["latency"]["to_decision_s"]
    assert PUBLISHED_S / 30 < latency["low"] < latency["high"] < PUBLISHED_S
