"""Decision timing and difficulty (deploy/stages/latency.py), on hand-computed cases and against the readable
definition: a decision after step k is the decision rule on the spikes of steps 1..k."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.deploy.stages import latency
from snn_deploy.targets import decision
from snn_deploy.targets.record import SpikeEvents

NONE = decision.NO_DECISION


def events(spikes, num_samples, num_steps, size):
    """[(sample, step, neuron), ...] -> SpikeEvents."""
    sample, step, neuron = (np.array(column, dtype=np.int64) for column in zip(*spikes)) if spikes else ([], [], [])
    return SpikeEvents.from_arrays(sample, step, neuron, num_samples, num_steps, size)


def test_first_spike_decisions_by_step_and_latency_by_hand():
    # sample 0: neuron 1 at step 2, neuron 0 at 4; sample 1 silent; sample 2: neuron 0 at step 5.
    spikes = events([(0, 2, 1), (0, 4, 0), (2, 5, 0)], 3, 5, 2)
    by_step = latency.decisions_by_step(spikes, decision.FIRST_SPIKE)
    assert by_step.tolist() == [[NONE, 1, 1, 1, 1], [NONE] * 5, [NONE, NONE, NONE, NONE, 0]]
    assert latency.final_steps(by_step).tolist() == [2, -1, 5]
    stats = latency.latency_stats(latency.final_steps(by_step))
    assert (stats.median, stats.mean, stats.undecided) == (3.5, 3.5, 1)


def test_spike_count_latency_is_the_step_after_the_last_change():
    # sample 0: n0 at 1, n1 at 2 and 3 -> 0, 0 (tie, n0 fired first), 1, 1, 1: final from step 3.
    # sample 1: n1 at 1, n0 at 2 and 3 -> 1, 1 (tie, n1 first), 0, 0, 0: final from step 3.
    # sample 2: n1 at step 1 only: final from step 1.
    spikes = events([(0, 1, 0), (0, 2, 1), (0, 3, 1), (1, 1, 1), (1, 2, 0), (1, 3, 0), (2, 1, 1)], 3, 5, 2)
    by_step = latency.decisions_by_step(spikes, decision.SPIKE_COUNT)
    assert by_step.tolist() == [[0, 0, 1, 1, 1], [1, 1, 0, 0, 0], [1] * 5]
    assert latency.final_steps(by_step).tolist() == [3, 3, 1]


def test_float_times_count_from_the_step_whose_interval_holds_them():
    times = np.array([[2.5, 1.0], [3.0, np.inf], [np.inf, np.inf]])  # in steps
    by_step = latency.decisions_by_step_of_times(times, decision.FIRST_SPIKE, 4)
    assert by_step.tolist() == [[1, 1, 1, 1], [NONE, NONE, 0, 0], [NONE] * 4]
    assert latency.final_steps(by_step).tolist() == [1, 3, -1]


def test_early_decision_and_accuracy_by_step_by_hand():
    # 200 samples: 199 correct from step 1; the last one correct only from step 4 of 4. Within 0.5 points
    # (1 sample of 200) the accuracy is final from step 1; 0.4 points (0.8 samples) needs step 4.
    labels = np.zeros(200, dtype=np.int64)
    by_step = np.zeros((200, 4), dtype=np.int32)
    by_step[-1, :3] = NONE
    assert latency.early_step(by_step, labels) == 1
    assert latency.early_step(by_step, labels, within=0.004) == 4
    curve = latency.accuracy_by_step(by_step, by_step, labels)
    assert curve.steps == (1, 2, 3, 4) and curve.chip == (0.995, 0.995, 0.995, 1.0)


def test_an_accuracy_that_dips_again_is_not_yet_final():
    labels = np.zeros(10, dtype=np.int64)
    by_step = np.zeros((10, 5), dtype=np.int32)
    by_step[:5, 2] = 1  # half wrong at step 3 only
    assert latency.early_step(by_step, labels) == 4


def test_margins_by_hand():
    first = np.array([[3.0, 1.0, 7.0], [2.0, np.inf, np.inf], [np.inf] * 3])
    assert np.array_equal(latency.margins(first, None, decision.FIRST_SPIKE), [2.0, np.inf, np.nan],
                          equal_nan=True)
    counts = np.array([[3, 5, 1], [0, 0, 0], [2, 2, 0]])
    assert np.array_equal(latency.margins(None, counts, decision.SPIKE_COUNT), [2.0, np.nan, 0.0], equal_nan=True)


def test_flips_fall_into_margin_quartiles_smallest_first():
    margin = np.array([4.0, 1.0, np.nan, 3.0, 2.0, 8.0, 7.0, 6.0, 5.0])  # sample 2: float undecided
    flipped = np.array([False, True, True, False, True, False, False, False, True])
    chip_latency = np.array([5, 9, -1, 6, 8, 1, 2, 3, 4])
    result = latency.difficulty(margin, chip_latency, flipped)
    # margins ranked 1,2 | 3,4 | 5,6 | 7,8 -> flips at margins 1, 2 (quartile 0) and 5 (quartile 2)
    assert result.samples_by_margin_quartile == (2, 2, 2, 2)
    assert result.flips_by_margin_quartile == (2, 0, 1, 0)
    assert result.latency_margin_spearman == -1.0  # latency falls as the margin grows, exactly monotone


def readable_ranks(values):
    return np.array([1 + (values < v).sum() + ((values == v).sum() - 1) / 2 for v in values])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=40))
def test_spearman_is_pearson_of_mean_ranks(pairs):
    a, b = (np.array(column, dtype=np.float64) for column in zip(*pairs))
    rho = latency.spearman(a, b)
    ra, rb = readable_ranks(a), readable_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        assert rho is None
    else:
        assert np.isclose(rho, np.corrcoef(ra, rb)[0, 1], rtol=0, atol=1e-12)


def drawn_raster(data, samples: int, steps: int, size: int) -> np.ndarray:
    """A (samples, steps, size) bool output raster of at most those sizes, drawn by hypothesis."""
    shape = (data.draw(st.integers(1, samples)), data.draw(st.integers(1, steps)), data.draw(st.integers(1, size)))
    cells = int(np.prod(shape))
    return np.array(data.draw(st.lists(st.booleans(), min_size=cells, max_size=cells))).reshape(shape)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_decisions_by_step_equal_the_rule_on_each_prefix_of_the_run(data):
    raster = drawn_raster(data, samples=4, steps=8, size=4)
    steps = raster.shape[1]
    spikes = SpikeEvents.from_raster(raster)
    for decoding in decision.SPIKE_DECODINGS:  # of spikes; a readout's membrane: tests/test_readouts.py
        fast = latency.decisions_by_step(spikes, decoding)
        for k in range(1, steps + 1):
            prefix = raster[:, :k]
            fired = prefix.any(axis=1)
            first = np.where(fired, prefix.argmax(axis=1) + 1.0, np.inf)
            assert np.array_equal(fast[:, k - 1], decision.decide(first, prefix.sum(axis=1), decoding))


def test_verify_states_the_decision_timing_of_a_tiny_network_whose_first_spikes_are_known(tmp_path):
    """Two inputs, each driving its own output neuron over threshold with one spike: output i fires a fixed
    D steps after a spike on input i (D measured once on a lone spike at step 1). Four samples whose one input
    spike comes at steps 2, 5, 3 and 30, labelled by their channel: every decision is right, final D steps after
    the input spike, and the accuracy reaches its final value only with the last sample's."""
    import nir

    from snn_deploy.deploy import compile_network, load_graph, verify
    from snn_deploy.targets import description

    from helpers import discrete_time_semantics

    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2])), nir.Affine(weight=np.eye(2) * 10.0, bias=np.zeros(2)),
        nir.LIF(tau=np.full(2, 5e-4), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        nir.Output(np.array([2])))
    nir.write(tmp_path / "tiny.nir", graph)
    steps = 40
    net = load_graph(tmp_path / "tiny.nir", {**discrete_time_semantics("s", steps * 1e-4), "decoding": "first_spike"})
    bundle = compile_network(net, description.load("loihi2"), dt=1e-4)

    def raster(spike_steps, channels):
        out = np.zeros((len(spike_steps), steps, 2), bool)
        out[np.arange(len(spike_steps)), np.array(spike_steps) - 1, channels] = True
        return out

    lone = verify(net, bundle, data=raster([1], [0]), labels=np.array([0]))
    delay = lone.metrics.decision_latency_steps["chip"].median - 1
    assert delay in (0, 1)  # the same step, or one Dense stage later (Euler)

    input_steps, labels = [2, 5, 3, 30], np.array([0, 1, 1, 0])
    verdict = verify(net, bundle, data=raster(input_steps, labels), labels=labels)
    m = verdict.metrics
    assert m.accuracy.chip == 1.0
    for model in ("chip", "float"):
        stats = m.decision_latency_steps[model]
        assert (stats.median, stats.mean, stats.undecided) == (4 + delay, 10 + delay, 0)
    assert (m.early_decision.step, m.early_decision.accuracy) == (30 + delay, 1.0)
    curve = np.array(m.accuracy_by_step.chip)
    assert np.array_equal(curve * 4, [sum(s + delay <= k for s in input_steps) for k in m.accuracy_by_step.steps])
    assert m.early_decision.energy_j.nominal < m.energy.total.energy_j.total.nominal


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_count_rule_check_counts_ties_silence_and_the_other_rules_decisions(data):
    raster = drawn_raster(data, samples=6, steps=5, size=4)
    samples = raster.shape[0]
    first = np.where(raster.any(axis=1), raster.argmax(axis=1) + 1.0, np.inf)
    counts = raster.sum(axis=1)
    assert latency.count_rule_check(first, counts, decision.FIRST_SPIKE) is None
    for decoding, other in ((decision.SPIKE_COUNT, decision.SPIKE_COUNT_ARGMAX),
                            (decision.SPIKE_COUNT_ARGMAX, decision.SPIKE_COUNT)):
        check = latency.count_rule_check(first, counts, decoding)
        assert check.other_decoding == other
        assert check.silent == sum(not raster[s].any() for s in range(samples))
        assert check.tied == sum(raster[s].any() and list(counts[s]).count(counts[s].max()) > 1 for s in range(samples))
        # Sample by sample: spike_count takes the earliest first spike among the largest counts, argmax the lowest
        # index; silence is NO_DECISION for the one, class 0 for the other.
        by_count = [int(np.argmin(np.where(counts[s] == counts[s].max(), first[s], np.inf))) if counts[s].max() else -1
                    for s in range(samples)]
        by_argmax = [int(np.flatnonzero(counts[s] == counts[s].max())[0]) for s in range(samples)]
        assert check.decided_otherwise == sum(a != b for a, b in zip(by_count, by_argmax))
