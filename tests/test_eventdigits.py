"""eventdigits (N-MNIST's counterpart from the 8x8 digits) and the zoo's eventdigits-cnn (snnTorch, exported
with snnTorch's own exporter): the data set is seeded and behaves as DVS pixels do; its N-MNIST-format files,
read by the tonic route, give the chip exactly the spikes of --data eventdigits:test; the committed model
reproduces its stored snnTorch accuracy, compiles for loihi2, and its float reference decides as snnTorch
does on every sample checked."""

import hashlib
import json
import os
import warnings

import numpy as np
import pytest

try:
    import nir
    import snntorch  # noqa: F401
    import tonic  # noqa: F401
    import torch
except ImportError as exc:
    if os.environ.get("CI") == "true":
        raise  # CI must run these tests: tools/env.sh installs snnTorch and tonic
    pytest.skip(f"snnTorch or tonic not installed (tools/env.sh installs them; under CI this fails): {exc}",
                allow_module_level=True)

from snn_deploy.deploy import DataOptions, compare_spikes, compile_network, load_graph, load_stimulus
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.models import data, eventdigits, train_eventdigits, zoo
from snn_deploy.targets import description

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
torch.set_num_threads(1)  # the machine is shared

SAMPLES = 60  # of the test split, for the route and chip checks (the full split's figures are in the sidecar)
NAME = train_eventdigits.NAME


@pytest.fixture(scope="module")
def test_split():
    return data.eventdigits("test")


@pytest.fixture(scope="module")
def bundle():
    """The zoo graph with its sidecar's semantics, compiled for loihi2 as the sidecar's command line does."""
    sidecar = zoo.graph_description(NAME)
    graph = load_graph(zoo.graph_path(NAME), sidecar["semantics"])
    return graph, compile_network(graph, description.load("loihi2"), dt=sidecar["dt"])


# --- the data set ----------------------------------------------------------------------------------------------

def test_splits_are_the_digits_splits_as_events():
    for split, size in (("train", 1257), ("validation", 180), ("test", 360)):
        dataset = data.eventdigits(split)
        assert len(dataset) == size and dataset.sensor_size == (34, 34, 2)
        assert np.array_equal(dataset.targets, data.digits(split).labels)
    with pytest.raises(ValueError, match="eventdigits:bogus"):
        data.load_events("eventdigits:bogus")


def test_samples_are_seeded_and_made_alone(test_split):
    again = data.eventdigits("test")
    for index in (5, 0, 359):  # out of order: a sample depends on its own seed only
        assert np.array_equal(again[index][0], test_split[index][0])
    assert not np.array_equal(test_split[0][0], data.eventdigits("validation")[0][0])
    # Pins the generator: a change to any constant or step of it changes these events.
    digest = hashlib.sha256(b"".join(test_split[index][0].tobytes() for index in range(3))).hexdigest()[:16]
    assert digest == "c6919b348e6374e4"


def test_events_lie_on_the_sensor_in_time_order(test_split):
    for index in range(10):
        events, label = test_split[index]
        assert events.dtype.names == ("x", "y", "t", "p") and 0 <= label <= 9
        assert np.all(np.diff(events["t"]) >= 0)
        assert events["x"].min() >= 0 and events["x"].max() < 34 and events["y"].min() >= 0 and events["y"].max() < 34
        assert events["t"].min() >= 0 and events["t"].max() < eventdigits.DURATION_US
        assert set(np.unique(events["p"])) == {0, 1}
        # Every saccade moves the digit, so each of the three has events.
        thirds = np.bincount(events["t"] * 3 // eventdigits.DURATION_US, minlength=3)
        assert np.all(thirds > 1000)


def test_a_dvs_pixel_sends_as_many_on_as_off_events_over_a_closed_path(test_split):
    """The saccades end where they began, so each pixel's log intensity returns to its start: without noise, its
    ON and OFF events cancel, pixel by pixel, but for one (the last crossing lands exactly on the starting
    level, and rounding decides whether it is sent)."""
    rng = np.random.default_rng(0)
    events = eventdigits.dvs_events(test_split.images[0], rng, noise=0)
    sign = np.where(events["p"] == 1, 1, -1)
    net, sent = np.zeros((34, 34), np.int64), np.zeros((34, 34), np.int64)
    np.add.at(net, (events["y"], events["x"]), sign)
    np.add.at(sent, (events["y"], events["x"]), 1)
    assert events.size > 5000 and sent.max() >= 10 and np.abs(net).max() == 1
    # A blank screen sends nothing but noise.
    assert eventdigits.dvs_events(np.zeros((8, 8)), rng, noise=0).size == 0
    noisy = eventdigits.dvs_events(np.zeros((8, 8)), np.random.default_rng(1))
    assert 100 < noisy.size < 300  # Poisson, mean NOISE_EVENTS = 200


def test_upsampling_keeps_a_constant_image_and_the_pixel_centres():
    assert np.array_equal(eventdigits.upsample(np.full((8, 8), 0.5)), np.full((24, 24), 0.5))
    image = np.arange(64, dtype=np.float64).reshape(8, 8)
    up = eventdigits.upsample(image)
    assert np.array_equal(up[1::3, 1::3], image)  # output pixel 3i + 1 is centred on input pixel i


# --- the tonic route: N-MNIST's own files --------------------------------------------------------------------

def test_nmnist_files_give_the_chip_the_spikes_of_eventdigits(test_split, bundle, tmp_path):
    _, compiled = bundle
    eventdigits.write_nmnist(test_split, tmp_path, count=SAMPLES)
    files = sorted((tmp_path / "NMNIST" / "Test").glob("*/*.bin"))
    assert len(files) == SAMPLES and all(f.stat().st_size % 5 == 0 for f in files)
    direct = load_stimulus("eventdigits:test", SAMPLES, compiled)
    via_files = load_stimulus("nmnist:test", None, compiled, options=DataOptions(data_root=str(tmp_path)))
    order = eventdigits.nmnist_order(test_split.targets[:SAMPLES])
    assert np.array_equal(via_files.labels, direct.labels[order])
    assert direct.report.events == via_files.report.events > 0 and direct.report.cropped_events == 0
    assert direct.report.merged_events == via_files.report.merged_events
    for position, sample in enumerate(order):
        a, b = direct.inputs.events, via_files.inputs.events
        assert np.array_equal(a[1:, a[0] == sample], b[1:, b[0] == position]), f"sample {sample}"


def test_the_training_frames_are_what_the_chip_is_fed(test_split, bundle):
    _, compiled = bundle
    count = 20
    stimulus = load_stimulus("eventdigits:test", count, compiled)
    frames = test_split.frames(count)  # (samples, steps, 2, 34, 34)
    sample, step, channel = stimulus.inputs.events
    raster = np.zeros((count, eventdigits.NUM_STEPS, 2 * 34 * 34), bool)
    raster[sample, step - 1, channel] = True  # chip step 1 is data step 0; channel (p H + y) W + x
    assert np.array_equal(raster, frames.reshape(count, eventdigits.NUM_STEPS, -1))


def test_unknown_split_is_one_line_and_exit_2(bundle, tmp_path, capsys):
    path = tmp_path / "net.bundle"
    from snn_deploy.targets import bundle as bundle_io

    bundle_io.save(bundle[1], path)
    assert main(["run", str(path), "--data", "eventdigits:bogus", "-o", str(tmp_path / "r.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eventdigits:bogus" in err[0]
    assert not (tmp_path / "r.h5").exists()


# --- the zoo model -------------------------------------------------------------------------------------------

def test_zoo_graph_is_snntorchs_export_of_a_conv_net():
    graph = nir.read(zoo.graph_path(NAME))
    kinds = sorted(type(node).__name__ for node in graph.nodes.values())
    assert kinds == sorted(["Input", "Conv2d", "LIF", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF",
                            "Output"])
    sidecar = zoo.graph_description(NAME)
    assert sidecar["kind"] == "nir" and sidecar["dataset"] == "eventdigits"
    assert sidecar["meta"]["accuracy"]["test"] >= 0.94
    assert NAME in zoo.graph_names() and NAME not in zoo.names()


def test_snntorch_reproduces_the_stored_test_accuracy(test_split):
    sidecar = zoo.graph_description(NAME)
    config = train_eventdigits.EventCNNConfig(**sidecar["config"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = train_eventdigits.net_from_graph(nir.read(zoo.graph_path(NAME)), config)
    spikes = train_eventdigits.output_spikes(net, test_split.frames())
    accuracy = float(np.mean(train_eventdigits.decisions(spikes) == test_split.targets))
    assert accuracy == sidecar["meta"]["accuracy"]["test"]


def test_float_reference_decides_as_snntorch_and_the_chip_agrees(test_split, bundle):
    graph, compiled = bundle
    sidecar = zoo.graph_description(NAME)
    config = train_eventdigits.EventCNNConfig(**sidecar["config"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = train_eventdigits.net_from_graph(nir.read(zoo.graph_path(NAME)), config)
    snntorch_decisions = train_eventdigits.decisions(train_eventdigits.output_spikes(net, test_split.frames(SAMPLES)))
    stimulus = load_stimulus("eventdigits:test", SAMPLES, compiled)
    comparison = compare_spikes(graph, compiled, stimulus.inputs, labels=stimulus.labels)
    assert np.array_equal(comparison.decisions["float"], snntorch_decisions)
    assert np.mean(comparison.decisions["chip"] == comparison.decisions["float"]) >= 0.95
    print(f"\neventdigits-cnn, first {SAMPLES} test samples: float {np.mean(snntorch_decisions == stimulus.labels):.4f}"
          f", chip {np.mean(comparison.decisions['chip'] == stimulus.labels):.4f}, agreement "
          f"{np.mean(comparison.decisions['chip'] == comparison.decisions['float']):.4f}; "
          f"stored full-split figures {json.dumps(sidecar['meta'].get('deployed'))}")
