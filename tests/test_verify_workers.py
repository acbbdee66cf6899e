"""verify split by samples over local processes (``--workers N``): the same comparison and verdict, key for key, as
one process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn_deploy.deploy import compile_network, export, load_graph
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.verify import compare, judge
from snn_deploy.models import data, zoo
from snn_deploy.targets import description

from helpers import assert_records_equal


@pytest.mark.parametrize("name, samples", [("yinyang-ttfs", 150), ("digits-multispike", 61)])
def test_a_comparison_split_over_processes_is_the_single_process_one(name, samples, tmp_path):
    """Two processes (61 samples: uneven parts of 30 and 31): every array of the comparison, and the verdict."""
    model = zoo.load(name)
    export(model, tmp_path / f"{name}.nir")
    net = load_graph(tmp_path / f"{name}.nir")
    bundle = compile_network(net, description.load("loihi2"))
    test = data.load(f"{model.dataset}:test")
    features, labels = test.features[:samples], test.labels[:samples]
    single = compare(net, bundle, features, labels)
    done = []
    split = compare(net, bundle, features, labels, workers=2, progress=done.append)
    assert done == [samples // 2, samples - samples // 2]
    assert_records_equal(single.record, split.record)
    np.testing.assert_array_equal(split.inputs.events, single.inputs.events)
    assert split.float_reference == single.float_reference
    for key, decisions in single.decisions.items():
        np.testing.assert_array_equal(split.decisions[key], decisions, err_msg=key)
    for model_name, layers in single.times.items():
        for layer, times in layers.items():
            np.testing.assert_array_equal(split.times[model_name][layer], times, err_msg=f"{model_name} {layer}")
    for layer, events in single.discrete.items():
        np.testing.assert_array_equal(split.discrete[layer].events, events.events, err_msg=layer)
    assert judge(split, net, bundle).to_json() == judge(single, net, bundle).to_json()


def test_verify_with_workers_writes_the_same_verdict(tmp_path):
    model_path = tmp_path / "yy.nir"
    export(zoo.load("yinyang-ttfs"), model_path)
    assert main(["compile", str(model_path), "-o", str(tmp_path / "yy.bundle"), "-q"]) == 0
    common = ["verify", str(model_path), str(tmp_path / "yy.bundle"), "--data", "yinyang:test", "--samples", "90",
              "-q"]
    codes = [main([*common, "--json", str(tmp_path / "one.json")]),
             main([*common, "--workers", "2", "--json", str(tmp_path / "two.json")])]
    assert codes[0] == codes[1]
    assert json.loads((tmp_path / "one.json").read_text()) == json.loads((tmp_path / "two.json").read_text())


def test_workers_refuse_a_replayed_record_and_fewer_than_one(tmp_path):
    model = zoo.load("yinyang-ttfs")
    export(model, tmp_path / "yy.nir")
    net = load_graph(tmp_path / "yy.nir")
    bundle = compile_network(net, description.load("loihi2"))
    test = data.load("yinyang:test")
    single = compare(net, bundle, test.features[:4], test.labels[:4])
    with pytest.raises(DeployError, match="a replayed record is verified in one process"):
        compare(net, bundle, test.features[:4], test.labels[:4], record=single.record, workers=2)
    with pytest.raises(DeployError, match="--workers must be at least 1, not 0"):
        compare(net, bundle, test.features[:4], test.labels[:4], workers=0)
