"""Stock mode (issue 20): for each threshold spread, the chip accuracy, the LIF processes, and whether the spike
events of every original neuron equal the default bundle's and those of the same integers with the fire-once
latch, on the full test sets. Run by hand (about 3 min on the 2-core machine); the figures are in RESULTS.md's
section "Stock mode (`compile --stock`, issue 20)":

    .venv/bin/python tools/bench/stock.py
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from snn_deploy.deploy import compile_network, export, load_graph
from snn_deploy.deploy.stages.stock import latched
from snn_deploy.deploy.stages.verify import compare, judge
from snn_deploy.models import data, zoo
from snn_deploy.targets import bitsim, description

MODELS = (("yinyang-ttfs", "yinyang:test"), ("digits-ttfs", "digits:test"))
SPREADS = (1.0, 2.0, math.inf)


def same_spikes(a, b, populations) -> bool:
    return all(np.array_equal(a.spikes[pop.name].events, b.spikes[pop.name].events) for pop in populations)


def measure(name: str, split: str, folder: Path) -> None:
    graph = folder / f"{name}.nir"
    export(zoo.load(name), graph)
    net, test, target = load_graph(graph), data.load(split), description.load("loihi2")
    default = compile_network(net, target, calibrate=None)  # the same integers as the stock bundle's, with the latch
    plain = compare(net, default, test.features, test.labels)
    metrics = judge(plain, net, default).metrics
    print(name, "default: accuracy", metrics.accuracy, "agreement", metrics.agreement)
    for spread in SPREADS:
        start = time.perf_counter()
        stocked = compile_network(net, target, stock=True, threshold_spread=spread)
        comparison = compare(net, stocked, test.features, test.labels)
        m = judge(comparison, net, stocked).metrics
        # The same integers with bitsim's fire-once latch instead of the helpers, self-synapses and clock.
        latch = dataclasses.replace(stocked, network=latched(stocked.network),
                                    timing=dataclasses.replace(stocked.timing, padding_steps=0))
        latch_record = bitsim.run(latch, comparison.inputs)
        originals = latch.network.populations
        events = sum(latch_record.spikes[pop.name].events.shape[1] for pop in originals)
        saturations = sum(h.voltage_saturations for h in m.hardware_events.values())
        print(f"{name} spread {spread}: {stocked.report.stock.processes} processes, accuracy {m.accuracy.chip:.4f}, "
              f"agreement {m.agreement:.4f}, == latch {same_spikes(comparison.record, latch_record, originals)}, "
              f"== default {same_spikes(comparison.record, plain.record, default.network.populations)}, "
              f"{events} events, {saturations} voltage saturations, {time.perf_counter() - start:.1f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, split in MODELS:
            measure(name, split, Path(folder))


if __name__ == "__main__":
    main()
