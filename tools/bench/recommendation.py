"""What compile recommends on the NIR paper's graphs, 8-bit weights, calibrated on random spike trains (seed 1) as
tools/bench/calibration.py calibrates them. Run by hand:

    .venv/bin/python tools/bench/recommendation.py [--only braille_bias_zero ...]

Per graph and input rate: the compile time with calibration (and, below tolerance, the split-weights trial) and the
line compile prints (``reporting.text.format_recommendation``; none: at or above tolerance, or split weights no
better). Writes RESULTS.md's section "compile's recommendation on the imported graphs".
"""

from __future__ import annotations

import argparse
import json
import os
import time

from calibration import CALIBRATED, CALIBRATION_SAMPLES, RATES
from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from results_md import replace_section
from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.reporting.text import format_recommendation
from snn_deploy.deploy.stages.compile import kept_agreement

SECTION = "## compile's recommendation on the imported graphs"
FIGURES = HERE / "recommendation.json"  # merged by (graph, rate), so graphs can be measured in separate runs


def measure(name: str, rate: float) -> dict:
    path, semantics, dt, _, _ = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    started = time.perf_counter()
    bundle = compile_network(net, TARGET, dt=dt, calibrate=f"random:rate={rate},seed=1",
                             calibrate_samples=CALIBRATION_SAMPLES.get(name, 200))
    seconds = time.perf_counter() - started
    record = bundle.report.calibration
    return {"graph": name, "rate": rate, "samples": record.samples, "kept": kept_agreement(record),
            "line": " ".join(format_recommendation(bundle.report.recommendation)) or "(none)",
            "seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(CALIBRATED))
    args = parser.parse_args(argv)
    known = {(r["graph"], r["rate"]): r for r in (json.loads(FIGURES.read_text()) if FIGURES.exists() else [])}
    for name in args.only:
        for rate in RATES:
            row = measure(name, rate)
            print(row, flush=True)
            known[(name, rate)] = row
            FIGURES.write_text(json.dumps(sorted(known.values(), key=lambda r: (r["graph"], r["rate"])), indent=1) + "\n")
    rows = sorted(known.values(), key=lambda r: (r["graph"], r["rate"]))
    lines = ["| graph | rate | calibration samples | kept bundle: decisions like float | compile s (load) | "
             "what compile prints |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['graph']} | {r['rate']} | {r['samples']} | {r['kept']:.1%} | {r['seconds']} ({r['load']}) | "
              f"{r['line']} |" for r in rows]
    replace_section(SECTION, SECTION + "\n\n" + (
        f"Measured {time.strftime('%Y-%m-%d')} (figures in `recommendation.json`) by `tools/bench/recommendation.py`: each graph compiled for loihi2 "
        "with 8-bit weights and `--calibrate random:rate=R,seed=1` (the calibration samples of "
        "`tools/bench/calibration.py`). Below the default agreement tolerance on those samples, compile also "
        "quantizes with split weights, calibrates them the same way and says what they measured; the compile time "
        "includes that trial.\n\n" + "\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
