"""Robustness (deploy/stages/robustness.py): the perturbations do what they say, seeded and exactly, and the
levels' decisions come from the same comparison verify makes."""

import numpy as np
import pytest

from snn_deploy.deploy.artifacts.robustness import Perturbation, RobustnessSpec
from snn_deploy.deploy.artifacts.stimulus import DataReport, Stimulus
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.stages import robustness
from snn_deploy.targets.record import SpikeEvents


class Shape:
    """The few bundle fields perturb reads."""

    def __init__(self, size, bias_channels, dt=0.1, num_steps=20):
        self.network = type("N", (), {"input": type("I", (), {"size": size})()})()
        self.encoding = {"bias_times": [0.5] * bias_channels} if bias_channels else {}
        self.timing = type("T", (), {"dt": dt, "num_steps": num_steps})()


def test_the_spec_parses_in_order_and_bad_specs_name_the_problem():
    assert robustness.parse_robustness("jitter=0.5,1;drop=0.1") == RobustnessSpec((
        Perturbation("jitter", 0.5), Perturbation("jitter", 1.0), Perturbation("drop", 0.1)), seed=0)
    assert robustness.parse_robustness("drop=0;seed=7").seed == 7
    for spec, words in (("noise=1", "not 'noise=1'"), ("jitter=x", "'x' is not a number"),
                        ("drop=1.5", "between 0 and 1"), ("jitter=-1", "at least 0"), (";", "names no"),
                        ("jitter=nan", "at least 0"), ("drop=0;seed=-2", "seed must be"), ("seed=1", "names no")):
        with pytest.raises(DeployError, match=words):
            robustness.parse_robustness(spec)


def test_encoded_times_are_jittered_in_continuous_time_and_the_bias_channel_is_kept():
    times = np.array([[0.3, 1.0, np.inf, 0.5], [0.2, 0.4, 0.8, 0.5]])  # last column: the bias spike
    stimulus = Stimulus("s", SpikeEvents.from_raster(np.zeros((2, 20, 4), bool)), np.array([0, 1]), times, "s 0-1")
    bundle = Shape(4, bias_channels=1)
    noisy = robustness.perturb(stimulus, bundle, Perturbation("jitter", 2.0), seed=3)
    again = robustness.perturb(stimulus, bundle, Perturbation("jitter", 2.0), seed=3)
    assert np.array_equal(noisy.times, again.times)  # seeded
    assert np.array_equal(noisy.times[:, 3], times[:, 3]) and noisy.times[0, 2] == np.inf
    moved = noisy.times[:, :3][np.isfinite(times[:, :3])] - times[:, :3][np.isfinite(times[:, :3])]
    assert np.all(moved != 0) and np.all(noisy.times >= 0)
    # the chip's input: the perturbed times in its steps, by the one quantizer
    from snn_deploy.deploy.stages.stimulus import to_steps
    assert np.array_equal(noisy.inputs.events, to_steps(noisy.times, 0.1, 20).events)
    assert noisy.selection != stimulus.selection


def test_dropping_deletes_about_the_level_of_the_sensor_spikes_only():
    rng = np.random.default_rng(0)
    raster = rng.random((50, 10, 9)) < 0.3
    stimulus = Stimulus("r", SpikeEvents.from_raster(raster), None, None, "r 0-49")
    noisy = robustness.perturb(stimulus, Shape(9, bias_channels=1), Perturbation("drop", 0.25))
    kept = noisy.inputs.raster()
    assert not np.any(kept & ~raster)  # only deletions (spike data: every channel is a sensor)
    fraction = 1 - kept.sum() / raster.sum()
    assert 0.2 < fraction < 0.3
    assert robustness.perturb(stimulus, Shape(9, 0), Perturbation("drop", 0.0)).inputs.events.tolist() == \
        stimulus.inputs.events.tolist()


def test_jittered_spike_data_stay_within_the_input_steps_and_merge():
    raster = np.zeros((1, 12, 2), bool)
    raster[0, [0, 1, 9], 0] = True
    report = DataReport("r", "", None, False, input_steps=10, events=3, cropped_events=0, merged_events=0,
                        empty_samples=0)
    stimulus = Stimulus("r", SpikeEvents.from_raster(raster), None, None, "r 0", report)
    noisy = robustness.perturb(stimulus, Shape(2, 0, num_steps=12), Perturbation("jitter", 50.0), seed=1)
    sample, step, channel = noisy.inputs.events
    assert np.all((step >= 1) & (step <= 10)) and np.all(channel == 0)
    assert 1 <= step.size <= 3 and np.unique(step).size == step.size


@pytest.fixture(scope="module")
def yinyang(tmp_path_factory):
    from snn_deploy.deploy.interfaces.cli import main
    from snn_deploy.deploy.stages.stimulus import load_stimulus
    from snn_deploy.deploy.stages.verify import reference_network
    from snn_deploy.targets import bundle as bundle_io

    root = tmp_path_factory.mktemp("robust")
    graph, path = root / "yy.nir", root / "yy.bundle"
    assert main(["export", "yinyang-ttfs", "-o", str(graph), "-q"]) == 0
    assert main(["compile", str(graph), "--target", "loihi2", "-o", str(path), "-q"]) == 0
    bundle = bundle_io.load(path)
    return reference_network(graph, bundle), bundle, load_stimulus("yinyang:test", 200, bundle, references=True)


def test_zero_noise_is_the_plain_comparison_and_noise_costs_accuracy(yinyang):
    from snn_deploy.deploy.stages.verify import compare_spikes, robustness_levels

    net, bundle, stimulus = yinyang
    plain = compare_spikes(net, bundle, stimulus.inputs, labels=stimulus.labels, times_in=stimulus.times)
    quiet, noisy = robustness_levels(net, bundle, stimulus, robustness.parse_robustness("jitter=0,8"))
    assert quiet.accuracy_chip == np.mean(plain.decisions["chip"] == stimulus.labels)
    assert quiet.accuracy_float == np.mean(plain.decisions["float"] == stimulus.labels)
    assert quiet.agreement == np.mean(plain.decisions["chip"] == plain.decisions["float"])
    assert noisy.accuracy_float < quiet.accuracy_float and noisy.accuracy_chip < quiet.accuracy_chip
