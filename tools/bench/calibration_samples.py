"""How much calibration data compile --calibrate needs on the NIR paper's Braille graphs (8-bit weights). Run by
hand:

    .venv/bin/python tools/bench/calibration_samples.py      # writes CALIBRATION_SAMPLES.md and its json here

Per graph and input rate: the bundle calibrated on the first N random spike trains of that rate drawn with seed 1,
for each N, measured on other spike trains (seed 0) as tools/bench/calibration.py measures: the fraction of
decisions equal to the float NIR interpreter's, whether the calibration was kept, and the compile time.
"""

from __future__ import annotations

import json
import time

from calibration import RATES, test_agreement
from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from snn_deploy.deploy import compile_network, load_graph

MEASURED = ("braille_bias_zero", "braille_subtract")
SAMPLES = (200, 500, 1000, 2000)  # 200: compile's default (calibrate.DEFAULT_CALIBRATION_SAMPLES)


def measure(name: str, rate: float, samples: int) -> dict:
    path, semantics, dt, _, test_samples = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    started = time.perf_counter()
    bundle = compile_network(net, TARGET, dt=dt, calibrate=f"random:rate={rate},seed=1", calibrate_samples=samples)
    seconds = time.perf_counter() - started
    return {"graph": name, "rate": rate, "calibration_samples": samples, "test_samples": test_samples,
            "agreement": test_agreement(net, bundle, rate, test_samples),
            "applied": bundle.report.calibration.applied, "compile_seconds": round(seconds, 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["# Calibration data: how many samples (Braille graphs, 8-bit weights, loihi2, bitsim)", "",
             "Written by `tools/bench/calibration_samples.py`. Calibrated on the first N random spike trains of the "
             "rate (seed 1), measured on 200 others (seed 0): decisions equal to the float NIR interpreter's "
             "(compile time in brackets; `not kept`: calibration lowered the agreement on its own data, so "
             "the bundle keeps round-to-nearest).", "",
             "| graph | rate | " + " | ".join(f"N = {n}" for n in SAMPLES) + " |", "|---|---|" + "---|" * len(SAMPLES)]
    for name in MEASURED:
        for rate in RATES:
            cells = {r["calibration_samples"]: r for r in rows if (r["graph"], r["rate"]) == (name, rate)}
            lines.append(f"| {name} | {rate} | " + " | ".join(
                f"{100 * cells[n]['agreement']:.1f}% ({cells[n]['compile_seconds']:g} s"
                f"{'' if cells[n]['applied'] else ', not kept'})" for n in SAMPLES) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    rows = []
    for name in MEASURED:
        for rate in RATES:
            for samples in SAMPLES:
                rows.append(measure(name, rate, samples))
                print(json.dumps(rows[-1]), flush=True)
    (HERE / "calibration_samples.json").write_text(json.dumps(rows, indent=1) + "\n")
    (HERE / "CALIBRATION_SAMPLES.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
