"""Every zoo model compiled for loihi2 with default options and verified on bitsim on its whole test split
(issue 18 section 3, "defaults that work"). Run by hand:

    .venv/bin/python tools/bench/defaults.py [--only NAME ...] [--option=--split-weights ...] [--table-only]

Default options include compile's automatic calibration (``compile.AUTO_CALIBRATION``: the training split of the
data set the graph names; a zoo graph kept as NIR names none, so it is compiled with its sidecar's options only).
``--option`` adds compile options to every model measured (e.g. ``--option=--split-weights``), a row of its own.
Figures go into ``defaults.json`` beside this file (merged by model and options, so models can be measured in
separate runs) and the table into RESULTS.md's section "Zoo with default options", with the date and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_md import replace_section  # noqa: E402

from snn_deploy.deploy import verify  # noqa: E402
from snn_deploy.deploy.interfaces.cli import main  # noqa: E402
from snn_deploy.models import zoo  # noqa: E402
from snn_deploy.targets import bundle as bundle_io  # noqa: E402

SECTION = "## Zoo with default options"
FIGURES = HERE / "defaults.json"
# The target: the chip within half a point of the float model (issue 18, "done when").
MAX_DROP = 0.005


def measure(name: str, options: list[str], folder: Path) -> dict:
    bundle_path = folder / f"{name}.bundle"
    if name in zoo.graph_names():
        graph, sidecar = zoo.graph_path(name), zoo.graph_description(name)
        graph_options, dataset = list(sidecar["compile_options"]), sidecar["dataset"]
    else:
        graph, graph_options, dataset = folder / f"{name}.nir", [], zoo.load(name).dataset
        assert main(["export", name, "-o", str(graph), "-q"]) == 0
    started = time.perf_counter()
    assert main(["compile", str(graph), "--target", "loihi2", "-o", str(bundle_path), "-q",
                 *graph_options, *options]) == 0
    compile_seconds = time.perf_counter() - started
    bundle = bundle_io.load(bundle_path)
    started = time.perf_counter()
    verdict = verify(graph, bundle, data=f"{dataset}:test")
    m = verdict.metrics
    calibration = bundle.report.calibration
    recommendation = getattr(bundle.report, "recommendation", None)
    return {"model": name, "options": " ".join(options), "samples": m.samples, "float": m.accuracy.float,
            "discrete": m.accuracy.discrete, "chip": m.accuracy.chip, "agreement": m.agreement,
            "passed": bool(verdict.passed),
            "calibration": None if calibration is None else {
                "data": calibration.data, "samples": calibration.samples, "applied": calibration.applied,
                "before": calibration.decision_agreement_before, "after": calibration.decision_agreement_after},
            "recommendation": None if recommendation is None else {
                "option": recommendation.option, "without": recommendation.agreement_without,
                "with": recommendation.agreement_with},
            "synapses": sum(layer.synapses for layer in bundle.report.placement.layers.values()),
            "compile_s": round(compile_seconds, 1), "verify_s": round(time.perf_counter() - started, 1),
            "date": time.strftime("%Y-%m-%d %H:%M"), "load": round(os.getloadavg()[0], 1)}


def _calibration_cell(c: dict | None, options: str) -> str:
    if c is None:
        return "off (--calibrate none)" if "--calibrate none" in options else "none (the graph names no data set)"
    return (f"{c['data']}, {c['samples']}: {c['before']:.1%} -> {c['after']:.1%}"
            f"{'' if c['applied'] else ' (not kept)'}")


def table(rows: list[dict]) -> str:
    lines = ["| model | options | test samples | float | chip | chip - float | agreement | within 0.5 points | "
             "calibration (data, samples: decisions like float before -> after) | synapses | compile s | verify s | "
             "measured (load) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        drop = r["chip"] - r["float"]
        lines.append(f"| {r['model']} | {r['options'] or '(defaults)'} | {r['samples']} | {r['float']:.2%} | "
                     f"{r['chip']:.2%} | {100 * drop:+.2f} | {r['agreement']:.2%} | "
                     f"{'yes' if drop >= -MAX_DROP - 1e-12 else 'NO'} | {_calibration_cell(r['calibration'], r['options'])} | "
                     f"{r['synapses']:,} | {r['compile_s']} | {r['verify_s']} | {r['date']} ({r['load']}) |")
    return "\n".join(lines)


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="models to measure (default: every zoo model and graph)")
    parser.add_argument("--option", action="append", default=[], help="a compile option added to every model")
    parser.add_argument("--table-only", action="store_true", help="measure nothing: write the table of defaults.json")
    args = parser.parse_args(argv)
    names = [] if args.table_only else args.only or sorted(zoo.names() + zoo.graph_names())
    rows = {(r["model"], r["options"]): r for r in (json.loads(FIGURES.read_text()) if FIGURES.exists() else [])}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            row = measure(name, args.option, Path(folder))
            print(json.dumps(row), flush=True)
            rows[(row["model"], row["options"])] = row
            FIGURES.write_text(json.dumps(sorted(rows.values(), key=lambda r: (r["model"], r["options"])),
                                          indent=1) + "\n")
    ordered = sorted(rows.values(), key=lambda r: (r["model"], r["options"]))
    replace_section(SECTION, SECTION + "\n\n" + (
        "Each zoo model compiled for loihi2 with default options (calibration on the training split of the data set "
        "the graph names; eventdigits-cnn, kept as NIR, names none and is compiled with its sidecar's options) and "
        "verified on bitsim on its whole test split; by `tools/bench/defaults.py` (figures in `defaults.json`). "
        "Target (issue 18): chip within 0.5 points of float. Rows with options add them to the defaults. "
        "Times are wall clock on the 2-core machine, shared, at the load average given (a run's first compile includes "
        "numba's compilation of the simulator).\n\n"
        + table(ordered) + "\n"))


if __name__ == "__main__":
    main_()
