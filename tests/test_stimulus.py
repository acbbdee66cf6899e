"""stimulus: data selections -> input spikes in chip steps, on hand-computed cases."""

import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.stages.export import export
from snn_deploy.deploy.stages.stimulus import (input_times, load_stimulus, random_spec, random_spike_trains,
                                               to_steps)
from snn_deploy.models import data
from snn_deploy.targets import description

from helpers import random_ttfs_model


def test_a_spike_time_is_sent_in_the_nearest_step_never_before_step_one():
    times = np.array([[0.0, 0.24, 0.25, 0.26, np.inf, 1.0, 1.01]])
    events = to_steps(times, dt=0.5, num_steps=2)
    # round(t / dt): 0 -> step 1 (at least), 0.48 -> 0 -> 1, 0.5 -> 1 (half up), 0.52 -> 1, inf -> none,
    # 2.0 -> 2, 2.02 -> 2; nothing beyond the last step.
    np.testing.assert_array_equal(events.first_spike_steps(), [[1, 1, 1, 1, -1, 2, 2]])
    dropped = to_steps(np.array([[1.3]]), dt=0.5, num_steps=2)  # step 3 > 2 steps
    assert dropped.events.shape[1] == 0


def test_random_spike_trains_are_seeded_and_have_the_rate_asked_for():
    a = random_spike_trains(50, 20, 200, 0.05, seed=7)
    b = random_spike_trains(50, 20, 200, 0.05, seed=7)
    c = random_spike_trains(50, 20, 200, 0.05, seed=8)
    np.testing.assert_array_equal(a.events, b.events)
    assert not np.array_equal(a.events, c.events)
    rate = a.events.shape[1] / (50 * 20 * 200)
    assert abs(rate - 0.05) < 0.005  # 200,000 Bernoulli draws: 5 standard deviations ~ 0.0025
    assert a.events[1].min() >= 1 and a.events[1].max() <= 200


def test_the_random_spec_parses_its_options_and_refuses_others():
    assert random_spec("random") == {"rate": 0.05, "seed": 0}
    assert random_spec("random:rate=0.1,seed=3") == {"rate": 0.1, "seed": 3}
    assert random_spec("yinyang:test") is None
    for bad in ("random:rate=0", "random:rate=x", "random:speed=1"):
        with pytest.raises(DeployError):
            random_spec(bad)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("stimulus") / "m.nir"
    export(random_ttfs_model(), path)
    net = load_graph(path)
    return net, compile_network(net, description.load("loihi2"))


def test_a_data_set_is_encoded_by_the_bundles_encoding_and_names_its_selection(bundle):
    net, compiled = bundle
    stimulus = load_stimulus("yinyang:test", 12, compiled)
    features = data.load("yinyang:test").features[:12]
    times = input_times(compiled.encoding, features)
    np.testing.assert_array_equal(stimulus.times, times)
    np.testing.assert_array_equal(stimulus.inputs.events,
                                  to_steps(times, compiled.timing.dt, compiled.timing.num_steps).events)
    np.testing.assert_array_equal(stimulus.labels, data.load("yinyang:test").labels[:12])
    assert stimulus.selection == "yinyang:test samples 0-11"
    random = load_stimulus("random:seed=2", 5, compiled)
    assert random.labels is None and random.times is None
    assert random.selection == "random:rate=0.05,seed=2 samples 0-4"
