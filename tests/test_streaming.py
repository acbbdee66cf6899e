"""Memory stays bounded: the passes over a run's samples go in batches (``targets.record.BATCH_BYTES``), and the
batches change nothing. Forced to one sample per batch everywhere, verify gives the verdict of one batch
holding every sample, key for key and bit for bit, energy included."""

from __future__ import annotations

from dataclasses import asdict

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph, verify
from snn_deploy.deploy.stages import energy, stimulus
from snn_deploy.deploy.stages.verify import bundle_target, first_divergence_steps
from snn_deploy.targets import bitsim, description, record, schedule
from snn_deploy.targets.record import SpikeEvents

from helpers import discrete_time_semantics, edited_target

STEPS = 30
UNBATCHED = 2**62  # bytes: every pass in one batch


def two_layer_graph(sizes=(40, 70, 5), seed: int = 3):
    """Input -> Affine -> LIF -> Affine -> LIF, random weights of both signs, mostly excitatory (busy layers)."""
    rng = np.random.default_rng(seed)
    nodes = [nir.Input(np.array([sizes[0]]))]
    for n_in, n_out, high in zip(sizes[:-1], sizes[1:], (0.4, 1.5)):
        nodes += [nir.Affine(weight=rng.uniform(-0.1, high, (n_out, n_in)), bias=np.zeros(n_out)),
                  nir.LIF(tau=np.full(n_out, 8.0), r=np.ones(n_out), v_leak=np.zeros(n_out),
                          v_threshold=np.ones(n_out))]
    return nir.NIRGraph.from_list(*nodes, nir.Output(np.array([sizes[-1]])))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The graph compiled in steps (dt 1, STEPS steps) for loihi2 with 32 neurons a core (the hidden layer on
    three cores), and random input spikes of 23 samples with labels."""
    folder = tmp_path_factory.mktemp("streaming")
    path = folder / "net.nir"
    nir.write(path, two_layer_graph())
    net = load_graph(path, discrete_time_semantics("step", STEPS))
    target = description.load(edited_target(folder, [(r"^max_neurons = 8192", "max_neurons = 32")], base="loihi2"))
    bundle = compile_network(net, target, dt=1.0)
    assert len(bundle.placement.population_cores(bundle.network.populations[0].name)) > 1
    rng = np.random.default_rng(4)
    input_steps = bundle.timing.num_steps - bundle.timing.latency_steps
    raster = rng.random((23, input_steps, 40)) < 0.15
    raster[7] = False  # an empty sample
    return path, bundle, raster, rng.integers(0, 5, 23)


def _batched(monkeypatch, bytes_: int) -> None:
    """Every batch knob of a verify at ``bytes_`` (1: one sample per batch)."""
    monkeypatch.setattr(record, "BATCH_BYTES", bytes_)
    monkeypatch.setattr(schedule, "BATCH_RASTER_BYTES", bytes_)
    monkeypatch.setattr(stimulus, "SAMPLES_PER_BATCH", 1 if bytes_ < UNBATCHED else 10**9)


def test_a_verify_in_batches_of_one_sample_gives_the_unbatched_verdict_key_for_key(compiled, monkeypatch):
    path, bundle, raster, labels = compiled
    _batched(monkeypatch, UNBATCHED)
    whole = verify(path, bundle, data=raster, labels=labels).to_dict()
    _batched(monkeypatch, 1)
    batched = verify(path, bundle, data=raster, labels=labels).to_dict()
    assert batched == whole
    # The comparison had something to compare: spikes in both layers, and an energy estimate.
    assert all(count > 0 for count in whole["activity"]["spikes_per_inference"].values())
    assert whole["energy"]["total"]["synaptic_ops"] > 0 and whole["divergence"]["per_sample"]


def test_the_energy_estimate_in_batches_is_the_whole_one_with_traces_too(compiled, monkeypatch):
    _, bundle, raster, _ = compiled
    inputs = SpikeEvents.from_raster(np.concatenate(
        [raster, np.zeros((raster.shape[0], bundle.timing.latency_steps, raster.shape[2]), bool)], axis=1))
    target = bundle_target(bundle)
    for record_state in (False, True):
        run = bitsim.run(bundle, inputs, record_state=record_state)
        assert bool(run.traces) == record_state
        _batched(monkeypatch, UNBATCHED)
        whole = asdict(energy.estimate(bundle, run, inputs, target))
        for bytes_ in (1, 200_000):  # one sample a batch; a few, the last one short
            _batched(monkeypatch, bytes_)
            assert asdict(energy.estimate(bundle, run, inputs, target)) == whole, (record_state, bytes_)


def test_first_spike_steps_counts_and_divergence_do_not_depend_on_the_batches(monkeypatch):
    rng = np.random.default_rng(5)
    a, b = (SpikeEvents.from_raster(rng.random((17, 12, 9)) < 0.2) for _ in range(2))
    monkeypatch.setattr(record, "BATCH_BYTES", UNBATCHED)
    whole = [a.first_spike_steps(), a.counts(), first_divergence_steps(a, b)]
    assert (whole[2] >= 0).any()
    for bytes_ in (1, 3000):
        monkeypatch.setattr(record, "BATCH_BYTES", bytes_)
        for expected, actual in zip(whole, [a.first_spike_steps(), a.counts(), first_divergence_steps(a, b)]):
            assert expected.dtype == actual.dtype and np.array_equal(expected, actual)
    # The definitions, independently: the first spike's step, the number of spikes.
    raster = a.raster()
    assert np.array_equal(whole[0], np.where(raster.any(axis=1), raster.argmax(axis=1) + 1, -1))
    assert np.array_equal(whole[1], raster.sum(axis=1))


@pytest.mark.parametrize("repeat", [None, 2, 3, 4])
def test_the_compiled_engine_checks_its_input_order_across_passes(monkeypatch, repeat):
    """``_sorted_inputs`` checks the keys in passes of KEY_BATCH events overlapping by one: an event repeated
    across a pass's edge (events 2 and 3 with passes of 3) is found as within one."""
    from snn_deploy.targets import bitsim_compiled

    sample, step, channel = [0, 0, 1, 1, 1, 2, 3], [1, 2, 1, 2, 3, 1, 2], [4, 0, 1, 1, 0, 2, 3]
    if repeat is not None:
        sample, step, channel = (row[:repeat] + [row[repeat - 1]] + row[repeat:] for row in (sample, step, channel))
    events = np.array([sample, step, channel], np.int32)
    events.setflags(write=False)
    inputs = SpikeEvents(events, 4, 3, 5)
    once = SpikeEvents.from_raster(inputs.raster()).events  # each spike once, sorted
    assert once.shape[1] == 7
    for key_batch in (3, 10**6):
        monkeypatch.setattr(bitsim_compiled, "KEY_BATCH", key_batch)
        ptr, steps, channels = bitsim_compiled._sorted_inputs(inputs)
        assert np.array_equal(steps, once[1]) and np.array_equal(channels, once[2]), key_batch
        assert np.array_equal(ptr, [0, 2, 5, 6, 7]) and not steps.flags.writeable
