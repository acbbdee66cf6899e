"""The NIR paper's graphs from other tools, on the chip vs the float NIR interpreter. Run by hand:

    .venv/bin/python tools/bench/imported_graphs.py          # writes imported_graphs.json and IMPORTED.md here

Every graph is compiled for loihi2 with the semantics of the tool that wrote it, then run on bitsim
and in the float discrete interpreter (reference.discrete) on seeded random input spike trains
(each channel spikes in each step with the given probability). Per graph, weight precision and
input rate: the fraction of identical decisions (argmax of output spike counts, ties to the earliest
first spike), the output spike-count error, the samples whose spike trains stay identical in every
layer, and where the others first part (layer, step).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.stages.verify import compare_spikes, judge
from snn_deploy.targets import description

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parents[1].parent / "shared" / "reference"
TARGET = description.load("loihi2")

SNNTORCH = {"time_unit": "s", "fire_once": False, "decoding": "spike_count", "horizon": 0.03, "spike": "pulse",
            "integration": "euler"}
# (file, semantics, dt, rates, samples)
GRAPHS = {
    "lif_norse": ("nir-paper-lif/lif_norse.nir", {**SNNTORCH, "reset": "zero", "horizon": 0.1,
                                                   "integration": "exact"}, 1e-4, (0.02,), 200),
    "two_lif_neurons": ("nir-paper-graphs/two_lif_neurons.nir", {**SNNTORCH, "reset": "zero", "horizon": 0.1,
                                                                 "spike": "dirac", "integration": "exact"},
                        1e-4, (0.02,), 200),
    "braille_bias_zero": ("nir-paper-graphs/braille_noDelay_bias_zero.nir", {**SNNTORCH, "reset": "zero"}, 1e-4,
                          (0.01, 0.05), 200),
    "braille_subtract": ("nir-paper-graphs/braille_noDelay_noBias_subtract.nir", {**SNNTORCH, "reset": "subtract"},
                         1e-4, (0.01, 0.05), 200),
    "cnn_sinabs": ("nir-paper-graphs/cnn_sinabs.nir", {"time_unit": "step", "fire_once": False, "reset": "subtract",
                                                        "decoding": "spike_count", "horizon": 100, "spike": "dirac",
                                                        "integration": "euler"}, 1.0, (0.02, 0.05), 50),
}


def measure(name: str, split_weights: bool, rate: float) -> dict:
    path, semantics, dt, _, samples = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    bundle = compile_network(net, TARGET, dt=dt, split_weights=split_weights)
    inputs = random_spike_trains(net.input_size, samples, bundle.timing.num_steps, rate, seed=0)
    started = time.perf_counter()
    m = judge(compare_spikes(net, bundle, inputs), net, bundle).to_dict()
    events = {key: sum(c[key] for c in m["hardware_events"].values()) for key in ("current_wraps",
                                                                                   "voltage_saturations")}
    divergence = {key: value for key, value in m["divergence"].items() if key != "per_sample"}
    return {"graph": name, "split_weights": split_weights, "rate": rate, "samples": samples,
            "steps": bundle.timing.num_steps, "agreement": m["agreement"],
            "output_spike_count_error": m["output_spike_count_error"], "divergence": divergence,
            "hardware_events": events, "seconds": round(time.perf_counter() - started, 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["# Imported NIR graphs: chip (bitsim) vs the float NIR interpreter", "",
             "Written by `tools/bench/imported_graphs.py`; seeded random input spike trains (seed 0).", "",
             "| graph | weights | rate | samples x steps | identical decisions | output count error (mean / ref. mean) "
             "| identical spike trains | first divergence: layer (samples) | step min / median | v saturations |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, d = r["output_spike_count_error"], r["divergence"]
        layers = ", ".join(f"{k} ({v})" for k, v in d["first_layer"].items() if v) or "-"
        steps = f"{d['first_step']['min']} / {d['first_step']['median']:.0f}" if d["first_step"] else "-"
        lines.append(f"| {r['graph']} | {'split (~14 bit)' if r['split_weights'] else '8 bit'} | {r['rate']} | "
                     f"{r['samples']} x {r['steps']} | {100 * r['agreement']:.1f}% | {c['mean_abs']:.2f} / "
                     f"{c['reference_mean']:.2f} | {100 * d['samples_identical']:.1f}% | {layers} | {steps} | "
                     f"{r['hardware_events']['voltage_saturations']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(GRAPHS), help="measure these graphs only")
    args = parser.parse_args()
    results = HERE / "imported_graphs.json"
    # --only replaces those graphs' rows and keeps the others'.
    rows = [r for r in json.loads(results.read_text()) if r["graph"] not in args.only] \
        if args.only and results.exists() else []
    for name in args.only or GRAPHS:
        for split_weights in (False, True):
            for rate in GRAPHS[name][3]:
                rows.append(measure(name, split_weights, rate))
                print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: list(GRAPHS).index(r["graph"]))
    results.write_text(json.dumps(rows, indent=1) + "\n")
    (HERE / "IMPORTED.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
