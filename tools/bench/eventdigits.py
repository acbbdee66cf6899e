"""The zoo's eventdigits-cnn deployed, on the whole eventdigits test split: the figures its sidecar states.

  .venv/bin/python tools/bench/eventdigits.py [--write]

Measures snnTorch's own test accuracy (the committed graph's weights back in snnTorch), the float
reference's decisions against snnTorch's (decision for decision), the chip's (loihi2, bitsim) accuracy and
agreement, and the same verify through the tonic route: the split written in N-MNIST's format and read
as --data nmnist:test --data-root DIR. ``--write`` stores the figures in the sidecar's meta["deployed"].
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nir  # noqa: E402
import torch  # noqa: E402

from snn_deploy.deploy import compare_spikes, compile_network, load_graph, load_stimulus, verify  # noqa: E402
from snn_deploy.models import data, eventdigits, train_eventdigits, zoo  # noqa: E402
from snn_deploy.targets import description  # noqa: E402

NAME = train_eventdigits.NAME


def measure() -> dict:
    torch.set_num_threads(1)
    sidecar = zoo.graph_description(NAME)
    split = data.eventdigits("test")
    began = time.perf_counter()
    frames = split.frames()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = train_eventdigits.net_from_graph(nir.read(zoo.graph_path(NAME)), train_eventdigits.EventCNNConfig(
            **sidecar["config"]))
    snntorch_decisions = train_eventdigits.decisions(train_eventdigits.output_spikes(net, frames))
    graph = load_graph(zoo.graph_path(NAME), sidecar["semantics"])
    bundle = compile_network(graph, description.load("loihi2"), dt=sidecar["dt"])
    stimulus = load_stimulus("eventdigits:test", None, bundle)
    comparison = compare_spikes(graph, bundle, stimulus.inputs, labels=stimulus.labels)
    labels = stimulus.labels
    chip, float_model = comparison.decisions["chip"], comparison.decisions["float"]
    figures = {
        "samples": int(labels.size),
        "snntorch_test_accuracy": float(np.mean(snntorch_decisions == labels)),
        "float_test_accuracy": float(np.mean(float_model == labels)),
        "float_equals_snntorch": float(np.mean(float_model == snntorch_decisions)),
        "chip_test_accuracy": float(np.mean(chip == labels)),
        "agreement": float(np.mean(chip == float_model)),
        "neurons": int(sum(p.size for p in bundle.network.populations)),
        "cores": bundle.placement.cores_used, "chips": bundle.placement.chips_used,
        "seconds_in_process": round(time.perf_counter() - began, 1),
    }
    with tempfile.TemporaryDirectory() as folder:
        eventdigits.write_nmnist(split, folder)
        verdict = verify(zoo.graph_path(NAME), bundle, data="nmnist:test", data_root=folder)
        result = verdict.to_dict()
        figures["tonic_route"] = {"passed": bool(result["passed"]), "accuracy": result["accuracy"],
                                  "agreement": result["agreement"]}
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the figures in the sidecar's meta['deployed']")
    args = parser.parse_args(argv)
    figures = measure()
    print(json.dumps(figures, indent=2))
    if args.write:
        path = zoo.graph_path(NAME).with_suffix(".json")
        sidecar = json.loads(path.read_text())
        sidecar["meta"]["deployed"] = figures
        path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
