"""Compile time (quantize + place) of one dense layer, from 10^4 to 10^7 synapses, and how it grows.

    .venv/bin/python tools/bench_compile.py [--target loihi2] [--repeats 3]

Each size is a square float layer (random weights, TTFS semantics, dt = 1/64 tau) compiled for the
target; the table gives the best of the repeats, and the last line the growth exponent b of
time ~ synapses^b (least squares on log-log).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from snn_deploy.deploy.network import FloatLayer, FloatNetwork, Semantics
from snn_deploy.deploy.place import place
from snn_deploy.deploy.quantize import quantize
from snn_deploy.targets import description

SIZES = (10**4, 10**5, 10**6, 10**7)
DT = 1 / 64  # the compiler's default time step (tau units)


def dense_layer_network(synapses: int, seed: int = 0) -> FloatNetwork:
    side = int(round(math.sqrt(synapses)))
    weight = np.random.default_rng(seed).normal(0.5, 0.8, (side, side))
    ones = np.ones(side)
    layer = FloatLayer(name="lif", synapse="fc", source="input", weight=weight, bias=np.zeros(side), tau_syn=ones,
                       tau_mem=ones, r=ones, w_in=ones, v_leak=np.zeros(side), v_threshold=ones, v_reset=np.zeros(side))
    semantics = Semantics(time_unit="tau", fire_once=True, reset="zero", decoding="first_spike", horizon=4.0,
                          encoding={"kind": "ttfs_linear", "t_early": 0.15, "t_late": 2.0, "bias_times": []})
    return FloatNetwork(input_name="input", input_size=side, layers=(layer,), output="lif", semantics=semantics)


def best_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    target = description.load(args.target)
    print(f"compile time of one dense layer on {target.name} (best of {args.repeats})")
    print(f"{'synapses':>12} {'quantize s':>11} {'place s':>9} {'total s':>9} {'cores':>6}")
    rows = []
    for synapses in SIZES:
        net = dense_layer_network(synapses)
        quantized = quantize(net, target, DT)
        placement = place(quantized.network, target, max_chips=64)
        quantize_s = best_seconds(lambda: quantize(net, target, DT), args.repeats)
        place_s = best_seconds(lambda: place(quantized.network, target, max_chips=64), args.repeats)
        count, total_s = net.layers[0].weight.size, quantize_s + place_s
        rows.append((count, total_s))
        print(f"{count:>12,} {quantize_s:>11.3f} {place_s:>9.3f} {total_s:>9.3f} {placement.cores_used:>6}")
    exponent = np.polyfit(np.log([r[0] for r in rows]), np.log([r[1] for r in rows]), 1)[0]
    print(f"growth: time ~ synapses^{exponent:.2f}")


if __name__ == "__main__":
    main()
