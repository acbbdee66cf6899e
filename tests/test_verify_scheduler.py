"""verify split by samples between the workers of a Dask distributed scheduler (``--scheduler ADDRESS``), and the
loading both split modes share: data named by a spec are loaded by each worker, its own samples only. The verdict
is a single process's, key for key. The cluster is a LocalCluster on the loopback interface, started here."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import dask
import distributed
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, export, load_graph, verify
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages import stimulus as stimulus_stage
from snn_deploy.deploy.stages import verify as verify_stage
from snn_deploy.deploy.artifacts.stimulus import DataOptions
from snn_deploy.deploy.stages.stimulus import data_spec, joined_reports, load_stimulus, load_stimulus_part
from snn_deploy.deploy.stages.verify import compare, partitions
from snn_deploy.models import data, zoo
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description

# (data spec, samples): a shipped data set split (labels, continuous input times) and random spike trains (neither).
SPECS = [("yinyang:test", 150), ("random:rate=0.05,seed=3", 37)]
# The user's files (``user_data``): an .npz raster with its labels; an .npz of step events with labels in a .npy
# beside it, repeats (merged) and events after the input steps (cropped) among them.
FILES = ["raster.npz", "events.npz"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yy")
    graph = folder / "yy.nir"
    export(zoo.load("yinyang-ttfs"), graph)
    bundle_path = folder / "yy.bundle"
    bundle_io.save(compile_network(load_graph(graph), description.load("loihi2")), bundle_path)
    return graph, bundle_path


@pytest.fixture(scope="module")
def user_data(files, tmp_path_factory):
    """file name -> (path, DataOptions, samples)."""
    folder = tmp_path_factory.mktemp("user")
    bundle = bundle_io.load(files[1])
    size, steps = bundle.network.input.size, bundle.timing.num_steps
    input_steps = steps - bundle.timing.latency_steps
    rng = np.random.default_rng(5)
    np.savez(folder / "raster.npz", spikes=rng.random((23, steps, size)) < 0.01, labels=rng.integers(0, 3, 23))
    count = 400
    sample, channel, step = rng.integers(0, 19, count), rng.integers(0, size, count), rng.integers(0, steps, count)
    step[:40] = input_steps + rng.integers(0, 5, 40)  # after the input steps: cropped
    sample, channel, step = (np.concatenate([a, a[40:80]]) for a in (sample, channel, step))  # repeats: merged
    keep = sample != 7  # sample 7 without any spike
    np.savez(folder / "events.npz", sample=sample[keep], channel=channel[keep], step=step[keep], num_samples=19)
    np.save(folder / "labels.npy", rng.integers(0, 3, 19))
    return {"raster.npz": (folder / "raster.npz", DataOptions(), 23),
            "events.npz": (folder / "events.npz", DataOptions(labels=folder / "labels.npy"), 17)}


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes and their scheduler, on 127.0.0.1 only; closed after the module. Dask's
    MALLOC_TRIM_THRESHOLD_ left unset in the workers: with it numpy runs several times slower (tools/bench/RESULTS.md)."""
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        local = distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
    with local:
        yield local.scheduler_address


def test_partitions_cover_the_samples_in_order_without_gaps():
    assert partitions(61, 2) == [(0, 30), (30, 61)]
    assert partitions(2, 5) == [(0, 1), (1, 2)]  # more parts than samples: one sample each, none empty
    for samples, parts in ((1000, 3), (7, 7), (150, 4)):
        ranges = partitions(samples, parts)
        assert len(ranges) == min(samples, parts)
        assert [start for start, _ in ranges] == [0] + [stop for _, stop in ranges[:-1]]
        assert ranges[-1][1] == samples


@pytest.mark.parametrize("spec, samples", SPECS)
def test_a_part_loaded_by_itself_is_that_range_of_the_whole(spec, samples, files):
    bundle = bundle_io.load(files[1])
    whole = load_stimulus(spec, samples, bundle, references=True)
    named = data_spec(spec, samples, bundle)
    assert (named.num_samples, named.name, named.labelled) == (samples, whole.name, whole.labels is not None)
    for start, stop in [(0, samples), *partitions(samples, 3)]:
        part = load_stimulus_part(named, bundle, start, stop, references=True)
        sample, step, channel = whole.inputs.events
        keep = (sample >= start) & (sample < stop)
        assert np.array_equal(part.inputs.events, np.stack([sample[keep] - start, step[keep], channel[keep]]))
        assert part.inputs.num_samples == stop - start
        if whole.labels is None:
            assert part.labels is None and part.times is None
        else:
            assert np.array_equal(part.labels, whole.labels[start:stop])
            assert np.array_equal(part.times, whole.times[start:stop])
    with pytest.raises(DeployError, match="are not within"):
        load_stimulus_part(named, bundle, samples - 1, samples + 1)


def _assert_range(part, whole, start: int, stop: int) -> None:
    sample, step, channel = whole.inputs.events
    keep = (sample >= start) & (sample < stop)
    assert np.array_equal(part.inputs.events, np.stack([sample[keep] - start, step[keep], channel[keep]]))
    assert part.inputs.num_samples == stop - start
    for name in ("labels", "times"):
        expected = getattr(whole, name)
        assert (getattr(part, name) is None) if expected is None else np.array_equal(getattr(part, name),
                                                                                      expected[start:stop])


@pytest.mark.parametrize("name", FILES)
def test_a_part_of_a_users_file_is_that_range_of_the_whole_and_the_reports_add_up(name, files, user_data):
    bundle = bundle_io.load(files[1])
    path, options, samples = user_data[name]
    whole = load_stimulus(str(path), samples, bundle, options=options, references=True)
    named = data_spec(str(path), samples, bundle, options)
    assert (named.num_samples, named.name, named.labelled) == (samples, whole.name, True)
    ranges = partitions(samples, 3)
    parts = [load_stimulus_part(named, bundle, start, stop, references=True) for start, stop in ranges]
    for part, (start, stop) in zip(parts, ranges):
        _assert_range(part, whole, start, stop)
    assert joined_reports([part.report for part in parts]) == whole.report
    if name == "events.npz":  # the counts that are added up are all there to add
        assert min(whole.report.cropped_events, whole.report.merged_events, whole.report.empty_samples) > 0


@pytest.mark.parametrize("name", FILES)
def test_a_users_file_split_gives_the_single_process_verdict(name, files, user_data, cluster):
    graph, bundle = files
    path, options, samples = user_data[name]
    labels = options.labels
    single = verify(graph, bundle, str(path), labels, samples=samples).to_dict()
    assert single["data"] is not None
    assert verify(graph, bundle, str(path), labels, samples=samples, scheduler=cluster).to_dict() == single
    assert verify(graph, bundle, str(path), labels, samples=samples, workers=2).to_dict() == single


@pytest.mark.parametrize("spec, samples", SPECS)
def test_the_verdict_over_a_scheduler_is_the_single_process_one(spec, samples, files, cluster):
    graph, bundle = files
    single = verify(graph, bundle, spec, samples=samples).to_dict()
    assert verify(graph, bundle, spec, samples=samples, scheduler=cluster).to_dict() == single
    # --workers with --scheduler: the number of parts (3 over the cluster's 2 workers).
    assert verify(graph, bundle, spec, samples=samples, scheduler=cluster, workers=3).to_dict() == single
    assert verify(graph, bundle, spec, samples=samples, workers=2).to_dict() == single


def test_in_memory_data_over_a_scheduler_travel_as_the_parts_samples(files, cluster):
    graph, bundle = files
    test = data.load("yinyang:test")
    features, labels = test.features[:45], test.labels[:45]
    single = verify(graph, bundle, features, labels).to_dict()
    assert verify(graph, bundle, features, labels, scheduler=cluster).to_dict() == single


def test_split_by_spec_this_process_encodes_or_draws_no_sample(files, cluster, monkeypatch):
    """The workers load their samples; this process only names and counts them (the workers are processes of
    their own, untouched by the patches)."""
    graph, bundle = files
    expected = {spec: verify(graph, bundle, spec, samples=samples).to_dict() for spec, samples in SPECS}

    def forbidden(*args, **kwargs):
        raise AssertionError("the coordinating process made input spikes")

    for name in ("load_stimulus", "load_stimulus_part", "encode", "random_spike_trains"):
        monkeypatch.setattr(stimulus_stage, name, forbidden)
    monkeypatch.setattr(verify_stage, "load_stimulus_part", forbidden)
    for spec, samples in SPECS:
        assert verify(graph, bundle, spec, samples=samples, scheduler=cluster).to_dict() == expected[spec]
        assert verify(graph, bundle, spec, samples=samples, workers=2).to_dict() == expected[spec]


def test_verify_with_a_scheduler_writes_the_same_verdict(files, cluster, tmp_path):
    graph, bundle = files
    common = ["verify", str(graph), str(bundle), "--data", "yinyang:test", "--samples", "90", "-q"]
    codes = [main([*common, "--json", str(tmp_path / "one.json")]),
             main([*common, "--scheduler", cluster, "--json", str(tmp_path / "dask.json")])]
    assert codes[0] == codes[1]
    assert json.loads((tmp_path / "one.json").read_text()) == json.loads((tmp_path / "dask.json").read_text())


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_scheduler_nothing_answers_at_is_bad_input_in_one_line(files, tmp_path, capsys, monkeypatch):
    """A port this test holds bound but not listening: every connection is refused at once, until the timeout."""
    graph, bundle = files
    monkeypatch.setattr(verify_stage, "SCHEDULER_CONNECT_TIMEOUT", 1.0)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        for bad, message in ((address, f"cannot reach the Dask scheduler at '{address}': Timed out"),
                             ("nonsense://x", "cannot reach the Dask scheduler at 'nonsense://x': unknown address")):
            out = tmp_path / "verdict.json"
            code = main(["verify", str(graph), str(bundle), "--data", "yinyang:test", "--samples", "10", "-q",
                         "--scheduler", bad, "--json", str(out)])
            assert code == 2
            assert message in _one_line(capsys.readouterr().err)
            assert not out.exists()


def test_without_dask_the_scheduler_is_refused_naming_the_extra(files, capsys, monkeypatch):
    graph, bundle = files
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    code = main(["verify", str(graph), str(bundle), "--data", "yinyang:test", "--samples", "10", "-q",
                 "--scheduler", "tcp://127.0.0.1:8786"])
    assert code == 2
    assert "pip install 'snn-deploy[distributed]'" in _one_line(capsys.readouterr().err)


def test_deploy_imports_without_dask():
    script = ("import sys\n"
              "for name in ('dask', 'distributed'): sys.modules[name] = None\n"
              "import snn_deploy.deploy, snn_deploy.deploy.interfaces.cli, snn_deploy.deploy.testing\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_replayed_record_is_not_split_between_scheduler_workers(files):
    graph, bundle_path = files
    net = load_graph(graph)
    bundle = bundle_io.load(bundle_path)
    test = data.load("yinyang:test")
    single = compare(net, bundle, test.features[:4], test.labels[:4])
    # Refused before any connection: the address is never tried.
    with pytest.raises(DeployError, match="a replayed record is verified in one process"):
        compare(net, bundle, test.features[:4], test.labels[:4], record=single.record, scheduler="tcp://127.0.0.1:9")
