"""Bad input, case by case: exit 2, one line on stderr naming the problem, no output, inputs untouched.

Every case runs ``main(argv)`` in-process with the simulators patched to fail: bad input must be
refused before anything runs (so a refused memory estimate provably allocated nothing), and a case
that reached a simulator would exit 4 (an internal error) instead of 2. A few cases also run the
console entry point as a subprocess, for the real exit status.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import h5py
import nir
import numpy as np
import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.export import export, to_nir
from snn_deploy.models.zoo import save
from snn_deploy.targets import bundle as bundle_io

from helpers import (discrete_time_semantics, lif_graph, random_events, random_ttfs_model, snapshot, write_nmnist,
                     write_shd)

CLI = [sys.executable, "-m", "snn_deploy.deploy.interfaces.cli"]


def _graph(root: Path, name: str, semantics=None, edit=None, metadata=None) -> None:
    """The random model's NIR graph with its semantics changed (``semantics``: fields to set, None
    to delete; "encoding": fields of the encoding), its nodes edited, or its metadata replaced."""
    graph = to_nir(random_ttfs_model())
    stated = json.loads(graph.metadata["snn_deploy"])
    for key, value in (semantics or {}).items():
        target = stated["encoding"] if key.startswith("encoding.") else stated
        key = key.removeprefix("encoding.")
        if value is None:
            del target[key]
        else:
            target[key] = value
    graph.metadata["snn_deploy"] = json.dumps(stated)
    if metadata is not None:
        graph.metadata = metadata
    if edit is not None:
        edit(graph)
    nir.write(root / name, graph)


def _replace_spikes(path: Path, population: str, row: int, value: int) -> None:
    with h5py.File(path, "r+") as f:
        events = np.array(f[f"spikes/{population}"])
        events[row, 0] = value
        del f[f"spikes/{population}"]
        f[f"spikes/{population}"] = events


def _synapse_loop(graph) -> None:
    graph.nodes["loop_a"] = nir.Affine(weight=np.eye(20), bias=np.zeros(20))
    graph.nodes["loop_b"] = nir.Affine(weight=np.eye(20), bias=np.zeros(20))
    graph.edges += [("lif1", "loop_a"), ("loop_a", "loop_b"), ("loop_b", "loop_a")]


def _silent_layer(graph) -> None:
    graph.nodes["fc2"].weight[:] = 0


def _time_in_input_shape(graph) -> None:
    """What sinabs.to_nir writes for layers fed (batch, time, channels): the sample's 30 steps in the Input."""
    channels = int(np.prod(graph.nodes["input"].output_type["output"]))
    graph.nodes["input"] = nir.Input(input_type=np.array([30, channels]))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The inputs, built once: a small random TTFS model, its NIR, its bundle, a run record, and bad variants."""
    root = tmp_path_factory.mktemp("inputs")
    save(random_ttfs_model(), root / "model.npz")
    assert main(["export", str(root / "model.npz"), "-o", str(root / "m.nir"), "-q"]) == 0
    assert main(["compile", str(root / "m.nir"), "-o", str(root / "m.bundle"), "-q"]) == 0
    assert main(["compile", str(root / "m.nir"), "--steps-per-tau", "50", "-o", str(root / "other.bundle"),
                 "-q"]) == 0
    assert main(["run", str(root / "m.bundle"), "--data", "yinyang:test", "--samples", "5", "-o",
                 str(root / "run.h5"), "-q"]) == 0
    export(random_ttfs_model(seed=1), root / "other.nir")

    good = (root / "m.nir").read_bytes()
    (root / "corrupt.nir").write_bytes(b"\x89HDF garbage" * 50)
    (root / "truncated.nir").write_bytes(good[: len(good) // 2])
    (root / "empty.bundle").write_bytes(b"")
    (root / "corrupt.bundle").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "corrupt.h5").write_bytes(b"not HDF5 at all")
    (root / "link.nir").symlink_to(root / "m.nir")
    os.link(root / "m.nir", root / "hard.nir")
    (root / "a-file").write_text("not a folder")
    (root / "folder").mkdir()

    def nan_weight(graph):
        graph.nodes["fc1"].weight[1, 1] = np.nan

    def negative_tau(graph):
        graph.nodes["lif2"].tau_syn[0] = -1.0

    def tiny_threshold(graph):
        graph.nodes["lif1"].v_threshold[4] = 1e-9

    _graph(root, "nan.nir", edit=nan_weight)
    _graph(root, "tau.nir", edit=negative_tau)
    _graph(root, "threshold.nir", edit=tiny_threshold)
    _graph(root, "silent.nir", edit=_silent_layer)
    _graph(root, "time_input.nir", edit=_time_in_input_shape)
    _graph(root, "loop.nir", edit=_synapse_loop)
    _graph(root, "fire_once.nir", {"fire_once": "no"})
    _graph(root, "time_unit.nir", {"time_unit": "ms"})
    _graph(root, "horizon.nir", {"horizon": "3"})
    _graph(root, "reset.nir", {"reset": "hard"})
    _graph(root, "decoding.nir", {"decoding": "max"})
    _graph(root, "spike.nir", {"spike": "delta"})
    _graph(root, "integration.nir", {"integration": "rk4"})
    _graph(root, "version.nir", {"semantics_version": 99})
    _graph(root, "subtract.nir", {"reset": "subtract", "fire_once": False})
    _graph(root, "t_late.nir", {"encoding.t_late": -5})
    _graph(root, "bias_times.nir", {"encoding.bias_times": None})
    _graph(root, "kind.nir", {"encoding.kind": "rate"})
    _graph(root, "unstated.nir", {"reset": None, "decoding": None})
    _graph(root, "not_json.nir", metadata={"snn_deploy": "{not json"})
    _graph(root, "list.nir", metadata={"snn_deploy": "[1, 2]"})

    for name, row, value in (("neuron", 2, 99), ("step", 1, 10**6), ("sample", 0, 77)):
        shutil.copy(root / "run.h5", root / f"bad_{name}.h5")
        _replace_spikes(root / f"bad_{name}.h5", "lif2", row, value)
    other_run = root / "other_run.h5"
    assert main(["run", str(root / "other.bundle"), "--data", "yinyang:test", "--samples", "5", "-o",
                 str(other_run), "-q"]) == 0

    # Bundles whose samples run 10^10 and 10^6 steps (as an older or another compiler might have written them).
    bundle = bundle_io.load(root / "m.bundle")
    for name, steps in (("huge.bundle", 10**10), ("long.bundle", 10**6)):
        bundle_io.save(dataclasses.replace(bundle, timing=dataclasses.replace(bundle.timing, num_steps=steps)),
                       root / name)

    _user_data(root)
    for folder, text in (("unknown_key", "max_accuracy_dorp = 0.1\n"), ("bad_value", "max_accuracy_drop = 2\n"),
                         ("bad_toml", "max_accuracy_drop = \n")):
        (root / folder).mkdir()
        shutil.copy(root / "m.nir", root / folder / "m.nir")
        (root / folder / "snn-deploy.toml").write_text(text)
    return root


def _user_data(root: Path) -> None:
    """The user's data, good and bad, for the random model (5 inputs, 3 classes, time unit tau), and an
    SHD-sized graph (700 inputs, 20 classes, in seconds) with an SHD file holding a NaN time."""
    raster = np.random.default_rng(0).random((3, 10, 5)) < 0.3
    counts = raster.astype(np.int64)
    counts[0, 0, 0], counts[2, 5, 1] = 16, 2  # pixel values, not spikes
    for name, arrays in {"spikes.npz": dict(spikes=raster, labels=[0, 1, 2]), "unlabelled.npz": dict(spikes=raster),
                         "seven.npz": dict(spikes=np.zeros((3, 10, 7), bool)),
                         "short_labels.npz": dict(spikes=raster, labels=[0, 1]),
                         "label_3.npz": dict(spikes=raster, labels=[0, 3, 1]),
                         "float_labels.npz": dict(spikes=raster, labels=[0.0, 1.0, 2.0]),
                         "half.npz": dict(spikes=raster * 0.5),
                         "counts.npz": dict(spikes=counts),
                         "empty.npz": dict(spikes=np.zeros((0, 10, 5), bool), labels=np.zeros(0, np.int64)),
                         "channel_9.npz": dict(sample=[0, 1], step=[2, 3], channel=[1, 9]),
                         "no_layout.npz": dict(images=raster),
                         **{f"{what}_time.npz": dict(sample=[0, 0], time=[0.5, value], time_unit="ms", channel=[0, 1])
                            for what, value in (("good", 1.0), ("negative", -1.0), ("nan", np.nan), ("inf", np.inf))}}.items():
        np.savez(root / name, **arrays)
    np.save(root / "two_labels.npy", np.array([0, 1]))
    (root / "corrupt.npz").write_bytes(b"PK not a zip at all")
    write_nmnist(root / "nmnist", [(1, random_events(np.random.default_rng(0), 20, 34, 34, 2, 1000))])
    (root / "no_nmnist").mkdir()
    nir.write(root / "shd.nir", lif_graph(700, 20))
    semantics = discrete_time_semantics("s", 0.05)
    options = [f"--{key.replace('_', '-')}" if key != "horizon" else "--duration" for key in semantics]
    argv = [item for option, value in zip(options, semantics.values())
            for item in ((option if value else "--multi-spike",) if isinstance(value, bool) else (option, str(value)))]
    assert main(["compile", str(root / "shd.nir"), "--dt", "1e-3", *argv, "-o", str(root / "shd.bundle"), "-q"]) == 0
    shd = np.rec.fromarrays([np.arange(3), np.array([0.001, np.nan, 0.002])], names="x,t")
    write_shd(root / "shd_nan" / "SHD" / "shd_test.h5", [(0, shd)])


@pytest.fixture(scope="module")
def readonly(tmp_path_factory) -> Path:
    """A folder this user cannot write to. Root writes anywhere a mode allows, so for root it is a
    sysfs folder (read-only to everyone)."""
    folder = tmp_path_factory.mktemp("readonly")
    folder.chmod(0o555)
    return Path("/sys/kernel") if os.access(folder, os.W_OK) else folder


class Case(NamedTuple):
    name: str
    argv: str  # {root}: the inputs, {out}: an empty folder for outputs, {readonly}: an unwritable folder
    message: str  # in the error line
    extra_forbidden: tuple[str, ...] = ()  # more functions the refusal must come before
    exact: bool = False  # the message is the whole error, after "snn-deploy COMMAND: error: "


def case(name, argv, message, *extra_forbidden):
    return Case(name, argv, message, extra_forbidden)


def exact_case(name, argv, message):
    return Case(name, argv, message, exact=True)


VERIFY = "verify {root}/m.nir {root}/m.bundle --data yinyang:test --samples 5"
VERIFY_ON = "verify {root}/m.nir {root}/m.bundle --json {out}/v.json --data "
RUN = "run {root}/m.bundle --data yinyang:test --samples 5"
COMPILE = "compile {root}/m.nir"

CASES = [
    # NIR files
    case("missing NIR", "compile {root}/nope.nir -o {out}/x.bundle", "NIR file not found"),
    case("corrupt NIR", "compile {root}/corrupt.nir -o {out}/x.bundle", "is not a NIR file"),
    case("truncated NIR", "compile {root}/truncated.nir -o {out}/x.bundle", "truncated.nir"),
    case("NaN weight", "compile {root}/nan.nir -o {out}/x.bundle", "node fc1: weight contains NaN"),
    case("negative tau", "compile {root}/tau.nir -o {out}/x.bundle", "node lif2: tau_syn must be > 0, got -1"),
    case("time steps in the Input's shape", "compile {root}/time_input.nir -o {out}/x.bundle",
         "fc1.input: [[5]]; the Input's shape holds a dimension the first node does not take, e.g. the export "
         "sample's batch (snnTorch: ignore_dims=[0]) or time steps (sinabs: export through IAFSqueeze/LIFSqueeze)"),
    case("synapse loop feeding no neuron", "compile {root}/loop.nir -o {out}/x.bundle",
         "synapse nodes that feed no neuron: loop_a, loop_b"),
    case("threshold below one vth level", "compile {root}/threshold.nir -o {out}/x.bundle",
         "node lif1: neuron 4: threshold 1e-09 maps to vth 0, outside [1, 131071]"),
    case("layer of zero weights without bias", "compile {root}/silent.nir -o {out}/x.bundle",
         "node lif2: all weights are zero and it has no bias or v_leak"),
    # graph metadata: every semantic field checked
    case("fire_once 'no'", "compile {root}/fire_once.nir -o {out}/x.bundle",
         "graph metadata fire_once must be true or false, got 'no'"),
    case("time unit ms", "compile {root}/time_unit.nir -o {out}/x.bundle",
         "graph metadata time_unit must be one of tau, s, step, got 'ms'"),
    case("horizon a string", "compile {root}/horizon.nir -o {out}/x.bundle",
         "graph metadata horizon must be a positive time, got '3'"),
    case("reset hard", "compile {root}/reset.nir -o {out}/x.bundle", "graph metadata reset must be one of zero"),
    case("decoding max", "compile {root}/decoding.nir -o {out}/x.bundle", "graph metadata decoding must be one of"),
    case("spike delta", "compile {root}/spike.nir -o {out}/x.bundle", "graph metadata spike must be one of dirac"),
    case("integration rk4", "compile {root}/integration.nir -o {out}/x.bundle",
         "graph metadata integration must be one of exact"),
    case("semantics version 99", "compile {root}/version.nir -o {out}/x.bundle", "has semantics_version 99"),
    case("t_late -5", "compile {root}/t_late.nir -o {out}/x.bundle", "t_late must be a finite time >= 0, got -5"),
    case("no bias_times", "compile {root}/bias_times.nir -o {out}/x.bundle",
         "bias_times must be a list of one time, got None"),
    case("unknown encoding", "compile {root}/kind.nir -o {out}/x.bundle", "input encoding 'rate' is not supported"),
    case("unstated semantics", "compile {root}/unstated.nir -o {out}/x.bundle",
         "the graph does not state reset (--reset zero|subtract), decoding"),
    case("metadata not JSON", "compile {root}/not_json.nir -o {out}/x.bundle", "is not valid JSON"),
    case("metadata a JSON list", "compile {root}/list.nir -o {out}/x.bundle", "must be a JSON object, got list"),
    # compile options
    case("stock mode with a subtractive reset", "compile {root}/subtract.nir --stock -o {out}/x.bundle",
         "--stock: layer lif1 resets by subtraction, which needs a custom neuron model (microcode) on Loihi 2"),
    case("duration shorter than dt", COMPILE + " --duration 0.001 -o {out}/x.bundle",
         "a sample runs 1 step (horizon 0.001 / dt 0.00784318): the output lif2 is 2 Dense stages from the input"),
    case("10^10 steps per sample", COMPILE + " --duration 1e6 --dt 1e-4 -o {out}/x.bundle",
         "a sample runs 10000000000 steps (horizon 1e+06 / dt 0.0001), more than the 10,000,000 steps",
         "snn_deploy.deploy.stages.compile.quantize"),
    case("duration NaN", COMPILE + " --duration nan -o {out}/x.bundle",
         "option --duration must be a positive time, got nan"),
    case("negative dt", COMPILE + " --dt -1 -o {out}/x.bundle", "--dt must be a positive time, got -1"),
    case("zero steps per tau", COMPILE + " --steps-per-tau 0 -o {out}/x.bundle", "--steps-per-tau must be in"),
    case("zero chips", COMPILE + " --max-chips 0 -o {out}/x.bundle", "--max-chips must be at least 1, got 0"),
    case("unknown target", COMPILE + " --target loihi9 -o {out}/x.bundle", "unknown target 'loihi9'"),
    case("missing target file", COMPILE + " --target {root}/nope.toml -o {out}/x.bundle", "target file not found"),
    case("unknown option", COMPILE + " --bogus -o {out}/x.bundle", "unrecognized arguments: --bogus"),
    case("option of the wrong type", COMPILE + " --max-chips many -o {out}/x.bundle", "invalid int value: 'many'"),
    case("option outside its choices", COMPILE + " --reset hard -o {out}/x.bundle", "invalid choice: 'hard'"),
    case("no command", "", "the following arguments are required: COMMAND"),
    # outputs
    case("compile over its input", COMPILE + " -o {root}/m.nir", "is also an input"),
    case("compile over its input via a symlink", COMPILE + " -o {root}/link.nir", "is also an input"),
    case("compile over its input via a hard link", COMPILE + " -o {root}/hard.nir", "is also an input"),
    case("missing output folder", COMPILE + " -o {out}/missing/x.bundle", "output folder does not exist"),
    case("read-only output folder", COMPILE + " -o {readonly}/x.bundle", "Permission denied"),
    case("output is a folder", COMPILE + " -o {root}/folder", "is a directory"),
    case("output under /proc", COMPILE + " -o /proc/x.bundle", "cannot write /proc/x.bundle"),
    case("verify JSON over the graph", VERIFY + " --json {root}/m.nir", "is also an input"),
    case("verify JSON over the graph via a symlink", VERIFY + " --json {root}/link.nir", "is also an input"),
    case("verify JSON and report the same file", VERIFY + " --json {out}/v.html --report {out}/v.html",
         "is given as two outputs"),
    case("verify report named other than .html", VERIFY + " --json {out}/v.json --report {out}/r.pdf",
         "--report writes an HTML page: name it .html, not r.pdf"),
    case("verify report in a read-only folder", VERIFY + " --json {out}/v.json --report {readonly}/r.html",
         "Permission denied"),
    case("verify JSON over the replayed record", VERIFY + " --replay {root}/run.h5 --json {root}/run.h5",
         "is also an input"),
    case("run record over the bundle", RUN + " -o {root}/m.bundle", "is also an input"),
    case("run record under /proc", RUN + " -o /proc/x.h5", "cannot write /proc/x.h5"),
    case("run record is a folder", RUN + " -o {root}/folder", "is a directory"),
    # export and train
    case("unknown model", "export no-such-model -o {out}/m.nir", "no-such-model"),
    case("export into a missing folder", "export {root}/model.npz -o {out}/missing/m.nir",
         "output folder does not exist"),
    case("export over the checkpoint", "export {root}/model.npz -o {root}/model.npz", "is also an input"),
    case("export over the checkpoint's sidecar", "export {root}/model.npz -o {root}/model.json", "is also an input"),
    case("ONNX of zero steps per tau", "export {root}/model.npz --format onnx --steps-per-tau 0 -o {out}/m.onnx",
         "--steps-per-tau must be in"),
    case("train zero epochs", "train digits-ttfs --epochs 0 -o {out}/m.npz", "--epochs must be at least 1"),
    case("train an untrainable model", "train no-such-model -o {out}/m.npz", "no trainer for 'no-such-model'"),
    case("demo folder is a file", "demo --out {root}/a-file", "cannot make the demo folder"),
    # bundles
    case("missing bundle", "run {root}/nope.bundle --data yinyang:test -o {out}/r.h5", "bundle file not found"),
    case("corrupt bundle", "run {root}/corrupt.bundle --data yinyang:test -o {out}/r.h5", "corrupt.bundle"),
    case("0-byte bundle", "run {root}/empty.bundle --data yinyang:test -o {out}/r.h5",
         "empty.bundle is not a readable snn-deploy bundle (EOFError)"),
    case("bundle from another graph", "verify {root}/other.nir {root}/m.bundle --data yinyang:test --json {out}/v",
         "the bundle was compiled from m.nir"),
    # data
    case("unknown data set", "run {root}/m.bundle --data mnist:test -o {out}/r.h5", "unknown data set 'mnist:test'"),
    case("verify unknown data set", "verify {root}/m.nir {root}/m.bundle --data mnist:test", "mnist"),
    case("samples zero", "run {root}/m.bundle --data yinyang:test --samples 0 -o {out}/r.h5",
         "--samples must be at least 1, got 0"),
    case("samples beyond the data set", "run {root}/m.bundle --data yinyang:test --samples 1001 -o {out}/r.h5",
         "--samples 1001 asks for more samples than yinyang:test has (1000)"),
    case("verify samples beyond the data set", "verify {root}/m.nir {root}/m.bundle --data digits:test "
         "--samples 400", "--samples 400 asks for more samples than digits:test has (360)"),
    case("random seed -1", "run {root}/m.bundle --data random:seed=-1 -o {out}/r.h5",
         "random data: seed must be a whole number >= 0, got -1"),
    case("random seed 1.5", "run {root}/m.bundle --data random:seed=1.5 -o {out}/r.h5",
         "random data: seed='1.5' is not a whole number"),
    case("random rate 2", "run {root}/m.bundle --data random:rate=2 -o {out}/r.h5", "rate must be in (0, 1]"),
    case("random rate NaN", "run {root}/m.bundle --data random:rate=nan -o {out}/r.h5", "rate must be in (0, 1]"),
    case("random unknown option", "verify {root}/m.nir {root}/m.bundle --data random:speed=1",
         "random data takes rate= and seed=, not 'speed'"),
    # the user's data
    case("data file not found", VERIFY_ON + "{root}/nope.npz", "data file not found"),
    case("not an npz", VERIFY_ON + "{root}/corrupt.npz", "corrupt.npz is not a readable .npz file"),
    case("npz of unknown layout", VERIFY_ON + "{root}/no_layout.npz", "no_layout.npz has images: a .npz of input spikes"),
    case("channel count differs", VERIFY_ON + "{root}/seven.npz", "seven.npz has 7 input channels; the network takes 5"),
    case("channel out of range", VERIFY_ON + "{root}/channel_9.npz",
         "channel_9.npz: sample 1 has a spike at channel 9, outside [0, 4] (the network's 5 inputs)"),
    case("accuracy asked of unlabelled data", VERIFY_ON + "{root}/unlabelled.npz --max-accuracy-drop 0.1",
         "--max-accuracy-drop needs labels; unlabelled.npz has none"),
    case("labels of the wrong length", VERIFY_ON + "{root}/short_labels.npz", "short_labels.npz has 3 samples but 2 labels"),
    case("a label outside the classes", VERIFY_ON + "{root}/label_3.npz",
         "sample 1 has label 3, outside the network's 3 classes [0, 2]"),
    case("labels not integers", VERIFY_ON + "{root}/float_labels.npz", "must be a 1-D array of integers"),
    exact_case("--labels of the wrong length", VERIFY_ON + "{root}/unlabelled.npz --labels {root}/two_labels.npy",
               "unlabelled.npz has 3 samples but 2 labels in two_labels.npy"),
    exact_case("--labels an .npz of one array, not labels", VERIFY_ON + "{root}/unlabelled.npz --labels {root}/seven.npz",
               "seven.npz must be a 1-D array of integers, got shape (3, 10, 7) bool"),
    exact_case("--labels an .npz of several arrays, none labels", VERIFY_ON + "{root}/unlabelled.npz --labels "
               "{root}/channel_9.npz", "channel_9.npz has arrays sample, step, channel: --labels takes a .npy, or a "
               ".npz holding one array or one named 'labels'"),
    case("--labels file missing", VERIFY_ON + "{root}/unlabelled.npz --labels {root}/nope.npy",
         "labels file not found"),
    case("--labels over the data's own", VERIFY_ON + "{root}/spikes.npz --labels {root}/two_labels.npy",
         "spikes.npz has its own labels; --labels would replace them"),
    case("--labels for a shipped data set", VERIFY + " --labels {root}/two_labels.npy",
         "--labels applies to the user's data (files, arrays, tonic data sets), not to yinyang:test"),
    exact_case("half a spike in a raster", VERIFY_ON + "{root}/half.npz",
               "half.npz: 40 raster entries of samples 0-2 are not 0 or 1 (the largest 0.5); the chip's input spikes "
               "are binary, one or none per channel and step (if these mean spikes: raster > 0)"),
    exact_case("counts in a raster", VERIFY_ON + "{root}/counts.npz",
               "counts.npz: 2 raster entries of samples 0-2 are not 0 or 1 (the largest 16); the chip's input spikes "
               "are binary, one or none per channel and step (if these mean spikes: raster > 0)"),
    case("negative time", VERIFY_ON + "{root}/negative_time.npz --time-scale 1",
         "negative_time.npz: sample 0 has a negative spike time (-1)"),
    case("NaN time", VERIFY_ON + "{root}/nan_time.npz --time-scale 1", "sample 0 has a NaN or infinite spike time (nan)"),
    case("infinite time", VERIFY_ON + "{root}/inf_time.npz --time-scale 1",
         "sample 0 has a NaN or infinite spike time (inf)"),
    case("NaN time in an SHD file", "verify {root}/shd.nir {root}/shd.bundle --data shd:test --data-root {root}/shd_nan",
         "shd:test: sample 0 has a NaN or infinite spike time"),
    case("time stamps for a graph in tau without --time-scale", VERIFY_ON + "{root}/negative_time.npz",
         "negative_time.npz has time stamps and the graph's time unit is tau: state how they map with --time-scale S"),
    exact_case("--time-scale for data in steps", VERIFY_ON + "{root}/spikes.npz --time-scale 1",
               "--time-scale maps recording time to steps; spikes.npz needs no time scale: one data step = one chip "
               "step (dt 0.00784318 tau)"),
    exact_case("--data-root for a file", VERIFY_ON + "{root}/spikes.npz --data-root {root}",
               "--data-root names the folder of a tonic data set (nmnist:test, ...); spikes.npz is read from where it "
               "is"),
    exact_case("--downsample for a raster", VERIFY_ON + "{root}/spikes.npz --downsample 4x4",
               "--downsample reduces a tonic data set's sensor; spikes.npz has no sensor: its channels are the "
               "network's 5 inputs"),
    exact_case("--downsample for time-stamped events", VERIFY_ON + "{root}/good_time.npz --time-scale 1 --downsample "
               "4x4", "--downsample reduces a tonic data set's sensor; good_time.npz has no sensor: its channels are "
               "the network's 5 inputs"),
    case("--time-scale zero", VERIFY_ON + "{root}/nan_time.npz --time-scale 0", "--time-scale must be a positive number"),
    exact_case("data without samples", VERIFY_ON + "{root}/empty.npz", "empty.npz holds no samples"),
    exact_case("run on data without samples", "run {root}/m.bundle --data {root}/empty.npz -o {out}/r.h5",
               "empty.npz holds no samples"),
    exact_case("calibration on data without samples", COMPILE + " --calibrate {root}/empty.npz -o {out}/x.bundle",
               "empty.npz holds no samples"),
    exact_case("--samples 0 of data without samples", VERIFY_ON + "{root}/empty.npz --samples 0",
               "--samples must be at least 1, got 0"),
    case("samples beyond the file", "run {root}/m.bundle --data {root}/spikes.npz --samples 4 -o {out}/r.h5",
         "--samples 4 asks for more samples than spikes.npz has (3)"),
    case("a sensor larger than the network's input", VERIFY_ON + "nmnist:test --data-root {root}/nmnist --time-scale 1",
         "nmnist:test's sensor 34x34x2 gives 2312 channels, more than the network's 5 inputs: reduce it with "
         "--downsample WIDTHxHEIGHT"),
    case("--downsample larger than the sensor", VERIFY_ON + "nmnist:test --data-root {root}/nmnist --time-scale 1 "
         "--downsample 64x64", "--downsample 64x64 must shrink nmnist:test's sensor 34x34x2"),
    case("--downsample not WxH", VERIFY_ON + "nmnist:test --downsample big", "'big' is not WIDTHxHEIGHT"),
    exact_case("tonic data set without --data-root", VERIFY_ON + "nmnist:test",
               "nmnist:test reads tonic's NMNIST from a folder: give it as --data-root DIR"),
    # The message names the spec, not --data: compile reads it as --calibrate DATA.
    exact_case("calibration on a tonic data set without --data-root", COMPILE + " --calibrate nmnist:train "
               "-o {out}/x.bundle", "nmnist:train reads tonic's NMNIST from a folder: give it as --data-root DIR"),
    exact_case("compile's data options without --calibrate", COMPILE + " --calibrate none --data-root {root}/nmnist "
               "--time-scale 1e-3 -o {out}/x.bundle", "--data-root and --time-scale need --calibrate DATA"),
    exact_case("--downsample without calibration data", COMPILE + " --downsample 4x4 -o {out}/x.bundle",
               "--downsample needs --calibrate DATA"),
    case("compile takes no --labels", COMPILE + " --calibrate {root}/spikes.npz --labels {root}/two_labels.npy "
         "-o {out}/x.bundle", "unrecognized arguments: --labels"),
    case("tonic folder without the data set", VERIFY_ON + "nmnist:test --data-root {root}/no_nmnist",
         "no nmnist:test in"),
    case("tonic split unknown", VERIFY_ON + "shd:valid --data-root {root}/shd_nan", "shd has splits train, test"),
    case("HDF5 that is no NIR data", VERIFY_ON + "{root}/run.h5", "run.h5 is not NIR data"),
    case("verify JSON over the data file", "verify {root}/m.nir {root}/m.bundle --data {root}/spikes.npz --json "
         "{root}/spikes.npz", "is also an input"),
    case("state traces in NIR data", RUN + " --record-state --format nir-data -o {out}/r.h5",
         "state traces are kept in the HDF5 record"),
    # memory, estimated before anything is allocated
    case("2*10^9 random samples", "run {root}/m.bundle --data random --samples 2000000000 -o {out}/r.h5",
         "this run needs an estimated"),
    case("run of 10^10 steps per sample", "run {root}/huge.bundle --data random -o {out}/r.h5",
         "input raster per batch 46.6 GiB"),
    case("verify of 10^10 steps per sample", "verify {root}/m.nir {root}/huge.bundle --data yinyang:test",
         "this run needs an estimated"),
    case("state traces of 5000 x 10^6 steps", "run {root}/long.bundle --data yinyang:train --record-state "
         "-o {out}/r.h5", "state traces"),
    # back ends
    case("unknown back end", VERIFY + " --backend spinnaker --json {out}/v.json", "unknown back end 'spinnaker'"),
    case("run unknown back end", RUN + " --backend spinnaker -o {out}/r.h5", "unknown back end 'spinnaker'"),
    case("hardware back end without lava-loihi", VERIFY + " --backend loihi2 --json {out}/v.json", "lava-loihi"),
    # replayed records
    case("replay of another bundle's run", "verify {root}/m.nir {root}/m.bundle --data yinyang:test --samples 5 "
         "--replay {root}/other_run.h5", "recorded from a different bundle"),
    case("replay with other samples", "verify {root}/m.nir {root}/m.bundle --data yinyang:test --samples 6 "
         "--replay {root}/run.h5", "was recorded on yinyang:test samples 0-4, not on yinyang:test samples 0-5"),
    case("replay on another split", "verify {root}/m.nir {root}/m.bundle --data yinyang:train --samples 5 "
         "--replay {root}/run.h5", "was recorded on yinyang:test samples 0-4, not on yinyang:train samples 0-4"),
    case("verify --robustness of an unknown kind", VERIFY + " --json {out}/v.json --robustness noise=1",
         "--robustness takes jitter=LEVELS, drop=LEVELS and seed=N"),
    case("verify --robustness drop above 1", VERIFY + " --json {out}/v.json --robustness drop=2",
         "--robustness drop levels must be between 0 and 1, got 2"),
    case("verify --robustness with a replay", VERIFY + " --json {out}/v.json --robustness jitter=1 --replay "
         "{root}/run.h5", "--robustness runs the back end on perturbed inputs; it cannot take a --replay record"),
    # verify reads the semantics from the bundle: an option may restate them, never contradict them
    case("verify --reset contradicting the bundle", VERIFY + " --reset subtract",
         "the bundle was compiled with reset zero; --reset subtract contradicts it"),
    case("verify --duration contradicting the bundle", VERIFY + " --duration 0.01",
         "the bundle was compiled with horizon 3; --duration 0.01 contradicts it"),
    case("verify --decoding contradicting the bundle", VERIFY + " --decoding spike_count",
         "the bundle was compiled with decoding first_spike; --decoding spike_count contradicts it"),
    case("verify --multi-spike contradicting the bundle", VERIFY + " --multi-spike",
         "the bundle was compiled with fire_once true; --multi-spike contradicts it"),
    case("verify --integration contradicting the bundle", VERIFY + " --integration euler",
         "the bundle was compiled with integration exact; --integration euler contradicts it"),
    case("verify --dt contradicting the bundle", VERIFY + " --dt 0.5", "--dt 0.5 contradicts it"),
    case("replay neuron out of range", VERIFY + " --replay {root}/bad_neuron.h5",
         "spikes/lif2 has a spike at neuron 99, outside [0, 2]"),
    case("replay step out of range", VERIFY + " --replay {root}/bad_step.h5",
         "spikes/lif2 has a spike at step 1000000, outside [1, 383]"),
    case("replay sample out of range", VERIFY + " --replay {root}/bad_sample.h5",
         "spikes/lif2 has a spike at sample 77, outside [0, 4]"),
    case("missing replay record", VERIFY + " --replay {root}/nope.h5", "spike record not found"),
    case("corrupt replay record", VERIFY + " --replay {root}/corrupt.h5", "is not a readable snn-deploy spike record"),
    # tolerances
    case("accuracy drop above 1", VERIFY + " --max-accuracy-drop 2",
         "tolerance option: max_accuracy_drop must be a number in [0, 1], got 2.0"),
    case("negative hardware events", VERIFY + " --max-hardware-events -1",
         "max_hardware_events must be a whole number >= 0, got -1"),
    case("tolerance file with an unknown key", "verify {root}/unknown_key/m.nir {root}/m.bundle --data yinyang:test",
         "snn-deploy.toml: unknown key 'max_accuracy_dorp'"),
    case("tolerance file with a bad value", "verify {root}/bad_value/m.nir {root}/m.bundle --data yinyang:test",
         "snn-deploy.toml: max_accuracy_drop must be a number in [0, 1], got 2"),
    case("tolerance file not TOML", "verify {root}/bad_toml/m.nir {root}/m.bundle --data yinyang:test",
         "snn-deploy.toml: not valid TOML"),
]

# Whatever the input, these must not run before it is refused (a refused memory estimate allocated nothing).
SIMULATORS = ("snn_deploy.targets.schedule.run", "snn_deploy.deploy.stages.stimulus.random_spike_trains")


def _argv(template: str, root: Path, out: Path, readonly: Path) -> list[str]:
    return template.format(root=root, out=out, readonly=readonly).split()


def _assert_one_line(err: str) -> str:
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_the_table_is_large_and_its_names_unique():
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(bad, root, readonly, tmp_path, capsys, monkeypatch):
    for name in SIMULATORS + bad.extra_forbidden:
        def forbidden(*args, _name=name, **kwargs):
            raise AssertionError(f"{_name} ran before the bad input was refused")
        monkeypatch.setattr(name, forbidden)
    before = snapshot(root, tmp_path)
    code = main(_argv(bad.argv, root, tmp_path, readonly))
    captured = capsys.readouterr()
    line = _assert_one_line(captured.err)
    assert code == 2, captured.err
    if bad.exact:
        assert line.partition(": error: ")[2] == bad.message
    else:
        assert bad.message in line
    assert snapshot(root, tmp_path) == before  # no output, no temp file, every input byte for byte


@pytest.mark.parametrize("name", ["0-byte bundle", "unknown option", "replay neuron out of range",
                                  "output under /proc"])
def test_the_console_entry_point_exits_2(name, root, readonly, tmp_path):
    (bad,) = [c for c in CASES if c.name == name]
    before = snapshot(root, tmp_path)
    result = subprocess.run([*CLI, *_argv(bad.argv, root, tmp_path, readonly)], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert bad.message in _assert_one_line(result.stderr)
    assert snapshot(root, tmp_path) == before
