"""compile --calibrate on the NIR paper's graphs: chip vs float decisions before and after. Run by hand:

    .venv/bin/python tools/bench/calibration.py [--only braille_bias_zero ...]   # writes CALIBRATION.md here

Per graph, weight precision (8 bit, split) and input rate: the bundle compiled with default options and the one
calibrated on random spike trains of that rate drawn with seed 1, both measured on other spike trains (seed 0,
as tools/bench/imported_graphs.py measures), on bitsim: the fraction of decisions equal to the float NIR
interpreter's, and the calibration's own figures on its data.
"""

from __future__ import annotations

import argparse
import json
import time

from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.stages.verify import compare_spikes, judge

CALIBRATED = ("braille_bias_zero", "braille_subtract", "cnn_sinabs")
RATES = (0.01, 0.05)
CALIBRATION_SAMPLES = {"cnn_sinabs": 30}  # its bitsim runs take about 1.6 s per sample; others: 200


def test_agreement(net, bundle, rate: float, samples: int) -> float:
    """How often ``bundle`` on bitsim decides ``samples`` random spike trains of ``rate`` (seed 0, the test trains)
    as ``net``'s float model does."""
    inputs = random_spike_trains(net.input_size, samples, bundle.timing.num_steps, rate, seed=0)
    return judge(compare_spikes(net, bundle, inputs), net, bundle).metrics.agreement


def measure(name: str, split_weights: bool, rate: float) -> dict:
    path, semantics, dt, _, samples = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    started = time.perf_counter()
    default = compile_network(net, TARGET, dt=dt, split_weights=split_weights)
    calibrated = compile_network(net, TARGET, dt=dt, split_weights=split_weights,
                                 calibrate=f"random:rate={rate},seed=1",
                                 calibrate_samples=CALIBRATION_SAMPLES.get(name, 200))
    agreement = {key: test_agreement(net, bundle, rate, samples)
                 for key, bundle in (("default", default), ("calibrated", calibrated))}
    record = calibrated.report.calibration
    return {"graph": name, "split_weights": split_weights, "rate": rate, "test_samples": samples,
            "calibration_samples": record.samples, **agreement,
            "calibration_data_before": record.decision_agreement_before,
            "calibration_data_after": record.decision_agreement_after, "applied": record.applied,
            "membrane_error": {layer: [r.membrane_error_before, r.membrane_error_after]
                               for layer, r in record.layers.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["# compile --calibrate on the NIR paper's graphs (loihi2, bitsim)", "",
             "Written by `tools/bench/calibration.py`. Calibrated on random spike trains of the rate (seed 1), "
             "measured on others (seed 0): decisions equal to the float NIR interpreter's.", "",
             "| graph | weights | rate | test samples | default | calibrated | on the calibration data (default -> "
             "calibrated, samples) | membrane error per layer, thresholds (before -> after) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        errors = ", ".join(f"{k} {b:.3f} -> {a:.3f}" for k, (b, a) in r["membrane_error"].items())
        lines.append(f"| {r['graph']} | {'split' if r['split_weights'] else '8 bit'} | {r['rate']} | "
                     f"{r['test_samples']} | {100 * r['default']:.1f}% | {100 * r['calibrated']:.1f}% | "
                     f"{100 * r['calibration_data_before']:.1f}% -> {100 * r['calibration_data_after']:.1f}% "
                     f"({r['calibration_samples']}{'' if r['applied'] else ', not kept'}) | {errors} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=CALIBRATED, help="measure these graphs only")
    parser.add_argument("--weights", choices=("8bit", "split", "both"), default="both")
    args = parser.parse_args()
    measure_each(args.only or CALIBRATED, WEIGHTS[args.weights], RATES, measure, HERE / "calibration.json",
                 HERE / "CALIBRATION.md", markdown)


WEIGHTS = {"8bit": (False,), "split": (True,), "both": (False, True)}  # --weights: split_weights measured


def measure_each(names, splits, rates, measure, results, table, markdown) -> None:
    """``measure(name, split_weights, rate)`` for each combination, each row replacing its earlier measurement in
    the json ``results`` as soon as it is made, with ``table`` written from them by ``markdown``."""
    done = json.loads(results.read_text()) if results.exists() else []
    for name in names:
        for split_weights in splits:
            for rate in rates:
                done = [r for r in done if (r["graph"], r["split_weights"], r["rate"]) != (name, split_weights, rate)]
                done.append(measure(name, split_weights, rate))
                print(json.dumps(done[-1]), flush=True)
                done.sort(key=lambda r: (CALIBRATED.index(r["graph"]), r["split_weights"], r["rate"]))
                results.write_text(json.dumps(done, indent=1) + "\n")
                table.write_text(markdown(done))


if __name__ == "__main__":
    main()
