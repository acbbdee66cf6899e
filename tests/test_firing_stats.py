"""Firing statistics (deploy/artifacts/firing.py, deploy/stages/firing.py): the Earth Mover's Distance of each
layer's spike-count distribution, chip against the float reference, and the count error; exact, the same in
parts as in one pass, zero for a chip that is the float reference, and in the verdict's JSON and text."""

import dataclasses
import json

import numpy as np
import pytest
import scipy.stats

from snn_deploy.deploy import compile_network, export, load_graph
from snn_deploy.deploy.artifacts.firing import CountTally, LayerFiring
from snn_deploy.deploy.artifacts.verdict import SCHEMA_VERSION
from snn_deploy.deploy.references import discrete as discrete_reference
from snn_deploy.deploy.reporting.text import format_summary
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.firing import count_tally
from snn_deploy.deploy.stages.stimulus import encode
from snn_deploy.deploy.stages.verify import compare_spikes, judge
from snn_deploy.models import data, zoo
from snn_deploy.targets import description
from snn_deploy.targets import record as record_io
from snn_deploy.targets.record import SpikeEvents, SpikeRecord


def events_of(counts: np.ndarray, num_steps: int) -> SpikeEvents:
    """Spikes with the given (samples, neurons) counts: a neuron with count c spikes in steps 1 to c."""
    sample, neuron = np.nonzero(counts)
    repeats = counts[sample, neuron]
    step = np.concatenate([np.arange(1, c + 1) for c in repeats]) if repeats.size else np.zeros(0, int)
    return SpikeEvents.from_arrays(np.repeat(sample, repeats), step, np.repeat(neuron, repeats),
                                   num_samples=counts.shape[0], num_steps=num_steps, size=counts.shape[1])


def random_counts(rng, samples: int, neurons: int, high: int, silent: float) -> np.ndarray:
    counts = rng.integers(0, high + 1, (samples, neurons))
    return np.where(rng.random(counts.shape) < silent, 0, counts)


# (samples, neurons, largest count, share of silent pairs): 16 x 16 = 256 pairs, a power of two, so that scipy's
# floating-point cumulative distributions (multiples of 1/256) and their sum are exact too.
CASES = [(16, 16, 3, 0.0), (16, 16, 12, 0.6), (32, 8, 1, 0.3), (8, 32, 25, 0.9), (16, 16, 0, 0.0)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("samples, neurons, high, silent", CASES)
def test_emd_is_the_wasserstein_distance_of_the_counts_exactly(seed, samples, neurons, high, silent):
    rng = np.random.default_rng(seed)
    chip = random_counts(rng, samples, neurons, high, silent)
    reference = random_counts(rng, samples, neurons, max(high - 1, 0), silent / 2)
    tally = count_tally(events_of(chip, 30), events_of(reference, 30))
    assert np.array_equal(np.trim_zeros(np.bincount(chip.ravel()), "b"), tally.chip_histogram)
    assert np.array_equal(np.trim_zeros(np.bincount(reference.ravel()), "b"), tally.reference_histogram)
    # Two empirical distributions of equally many points: W1 is the mean distance of the sorted points paired in
    # order, an integer sum over the pairs.
    paired = int(np.abs(np.sort(chip.ravel()) - np.sort(reference.ravel())).sum())
    assert tally.emd_pairs() == paired
    firing = LayerFiring.of(tally)
    assert firing.emd_spikes == paired / chip.size
    assert firing.emd_spikes == scipy.stats.wasserstein_distance(chip.ravel(), reference.ravel())
    difference = np.abs(chip - reference)
    assert firing.count_error_mean_abs == int(difference.sum()) / chip.size
    assert firing.count_error_max_abs == difference.max()
    assert tally.identical_samples == np.sum((difference == 0).all(axis=1))
    assert (firing.chip_mean_count, firing.reference_mean_count) == (chip.sum() / chip.size,
                                                                     reference.sum() / reference.size)
    assert firing.total_relative_difference == (
        (int(chip.sum()) - int(reference.sum())) / int(reference.sum()) if reference.any() else None)


def test_tallies_of_parts_merge_into_the_one_pass_tally_exactly(monkeypatch):
    rng = np.random.default_rng(7)
    chip, reference = (random_counts(rng, 41, 13, high, 0.4) for high in (9, 7))
    chip_events, reference_events = events_of(chip, 12), events_of(reference, 12)
    monkeypatch.setattr(record_io, "BATCH_BYTES", 2**40)  # one batch
    whole = count_tally(chip_events, reference_events)
    bounds = [0, 1, 2, 17, 30, 41]  # uneven parts, one of a single sample
    parts = [count_tally(chip_events.sample_range(start, stop), reference_events.sample_range(start, stop))
             for start, stop in zip(bounds[:-1], bounds[1:])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merged(part)
    assert merged == whole
    assert LayerFiring.of(merged) == LayerFiring.of(whole)
    for bytes_ in (1, 1000):  # one sample a batch; a few
        monkeypatch.setattr(record_io, "BATCH_BYTES", bytes_)
        assert count_tally(chip_events, reference_events) == whole
    # The parts' histograms differ in length (their largest counts differ): merging pads them.
    assert len({len(part.chip_histogram) for part in parts}) > 1


def test_tallies_of_layers_of_different_sizes_do_not_merge():
    with pytest.raises(ValueError, match="tallies of 3 and 4 neurons"):
        CountTally(1, 3, (3,), (3,), 0, 0, 1).merged(CountTally(1, 4, (4,), (4,), 0, 0, 1))


# --- in verify ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The zoo's multi-spike Yin-Yang network compiled for loihi2, and the input spikes of 40 test samples."""
    path = tmp_path_factory.mktemp("firing") / "yy.nir"
    export(zoo.load("yinyang-multispike"), path)
    net = load_graph(path)
    bundle = compile_network(net, description.load("loihi2"))
    test = data.load("yinyang:test")
    times, inputs = encode(bundle, test.features[:40])
    return net, bundle, inputs, times, test.labels[:40]


def _verdict(net, bundle, inputs, times, labels, record=None):
    comparison = compare_spikes(net, bundle, inputs, labels=labels, times_in=times, record=record)
    return judge(comparison, net, bundle)


def test_a_chip_that_fires_as_the_float_reference_has_emd_and_count_error_zero(deployed):
    net, bundle, inputs, times, labels = deployed
    discrete = discrete_reference.simulate(discretize(net, bundle.timing.dt), inputs, bundle.timing.num_steps)
    replay = SpikeRecord("bitsim", bundle.checksum, inputs.num_samples, bundle.timing.num_steps,
                         spikes={pop.name: discrete[pop.name] for pop in bundle.network.populations},
                         counters={pop.name: {"current_wraps": 0, "voltage_saturations": 0}
                                   for pop in bundle.network.populations})
    firing = _verdict(net, bundle, inputs, times, labels, record=replay).metrics.firing
    assert list(firing.layers) == [layer.name for layer in net.layers] and firing.reference == "discrete"
    for layer in firing.layers.values():
        assert layer.tally.chip_histogram == layer.tally.reference_histogram
        assert layer.tally.reference_total > 0  # the layer fires
        assert (layer.emd_spikes, layer.count_error_mean_abs, layer.count_error_max_abs,
                layer.total_relative_difference) == (0.0, 0.0, 0, 0.0)


def test_a_perturbed_bundle_shifts_the_firing_distribution(deployed):
    net, bundle, inputs, times, labels = deployed
    hidden = bundle.network.populations[0]
    # Half the hidden layer's thresholds (its neurons fire more): an error the chip does not make by itself.
    lowered = dataclasses.replace(hidden, vth=np.maximum(hidden.vth // 2, 1))
    perturbed = dataclasses.replace(bundle, network=dataclasses.replace(
        bundle.network, populations=(lowered, *bundle.network.populations[1:])))
    before = _verdict(net, bundle, inputs, times, labels).metrics.firing.layers[hidden.name]
    after = _verdict(net, perturbed, inputs, times, labels).metrics.firing.layers[hidden.name]
    assert after.emd_spikes > 0 and after.count_error_mean_abs > 0 and after.total_relative_difference > 0
    assert after.emd_spikes > before.emd_spikes and after.count_error_mean_abs > before.count_error_mean_abs


def test_the_verdict_states_the_firing_statistics_in_json_and_text(deployed):
    net, bundle, inputs, times, labels = deployed
    verdict = _verdict(net, bundle, inputs, times, labels)
    result = json.loads(verdict.to_json())
    assert result["schema_version"] == SCHEMA_VERSION == 7
    assert result["firing"]["reference"] == "discrete"
    assert list(result["firing"]["layers"]) == [layer.name for layer in net.layers]
    for name, layer in result["firing"]["layers"].items():
        assert set(layer) == {"emd_spikes", "count_error_mean_abs", "count_error_max_abs",
                              "total_relative_difference", "chip_mean_count", "reference_mean_count", "tally"}
        assert set(layer["tally"]) == {"samples", "neurons", "chip_histogram", "reference_histogram",
                                       "abs_difference", "max_abs_difference", "identical_samples"}
        assert layer["tally"]["samples"] == 40
        assert sum(layer["tally"]["chip_histogram"]) == 40 * bundle.network.population(name).size
    # The output layer's count error is the one the verdict has always stated.
    output = verdict.metrics.firing.layers[bundle.network.output]
    assert verdict.metrics.output_spike_count_error.mean_abs == output.count_error_mean_abs
    assert verdict.metrics.output_spike_count_error.max_abs == output.count_error_max_abs
    lines = format_summary(verdict)
    heading = lines.index("  firing, chip vs discrete reference, spikes per neuron and sample")
    for offset, layer in enumerate(net.layers, start=2):
        row = lines[heading + offset].split()
        firing = verdict.metrics.firing.layers[layer.name]
        assert row[0] == layer.name and row[3] == f"{firing.emd_spikes:.4f}"
