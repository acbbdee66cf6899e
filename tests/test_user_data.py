"""The user's own data as --data: .npz rasters and events, NIR data, and tonic's event data sets in their real
on-disk layouts (N-MNIST, SHD, DVSGesture, written here), each checked against the same events as an .npz:
identical input spikes. Events after the run are cropped and counted, and so are empty samples; a run's
spikes are written as NIR data that nir.read_data reads and --replay accepts."""

import dataclasses
import json
import re

import h5py
import nir
import numpy as np
import pytest
import tonic  # the events extra: tools/env.sh installs it

from snn_deploy.deploy import DataOptions, SpikeEvents, compile_network, load_graph, load_stimulus, verify
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.stimulus import data_spec
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description
from snn_deploy.targets import record as record_io

from helpers import (discrete_time_semantics, lif_graph, random_events, write_dvsgesture, write_nmnist, write_shd)

INPUT_STEPS = 40


def compiled(tmp_path, n_in: int, n_out: int, time_unit: str, dt: float, name: str = "g"):
    """A LIF graph of n_in inputs, written and compiled with discrete-time semantics over INPUT_STEPS steps."""
    path = tmp_path / f"{name}.nir"
    nir.write(path, lif_graph(n_in, n_out))
    net = load_graph(path, discrete_time_semantics(time_unit, INPUT_STEPS * dt))
    bundle = compile_network(net, description.load("loihi2"), dt=dt)
    assert bundle.timing.num_steps - bundle.timing.latency_steps == INPUT_STEPS
    return path, bundle


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """6 inputs, 3 classes, dt 1e-4 s (snnTorch's), and a raster of 5 samples x 50 steps: 10 past the run."""
    tmp_path = tmp_path_factory.mktemp("small")
    path, bundle = compiled(tmp_path, 6, 3, "s", 1e-4)
    raster = np.random.default_rng(1).random((5, INPUT_STEPS + 10, 6)) < 0.3
    return tmp_path, path, bundle, raster


def test_npz_rasters_npz_events_and_nir_data_give_identical_input_spikes(small):
    tmp_path, _, bundle, raster = small
    labels = np.arange(5) % 3
    sample, step, channel = np.nonzero(raster)
    files = {"raster.npz": dict(spikes=raster, labels=labels),
             "counts.npz": dict(spikes=raster.astype(np.int16), labels=labels),
             "steps.npz": dict(sample=sample, step=step, channel=channel, labels=labels),
             # time stamps in µs, mid-step (a step is 100 µs)
             "times.npz": dict(sample=sample, time=(step + 0.5) * 100.0, time_unit="us", channel=channel,
                               labels=labels)}
    for name, arrays in files.items():
        np.savez(tmp_path / name, **arrays)
    width = 1 + max(int((sample == s).sum()) for s in range(5))
    idx, time = np.full((5, width), -1), np.full((5, width), np.inf)
    for s in range(5):
        mine = sample == s
        idx[s, :mine.sum()], time[s, :mine.sum()] = channel[mine], (step[mine] + 0.5) * 1e-4  # seconds, the graph's
    events_data = nir.EventData(idx, time, n_neurons=6, t_max=raster.shape[1] * 1e-4)
    nir.write_data(tmp_path / "events.h5", nir.NIRGraphData({"input": nir.NIRNodeData({"spikes": events_data})}))
    nir.write_data(tmp_path / "grid.h5", nir.NIRGraphData(
        {"input": nir.NIRNodeData({"spikes": nir.TimeGriddedData(raster, dt=1e-4)})}))
    for name in ("events.h5", "grid.h5"):
        with h5py.File(tmp_path / name, "a") as f:
            f["labels"] = labels

    expected = raster[:, :INPUT_STEPS]
    stimuli = {name: load_stimulus(str(tmp_path / name), None, bundle) for name in [*files, "events.h5", "grid.h5"]}
    stimuli["array"] = load_stimulus(raster, None, bundle, options=DataOptions(labels=labels))
    stimuli["NIR EventData"] = load_stimulus(events_data, None, bundle, options=DataOptions(labels=labels))
    for name, stimulus in stimuli.items():
        assert np.array_equal(stimulus.inputs.raster()[:, :INPUT_STEPS], expected), name
        assert not stimulus.inputs.raster()[:, INPUT_STEPS:].any(), name  # the pipeline latency's steps
        np.testing.assert_array_equal(stimulus.labels, labels, err_msg=name)
        report = stimulus.report
        assert (report.events, report.cropped_events) == (raster.sum(), raster[:, INPUT_STEPS:].sum()), name
        assert (report.merged_events, report.empty_samples) == (0, 0), name
    digests = {stimulus.selection.split("(")[1] for stimulus in stimuli.values()}
    assert len(digests) == 1  # the selection names the input spikes by their hash
    assert "--time-scale 1, the default for a graph in seconds" in stimuli["times.npz"].report.time_mapping


def test_events_after_the_run_merged_events_and_empty_samples_are_counted(small):
    tmp_path, _, bundle, _ = small
    # sample 0: steps 0 and 39 (the last), and 40 (past the run); sample 1: nothing; sample 2: twice channel 4
    # in step 7; sample 3: one event.
    np.savez(tmp_path / "few.npz", sample=[0, 0, 0, 2, 2, 3], step=[0, 39, 40, 7, 7, 12], channel=[1, 2, 3, 4, 4, 5],
             num_samples=4)
    stimulus = load_stimulus(str(tmp_path / "few.npz"), None, bundle)
    assert stimulus.inputs.events.tolist() == [[0, 0, 2, 3], [1, 40, 8, 13], [1, 2, 4, 5]]
    report = stimulus.report
    assert (report.events, report.cropped_events, report.merged_events, report.empty_samples) == (6, 1, 1, 1)
    assert stimulus.labels is None and stimulus.selection.endswith("samples 0-3")


def test_data_without_samples_are_refused_from_every_source(small):
    """A run over no samples would judge nothing (verify divided by zero): refused where the samples are counted."""
    tmp_path, path, bundle, _ = small
    np.savez(tmp_path / "no_events.npz", sample=np.zeros(0, np.int64), step=np.zeros(0, np.int64),
             channel=np.zeros(0, np.int64), num_samples=0)
    nothing = np.zeros((0, INPUT_STEPS, 6), bool)
    for data, name in ((str(tmp_path / "no_events.npz"), "no_events.npz"), (nothing, "numpy raster"),
                       (nir.TimeGriddedData(nothing, dt=1e-4), "NIR data"), (np.zeros((0, 6)), "the features array")):
        with pytest.raises(DeployError, match=f"^{re.escape(name)} holds no samples$"):
            load_stimulus(data, None, bundle)
    with pytest.raises(DeployError, match="^numpy raster holds no samples$"):
        verify(str(path), bundle, data=nothing, labels=np.zeros(0, np.int64))


def test_labels_come_from_an_npz_of_one_array_or_with_labels_and_from_python_sequences(small):
    tmp_path, path, bundle, raster = small
    labels = np.arange(5) % 3
    np.savez(tmp_path / "with_labels.npz", spikes=raster, labels=labels)  # another data file's own labels
    np.savez(tmp_path / "only.npz", y=labels)
    for given in (str(tmp_path / "with_labels.npz"), str(tmp_path / "only.npz"), labels.tolist(), tuple(labels)):
        stimulus = load_stimulus(raster, None, bundle, options=DataOptions(labels=given))
        np.testing.assert_array_equal(stimulus.labels, labels, err_msg=str(given))
    np.savez(tmp_path / "unlabelled.npz", spikes=raster)
    assert data_spec(str(tmp_path / "unlabelled.npz"), None, bundle, DataOptions(labels=labels.tolist())).labelled
    assert verify(str(path), bundle, data=raster, labels=labels.tolist()).metrics.accuracy is not None
    with pytest.raises(DeployError, match=r"^labels must be a 1-D array of integers, one per sample$"):
        load_stimulus(raster, None, bundle, options=DataOptions(labels=[[0, 1], [2]]))


def test_downsample_and_time_scale_are_refused_where_they_do_not_apply(small):
    tmp_path, _, bundle, raster = small
    events = nir.EventData(np.array([[0, 1]]), np.array([[1e-4, 2e-4]]), n_neurons=6, t_max=1e-3)
    refusals = {"--downsample": (DataOptions(downsample=(2, 2)), "has no sensor: its channels are the network's 6 "
                                 "inputs"),
                "--time-scale": (DataOptions(time_scale=1.0), "needs no time scale: ")}
    for data, name in ((raster, "numpy raster"), (events, "NIR data"), (SpikeEvents.from_raster(raster), "spike events")):
        for option, (options, reason) in refusals.items():
            with pytest.raises(DeployError, match=f"^{option} .*; {name} {reason}"):
                load_stimulus(data, None, bundle, options=options)


def test_rasters_of_counts_are_refused_not_merged(small):
    """A raster's entries are the chip's input spikes, one or none: counts (here tonic ToFrame's, as NIR gridded
    data) would run the network on other inputs than the model saw. Events on one channel and step still merge."""
    tmp_path, _, bundle, raster = small
    frames = raster.astype(np.int64) * 3
    message = (f"^NIR data: {np.count_nonzero(frames)} raster entries of samples 0-4 are not 0 or 1 \\(the largest "
               f"3\\); the chip's input spikes are binary")
    with pytest.raises(DeployError, match=message):
        load_stimulus(nir.TimeGriddedData(frames, dt=1e-4), None, bundle)
    stimulus = load_stimulus(raster.astype(np.float32), None, bundle)  # 0.0 and 1.0 are spikes
    assert stimulus.report.events == raster.sum() and stimulus.report.merged_events == 0


def test_data_of_other_steps_than_the_run_are_said_padded_or_cropped(small, tmp_path, capsys):
    _, path, bundle, raster = small  # 50 steps; the run has 40 input steps
    bundle_io.save(bundle, tmp_path / "g.bundle")
    said = {"long.npz": (raster, "the data have 50, the run 40 input steps (the data's last 10 cropped)"),
            "short.npz": (raster[:, :10], "the data have 10, the run 40 input steps (the rest silent)"),
            "exact.npz": (raster[:, :INPUT_STEPS], None)}
    for name, (spikes, line) in said.items():
        np.savez(tmp_path / name, spikes=spikes)
        data = ["--data", str(tmp_path / name)]
        assert main(["verify", str(path), str(tmp_path / "g.bundle"), *data, "--json", str(tmp_path / "v.json")]) in (0, 1)
        assert main(["run", str(tmp_path / "g.bundle"), *data, "-o", str(tmp_path / f"{name}.h5")]) == 0
        lines = [text for text in capsys.readouterr().out.splitlines() if text.startswith("  steps: ")]
        assert lines == ([f"  steps: {line}"] * 2 if line else []), name  # verify's, then run's
        assert json.loads((tmp_path / "v.json").read_text())["data"]["data_steps"] == spikes.shape[1]


# --- tonic's data sets, in folders as tonic downloads them (archives present) and as unpacked by hand -------

def _npz_like(tmp_path, name: str, samples, channel_of, time_unit: str, times_of=lambda e: e["t"]):
    """The same events as a plain .npz of time-stamped events."""
    sample = np.concatenate([np.full(len(e), i) for i, (_, e) in enumerate(samples)])
    channel = np.concatenate([channel_of(e) for _, e in samples])
    time = np.concatenate([times_of(e) for _, e in samples])
    path = tmp_path / name
    np.savez(path, sample=sample, channel=channel, time=time, time_unit=time_unit,
             labels=np.array([label for label, _ in samples]), num_samples=len(samples))
    return str(path)


@pytest.mark.parametrize("archive", [True, False], ids=["downloaded", "unpacked"])
def test_nmnist_folder_loads_through_tonic_as_its_npz(tmp_path, archive):
    """34x34x2 sensor, µs time stamps, a graph stepped in 1 ms bins (time unit step, dt 1): --time-scale 1e-3.
    Many events sit exactly on a bin edge (whole ms): both routes put them in the later bin."""
    rng = np.random.default_rng(3)
    samples = [(label, random_events(rng, 300, 34, 34, 2, 60_000)) for label in (3, 0, 7, 3)]
    samples[1][1]["t"][:50] = np.arange(50) * 1000  # on the edges
    write_nmnist(tmp_path / "data", samples, archive=archive)
    _, bundle = compiled(tmp_path, 34 * 34 * 2, 10, "step", 1.0)
    options = DataOptions(data_root=tmp_path / "data", time_scale=1e-3)
    stimulus = load_stimulus("nmnist:test", None, bundle, options=options)
    # tonic lists the files by digit folder, then by name.
    order = sorted(range(4), key=lambda i: (samples[i][0], i))
    ordered = [samples[i] for i in order]
    npz = _npz_like(tmp_path, "nmnist.npz", ordered, lambda e: (e["p"] * 34 + e["y"]) * 34 + e["x"], "us")
    same = load_stimulus(npz, None, bundle, options=DataOptions(time_scale=1e-3))
    np.testing.assert_array_equal(stimulus.inputs.events, same.inputs.events)
    assert stimulus.inputs.events.shape[1] > 500
    np.testing.assert_array_equal(stimulus.labels, [0, 3, 3, 7])
    report = stimulus.report
    assert report.cropped_events == sum(int((e["t"] >= 40_000).sum()) for _, e in samples) > 0
    assert report.cropped_events == same.report.cropped_events and report.merged_events == same.report.merged_events
    assert "floor(t / 0.001 s)" in report.time_mapping and report.time_scale == 1e-3 and report.time_scale_given
    # The class folder itself works as the root too.
    direct = load_stimulus("nmnist:test", None, bundle, options=DataOptions(data_root=tmp_path / "data" / "NMNIST",
                                                                          time_scale=1e-3))
    np.testing.assert_array_equal(direct.inputs.events, stimulus.inputs.events)


def test_compile_calibrates_on_a_tonic_folder_as_on_its_spikes(tmp_path, capsys):
    """compile --calibrate nmnist:test reads the folder as verify would (--data-root, --time-scale, --downsample):
    the same integers as calibrating on the spikes read, and the record names the split and how it was read."""
    rng = np.random.default_rng(3)
    write_nmnist(tmp_path / "data", [(label, random_events(rng, 300, 34, 34, 2, 60_000)) for label in (3, 0, 7, 3)])
    path, bundle = compiled(tmp_path, 8 * 8 * 2, 10, "step", 1.0)
    options = DataOptions(data_root=tmp_path / "data", time_scale=1e-3, downsample=(8, 8))
    out = tmp_path / "g.bundle"
    assert main(["compile", str(path), "--dt", "1", "--time-unit", "step", "--multi-spike", "--reset", "zero",
                 "--decoding", "spike_count", "--duration", str(INPUT_STEPS), "--spike", "pulse", "--integration",
                 "euler", "--calibrate", "nmnist:test", "--data-root", str(tmp_path / "data"), "--time-scale", "1e-3",
                 "--downsample", "8x8", "--calibrate-samples", "4", "-o", str(out), "-q"]) == 0
    from_cli = bundle_io.load(out)
    record = from_cli.report.calibration
    assert record.samples == 4 and record.layers
    assert record.data.startswith("nmnist:test (sha256 ") and record.data.endswith(
        f" samples 0-3 --data-root {tmp_path / 'data'} --time-scale 0.001 --downsample 8x8")
    spikes = load_stimulus("nmnist:test", 4, bundle, options=options).inputs
    net = load_graph(path, discrete_time_semantics("step", INPUT_STEPS))
    same = compile_network(net, description.load("loihi2"), dt=1.0, calibrate=spikes, calibrate_samples=4)
    assert same.report.calibration.inputs_sha256 == record.inputs_sha256
    parts = [(*bundle.network.populations, *bundle.network.connections) for bundle in (from_cli, same)]
    for ours, theirs in zip(*parts, strict=True):
        for field in dataclasses.fields(ours):
            np.testing.assert_array_equal(getattr(ours, field.name), getattr(theirs, field.name), err_msg=field.name)


@pytest.mark.parametrize("archive", [True, False], ids=["downloaded", "unpacked"])
def test_shd_file_loads_through_tonic_as_its_npz(tmp_path, archive):
    """700 channels, float seconds; a graph in seconds with dt 1 ms (the default time scale, 1)."""
    rng = np.random.default_rng(4)
    samples = []
    for label in (5, 19, 0):
        samples.append((label, random_events(rng, 400, 700, 1, 1, 60_000)))  # µs
    seconds = [(label, np.rec.fromarrays([e["x"], (e["t"] + 0.5) * 1e-6], names="x,t")) for label, e in samples]
    write_shd(tmp_path / "data" / "SHD" / "shd_test.h5", seconds)
    if archive:
        (tmp_path / "data" / "SHD" / "shd_test.h5.zip").write_bytes(b"")
    _, bundle = compiled(tmp_path, 700, 20, "s", 1e-3)
    stimulus = load_stimulus("shd:test", None, bundle, options=DataOptions(data_root=tmp_path / "data"))
    npz = _npz_like(tmp_path, "shd.npz", seconds, lambda e: e["x"], "s",
                    times_of=lambda e: e["t"].astype(np.float32).astype(np.float64))
    same = load_stimulus(npz, None, bundle)
    np.testing.assert_array_equal(stimulus.inputs.events, same.inputs.events)
    assert stimulus.inputs.events.shape[1] > 500
    np.testing.assert_array_equal(stimulus.labels, [5, 19, 0])
    assert stimulus.report.cropped_events == same.report.cropped_events > 0
    assert not stimulus.report.time_scale_given and stimulus.report.time_scale == 1.0


@pytest.mark.parametrize("archive", [True, False], ids=["downloaded", "unpacked"])
def test_dvsgesture_folder_loads_through_tonic_downsampled_as_its_npz(tmp_path, archive):
    """128x128x2 sensor, t in ms, reduced to 32x32 by tonic's Downsample (x // 4, y // 4); a graph in seconds,
    dt 1 ms: every event sits on a bin edge."""
    rng = np.random.default_rng(5)
    recordings = [(2, "led", 4, random_events(rng, 500, 128, 128, 2, 60)),
                  (1, "fluorescent", 9, random_events(rng, 500, 128, 128, 2, 60)),
                  (1, "fluorescent", 0, random_events(rng, 500, 128, 128, 2, 60))]
    write_dvsgesture(tmp_path / "data", recordings, archive=archive)
    _, bundle = compiled(tmp_path, 32 * 32 * 2, 11, "s", 1e-3)
    with pytest.raises(DeployError, match="sensor 128x128x2 gives 32768 channels, more than the network's 2048 "
                                          "inputs: reduce it with --downsample"):
        load_stimulus("dvsgesture:test", None, bundle, options=DataOptions(data_root=tmp_path / "data"))
    options = DataOptions(data_root=tmp_path / "data", downsample=(32, 32))
    stimulus = load_stimulus("dvsgesture:test", None, bundle, options=options)
    # In the order of the files: user01_fluorescent/0.npy, user01_fluorescent/9.npy, user02_led/4.npy.
    ordered = [(label, events) for _, _, label, events in (recordings[2], recordings[1], recordings[0])]
    npz = _npz_like(tmp_path, "dvs.npz", ordered, lambda e: (e["p"] * 32 + e["y"] // 4) * 32 + e["x"] // 4, "ms")
    same = load_stimulus(npz, None, bundle)
    np.testing.assert_array_equal(stimulus.inputs.events, same.inputs.events)
    assert stimulus.inputs.events.shape[1] > 500
    np.testing.assert_array_equal(stimulus.labels, [0, 9, 4])
    assert stimulus.report.merged_events == same.report.merged_events > 0  # 4 x 4 pixels share a channel
    assert stimulus.report.downsample == (32, 32)


def _small_nmnist(tmp_path):
    """Two N-MNIST samples of 40 ms, and a graph of the sensor downsampled to 8x8x2, stepped in 1 ms bins."""
    rng = np.random.default_rng(9)
    write_nmnist(tmp_path / "data", [(label, random_events(rng, 400, 34, 34, 2, 40_000)) for label in (1, 2)])
    return compiled(tmp_path, 8 * 8 * 2, 3, "step", 1.0)


def test_a_time_scale_that_loses_most_events_is_noted(tmp_path, capsys):
    """At 1 ms per step the 40 ms recording fills the 40 steps; at 1 us per step 99% of it falls after the run; at
    1 s per step it piles into the first step. verify still judges, and says so on stderr even under --quiet."""
    path, bundle = _small_nmnist(tmp_path)
    bundle_io.save(bundle, tmp_path / "g.bundle")
    argv = ["verify", str(path), str(tmp_path / "g.bundle"), "--data", "nmnist:test", "--data-root",
            str(tmp_path / "data"), "--downsample", "8x8", "--min-agreement", "0", "--max-accuracy-drop", "1", "-q"]
    notes = {}
    for scale in ("1e-3", "1e-6", "1"):
        assert main([*argv, "--time-scale", scale]) == 0
        notes[scale] = capsys.readouterr().err.strip()
    assert notes["1e-3"] == ""
    assert re.fullmatch(r"snn-deploy verify: note: (9\d|100)% of the data's 800 events fall after the run's last input "
                        r"step: check --time-scale \(1e-06\)", notes["1e-6"]), notes["1e-6"]
    assert re.fullmatch(r"snn-deploy verify: note: 70% of the data's 800 events merge into a spike already on "
                        r"their channel and step: check --time-scale \(1\)", notes["1"]), notes["1"]


def test_a_tonic_sample_it_cannot_read_is_bad_input_naming_its_file(tmp_path):
    path, bundle = _small_nmnist(tmp_path)
    cut = sorted((tmp_path / "data").rglob("*.bin"))[0]
    cut.write_bytes(cut.read_bytes()[:-2])  # a truncated copy: not a whole number of 5-byte events
    options = DataOptions(data_root=tmp_path / "data", time_scale=1e-3, downsample=(8, 8))
    with pytest.raises(DeployError, match=rf"^nmnist:test: sample 0 \({re.escape(str(cut))}\) is not readable "
                                          r"\(ValueError: "):
        load_stimulus("nmnist:test", None, bundle, options=options)


def test_a_tonic_object_with_a_transform_is_not_downsampled_again(tmp_path):
    path, bundle = _small_nmnist(tmp_path)
    offline = type("NMNIST", (tonic.datasets.NMNIST,), {"_check_exists": lambda self: True})  # tonic would download
    transformed = offline(str(tmp_path / "data"), train=False, transform=tonic.transforms.Downsample(spatial_factor=0.5))
    with pytest.raises(DeployError, match=r"^--downsample reduces NMNIST's sensor, and the data set has a transform "
                                          r"of its own \(Downsample\): reduce it in one place$"):
        load_stimulus(transformed, None, bundle, options=DataOptions(time_scale=1e-3, downsample=(8, 8)))


def test_a_tonic_data_set_object_is_data_too(tmp_path):
    """tonic's own SHD object (its check passes: the archive name and the file are there) through verify."""
    rng = np.random.default_rng(6)
    samples = [(label, np.rec.fromarrays([e["x"], (e["t"] + 0.5) * 1e-6], names="x,t"))
               for label, e in ((1, random_events(rng, 300, 700, 1, 1, 40_000)),
                                (2, random_events(rng, 300, 700, 1, 1, 40_000)))]
    write_shd(tmp_path / "SHD" / "shd_test.h5", samples)
    (tmp_path / "SHD" / "shd_test.h5.zip").write_bytes(b"")
    dataset = tonic.datasets.SHD(str(tmp_path), train=False)
    path, bundle = compiled(tmp_path, 700, 20, "s", 1e-3)
    verdict = verify(path, bundle, data=dataset, tolerances={"min_agreement": 0.0, "max_accuracy_drop": 1.0})
    folder = verify(path, bundle, data="shd:test", data_root=tmp_path,
                    tolerances={"min_agreement": 0.0, "max_accuracy_drop": 1.0})
    assert verdict.to_dict()["samples"] == 2 and verdict.to_dict()["accuracy"] == folder.to_dict()["accuracy"]
    assert verdict.to_dict()["data"]["events"] == folder.to_dict()["data"]["events"] == 600
    assert verdict.to_dict()["dataset"] == "SHD" and folder.to_dict()["dataset"] == "shd:test"


# --- spike records as NIR data -------------------------------------------------------------------------------

def test_run_writes_nir_data_that_nir_reads_and_replay_accepts(small, tmp_path, capsys):
    folder, path, _, raster = small
    bundle_path = tmp_path / "g.bundle"
    np.savez(tmp_path / "r.npz", spikes=raster, labels=np.arange(5) % 3)
    assert main(["compile", str(path), "--dt", "1e-4", "--time-unit", "s", "--multi-spike", "--reset", "zero",
                 "--decoding", "spike_count", "--duration", str(INPUT_STEPS * 1e-4), "--spike", "pulse",
                 "--integration", "euler", "-o", str(bundle_path), "-q"]) == 0
    data = ["--data", str(tmp_path / "r.npz")]
    assert main(["run", str(bundle_path), *data, "-o", str(tmp_path / "run.h5"), "--format", "nir-data", "-q"]) == 0
    assert main(["run", str(bundle_path), *data, "-o", str(tmp_path / "run-hdf5.h5"), "-q"]) == 0
    graph_data = nir.read_data(tmp_path / "run.h5")
    assert set(graph_data.nodes) == {"input", "lif"}
    gridded = graph_data.nodes["input"].observables["spikes"].to_time_gridded(1e-4)
    expected = record_io.load(tmp_path / "run-hdf5.h5")
    stimulus = load_stimulus(str(tmp_path / "r.npz"), None, record_io_bundle(bundle_path))
    assert np.array_equal(gridded.data[:, :stimulus.inputs.num_steps], stimulus.inputs.raster())
    stored = record_io.load(tmp_path / "run.h5")
    for name, events in expected.spikes.items():
        np.testing.assert_array_equal(stored.spikes[name].events, events.events)
    assert stored.selection == expected.selection == stimulus.selection
    assert stored.bundle_checksum == expected.bundle_checksum
    verdicts = []
    for replay in ("run.h5", "run-hdf5.h5"):
        out = tmp_path / f"{replay}.json"
        code = main(["verify", str(path), str(bundle_path), *data, "--replay", str(tmp_path / replay),
                     "--min-agreement", "0", "--max-accuracy-drop", "1", "--json", str(out), "-q"])
        assert code == 0, capsys.readouterr().err
        verdicts.append(json.loads(out.read_text()))
    assert verdicts[0] == verdicts[1]
    # The record's input node is input data too: the same spikes.
    again = load_stimulus(str(tmp_path / "run.h5"), None, record_io_bundle(bundle_path),
                          options=DataOptions(labels=np.arange(5) % 3))
    np.testing.assert_array_equal(again.inputs.events, stimulus.inputs.events)


def record_io_bundle(path):
    from snn_deploy.targets import bundle as bundle_io

    return bundle_io.load(path)


def test_verify_takes_spike_events_and_nir_data_from_python(small):
    _, path, bundle, raster = small
    labels = np.arange(5) % 3
    loose = {"min_agreement": 0.0, "max_accuracy_drop": 1.0}
    from_raster = verify(path, bundle, data=raster, labels=labels, tolerances=loose)
    from_events = verify(path, bundle, data=SpikeEvents.from_raster(raster), labels=labels, tolerances=loose)
    grid = nir.NIRGraphData({"input": nir.NIRNodeData({"spikes": nir.TimeGriddedData(raster, dt=1e-4)})})
    from_nir = verify(path, bundle, data=grid, labels=labels, tolerances=loose)
    from_graph = verify(nir.read(path), bundle, data=raster, labels=labels, tolerances=loose)  # a loaded graph
    for verdict in (from_events, from_nir, from_graph):
        for key in ("accuracy", "agreement", "spike_time_error_steps", "divergence"):
            assert verdict.to_dict()[key] == from_raster.to_dict()[key], key
        assert verdict.to_dict()["data"]["cropped_events"] == raster[:, INPUT_STEPS:].sum()


def test_first_spike_steps_are_the_earliest_among_many_repeated_spikes():
    """Regression: assigning every spike in reverse order kept a later one for large multi-spike rasters (numpy
    does not specify which of repeated indices an assignment keeps), so the decisions' tie-break by first spike
    and the spike-time errors of multi-spike networks were off (this raster: the old code was wrong)."""
    raster = np.random.default_rng(0).random((360, 22, 10)) < 0.4
    expected = np.where(raster.any(axis=1), raster.argmax(axis=1) + 1, -1)
    np.testing.assert_array_equal(SpikeEvents.from_raster(raster).first_spike_steps(), expected)
