"""Lava's own stock processes (LIFReset, Dense; fixed_pt) against bitsim on a stock bundle's test set, every
population's spikes (helpers and clock included), chunk by chunk. Run by hand; it is slow (Lava steps every
process every step: about 5-10 s a sample on the 2-core machine):

    .venv/bin/python tools/bench/stock_lava.py digits-ttfs [--chunk 40] [--first F] [--samples N]

Each chunk's result is printed as it finishes; at the end (or at Ctrl-C or SIGTERM, for the chunks done) the
figure goes into RESULTS.md's section "Stock mode: Lava's own processes vs bitsim, test sets", one line per model
and range of test samples, so that ranges run in parallel processes (or in several sittings) add up.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_md import RESULTS  # noqa: E402

from snn_deploy.deploy import compile_network, export, load_graph  # noqa: E402
from snn_deploy.deploy.stages.stimulus import encode  # noqa: E402
from snn_deploy.models import data, zoo  # noqa: E402
from snn_deploy.targets import bitsim, description, lava  # noqa: E402

SECTION = "## Stock mode: Lava's own processes vs bitsim, test sets"


def section_lines(text: str) -> dict[str, str]:
    """This section's lines, one per model and range of samples, from RESULTS.md (so that runs add up)."""
    lines, inside = {}, False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line == SECTION
        elif inside and line.startswith("| ") and not line.startswith("| model") and not line.startswith("|---"):
            model, samples = (cell.strip() for cell in line.split("|")[1:3])
            lines[model, samples] = line
    return lines


def main() -> None:
    from results_md import replace_section

    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--chunk", type=int, default=40)
    parser.add_argument("--first", type=int, default=0, help="the first test sample to compare")
    parser.add_argument("--samples", type=int, help="how many test samples to compare (default: all from --first)")
    args = parser.parse_args()
    # A background job ignores Ctrl-C; SIGTERM ends it the same way, keeping the chunks done.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    model = zoo.load(args.model)
    graph = Path(tempfile.mkdtemp()) / "model.nir"
    export(model, graph)
    bundle = compile_network(load_graph(graph), description.load("loihi2"), stock=True)
    test = data.load(f"{model.dataset}:test")
    if not 0 <= args.first < test.labels.size:
        parser.error(f"--first {args.first}: the test set has samples 0-{test.labels.size - 1}")
    end = min(test.labels.size, args.first + args.samples if args.samples else test.labels.size)
    _, inputs = encode(bundle, test.features[args.first:end])
    count = end - args.first
    compared = events = 0
    mismatches = []
    start = time.perf_counter()
    try:
        for first in range(0, count, args.chunk):
            part = inputs.sample_range(first, min(first + args.chunk, count))
            got, want = lava.run(bundle, part), bitsim.run(bundle, part)
            for name, spikes in want.spikes.items():
                if not np.array_equal(got.spikes[name].events, spikes.events):
                    low = args.first + first
                    mismatches.append(f"{name} in samples {low}-{low + part.num_samples - 1}")
                events += spikes.events.shape[1]
            compared += part.num_samples
            print(f"{args.model}: {compared}/{count} samples, {events} events, mismatches {len(mismatches)}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: writing the chunks done", flush=True)
    seconds = time.perf_counter() - start
    lines = section_lines(RESULTS.read_text())
    done = f"{args.first}-{args.first + compared - 1}" if compared else "none"
    done += f" of {test.labels.size}"
    lines[args.model, done] = (f"| {args.model} | {done} | {bundle.report.stock.processes} | "
                               f"{events:,} | {'none' if not mismatches else '; '.join(mismatches)} | {seconds:.0f} s |")
    replace_section(SECTION, "\n".join([
        SECTION, "",
        f"`tools/bench/stock_lava.py`, {time.strftime('%Y-%m-%d')}: the default stock bundle (`--stock`, threshold "
        "spread 2) run by Lava 0.10.0's own LIFReset and Dense processes under Loihi2SimCfg's fixed_pt models and "
        "by bitsim, in chunks of samples; every population's spike events compared (helpers and clock "
        "included).", "",
        "| model | test samples compared (first-last) | LIF processes | spike events compared | mismatches "
        "| Lava + bitsim time |",
        "|---|---|---|---|---|---|", *lines.values(), ""]))


if __name__ == "__main__":
    main()
