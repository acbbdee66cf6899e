"""snn-deploy finetune on the NIR paper's graphs: chip vs ORIGINAL float decisions, calibrated, then tuned and
calibrated. Run by hand:

    .venv/bin/python tools/bench/finetune.py [--only braille_bias_zero ...] [--weights 8bit|split|both]

Per graph, weight precision and input rate: the graph is tuned on random spike trains of that rate drawn with seed 1
(the settings' defaults), the tuned graph written and compiled as a user compiles it, calibrated on the same trains
(as tools/bench/calibration.py calibrates); both it and the original graph compiled the same way are measured on
other spike trains (seed 0) against the ORIGINAL graph's float model, on bitsim. Writes FINETUNE.md and
finetune.json here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nir

from calibration import CALIBRATED, CALIBRATION_SAMPLES, RATES, WEIGHTS, measure_each, test_agreement
from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.artifacts.tuning import TuningSettings
from snn_deploy.deploy.stages.finetune import DEFAULT_TUNING_SAMPLES, finetune
from snn_deploy.deploy.stages.load import read_nir

FIGURES = HERE / "finetune.json"


def measure(name: str, split_weights: bool, rate: float, settings: TuningSettings) -> dict:
    path, semantics, dt, _, samples = GRAPHS[name]
    original = load_graph(REFERENCE / path, semantics)
    data = f"random:rate={rate},seed=1"
    tuning_samples = CALIBRATION_SAMPLES.get(name, DEFAULT_TUNING_SAMPLES)
    started = time.perf_counter()
    tuned = finetune(read_nir(REFERENCE / path), original, TARGET, data, settings, samples=tuning_samples, dt=dt)
    tuning_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        tuned_path = Path(folder) / "tuned.nir"
        nir.write(tuned_path, tuned.graph)
        tuned_net = load_graph(tuned_path)
    bundles = {key: compile_network(net, TARGET, dt=dt, split_weights=split_weights, calibrate=data,
                                    calibrate_samples=tuning_samples)
               for key, net in (("calibrated", original), ("tuned", tuned_net))}
    # Both against the ORIGINAL float model: the tuned bundle's pair check accepts the graph it was tuned from.
    agreement = {key: test_agreement(original, bundle, rate, samples) for key, bundle in bundles.items()}
    report = tuned.report
    return {"graph": name, "split_weights": split_weights, "rate": rate, "test_samples": samples,
            "tuning_samples": report.samples, **agreement, "kept_epoch": report.kept_epoch,
            "tuning_data_by_epoch": [r.chip_agreement for r in report.epochs],
            "loss_by_epoch": [round(r.loss, 6) for r in report.epochs], "trained": list(report.trained),
            "settings": settings.as_metadata(), "tuning_seconds": round(tuning_seconds, 1),
            "date": time.strftime("%Y-%m-%d")}


def markdown(rows: list[dict]) -> str:
    lines = ["# snn-deploy finetune on the NIR paper's graphs (loihi2, bitsim)", "",
             "Written by `tools/bench/finetune.py`. Tuned and calibrated on random spike trains of the rate (seed 1), "
             "measured on others (seed 0): decisions equal to the ORIGINAL graph's float model. `tuning data by "
             "epoch`: the chip's agreement on the tuning data after each epoch (epoch 0: the original weights); the "
             "epoch kept is the best of them.", "",
             "| graph | weights | rate | test samples | calibrated | tuned + calibrated | tuning data by epoch | "
             "kept epoch | tuning s |", "|---|---|---|---|---|---|---|---|---|"]
    # What every row shares (the epochs and weights are the row's own).
    shared = sorted({json.dumps({k: v for k, v in r["settings"].items() if k not in ("epochs", "split_weights")},
                                sort_keys=True) for r in rows})
    for r in rows:
        epochs = " ".join(f"{100 * a:.1f}" for a in r["tuning_data_by_epoch"])
        lines.append(f"| {r['graph']} | {'split' if r['split_weights'] else '8 bit'} | {r['rate']} | "
                     f"{r['test_samples']} | {100 * r['calibrated']:.1f}% | {100 * r['tuned']:.1f}% | {epochs} | "
                     f"{r['kept_epoch']} | {r['tuning_seconds']} |")
    lines += ["", "Settings: " + "; ".join(", ".join(f"{k} {v}" for k, v in json.loads(s).items()) for s in shared)
              + "; the epochs as the tuning data's figures count them."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=CALIBRATED, help="measure these graphs only")
    parser.add_argument("--weights", choices=("8bit", "split", "both"), default="both")
    parser.add_argument("--rates", nargs="*", type=float, default=list(RATES))
    parser.add_argument("--epochs", type=int, default=TuningSettings().epochs,
                        help="fewer epochs for the slow CNN (the other settings are the defaults)")
    args = parser.parse_args()
    defaults = {**TuningSettings().as_metadata(), "epochs": args.epochs}
    measure_each(args.only or CALIBRATED, WEIGHTS[args.weights], args.rates,
                 lambda name, split, rate: measure(name, split, rate, TuningSettings(**{**defaults,
                                                                                       "split_weights": split})),
                 FIGURES, HERE / "FINETUNE.md", markdown)

if __name__ == "__main__":
    main()
