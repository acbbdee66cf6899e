"""Peak memory of a 10,000-sample N-MNIST-sized verify. Run by hand, never as part of the test suite:

    .venv/bin/python tools/bench/verify_memory.py [--samples 10000] [--folder /tmp/nmnist-bench]

Writes an N-MNIST test set in its real layout (NMNIST/Test/<digit>/<n>.bin, 5 bytes per event; random
events, no download), a 2312-100-10 LIF graph stepped in 1 ms bins (time unit step, dt 1; 300 steps, an
N-MNIST recording's 300 ms at --time-scale 1e-3), compiles it, and runs

    snn-deploy verify net.nir net.bundle --data nmnist:test --data-root FOLDER --time-scale 1e-3

in a child process, whose peak resident memory (VmHWM) is the figure; it is written to RESULTS.md's section
"Verify memory, N-MNIST-sized data" beside this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from helpers import random_events, write_nmnist  # noqa: E402
from results_md import RESULTS, replace_section  # noqa: E402

SENSOR = (34, 34, 2)  # N-MNIST's (Orchard et al. 2015; tonic's NMNIST.sensor_size)
RECORDING_US = 300_000  # an N-MNIST sample: three saccades of about 100 ms
EVENTS_PER_SAMPLE = 4000  # chosen: a few thousand events per sample, as N-MNIST's have
STEPS = 300
HIDDEN = 100
SECTION = "## Verify memory, N-MNIST-sized data"

# Runs verify in this child and prints its peak resident memory (VmHWM) as the last line.
CHILD = """
import sys
from snn_deploy.deploy.interfaces.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(f"exit {code} peak_kib {peak}")
"""


def write_data(folder: Path, samples: int) -> None:
    marker = folder / f"written-{samples}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    write_nmnist(folder, [(number % 10, random_events(rng, EVENTS_PER_SAMPLE, *SENSOR, RECORDING_US))
                          for number in range(samples)])
    marker.write_text("")


def network():
    """Input(2312) -> Affine -> LIF(100) -> Affine -> LIF(10), random excitatory weights (both layers busy)."""
    import nir

    rng = np.random.default_rng(1)
    sizes = (int(np.prod(SENSOR)), HIDDEN, 10)
    nodes = [nir.Input(np.array([sizes[0]]))]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        nodes += [nir.Affine(weight=rng.uniform(0, 0.3, (n_out, n_in)), bias=np.zeros(n_out)),
                  nir.LIF(tau=np.full(n_out, 20.0), r=np.ones(n_out), v_leak=np.zeros(n_out),
                          v_threshold=np.ones(n_out))]
    return nir.NIRGraph.from_list(*nodes, nir.Output(np.array([sizes[-1]])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/nmnist-bench"))
    args = parser.parse_args()
    import nir

    args.folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    write_data(args.folder, args.samples)
    nir.write(args.folder / "net.nir", network())
    semantics = ["--time-unit", "step", "--multi-spike", "--reset", "zero", "--decoding", "spike_count",
                 "--spike", "pulse", "--integration", "euler", "--duration", str(STEPS), "--dt", "1"]
    cli = [sys.executable, "-m", "snn_deploy.deploy.interfaces.cli"]
    subprocess.run([*cli, "compile", str(args.folder / "net.nir"), *semantics, "-o", str(args.folder / "net.bundle"),
                    "-q"], check=True)
    written = time.perf_counter()
    verify = ["verify", str(args.folder / "net.nir"), str(args.folder / "net.bundle"), "--data", "nmnist:test",
              "--data-root", str(args.folder), "--time-scale", "1e-3", "--samples", str(args.samples),
              "--min-agreement", "0", "--max-accuracy-drop", "1", "--json", str(args.folder / "verdict.json")]
    result = subprocess.run([sys.executable, "-c", CHILD, *verify], capture_output=True, text=True)
    ran = time.perf_counter()
    if result.returncode != 0 or not result.stdout.strip().splitlines()[-1].startswith("exit 0"):
        sys.exit(f"verify failed:\n{result.stdout}\n{result.stderr}")
    peak_gib = int(result.stdout.split()[-1]) / 2**20
    verdict = json.loads((args.folder / "verdict.json").read_text())
    data = verdict["data"]
    # What verify holds for the whole run, at 12 bytes a spike event (targets.record.SpikeEvents: int32 sample,
    # step, neuron): the input spikes, and the chip's and the discrete reference's spikes (as many as the
    # chip's, give or take the quantization error).
    held_input = data["events"] - data["merged_events"] - data["cropped_events"]
    held_chip = round(sum(verdict["activity"]["spikes_per_inference"].values()) * args.samples)
    figure = (f"{SECTION}\n\n`tools/bench/verify_memory.py`, {time.strftime('%Y-%m-%d')}: `snn-deploy verify` of "
              f"{args.samples} samples from an N-MNIST folder (tonic's reader; {EVENTS_PER_SAMPLE} random events per "
              f"sample over {RECORDING_US // 1000} ms, sensor 34x34x2), a {int(np.prod(SENSOR))}-{HIDDEN}-10 LIF graph "
              f"over {STEPS} steps of 1 ms (--time-scale 1e-3).\n\n"
              f"Peak resident memory (VmHWM) **{peak_gib:.2f} GiB** (target: below 2 GB); "
              f"{data['events']} input events, {data['merged_events']} merged, {data['cropped_events']} cropped; "
              f"verify took {ran - written:.0f} s.\n\n"
              f"Held throughout (12 bytes a spike event): the input spikes {held_input * 12 / 2**20:.0f} MiB, the "
              f"chip's {held_chip * 12 / 2**20:.0f} MiB and about as much of the discrete reference; the "
              "interpreter and its imports about 0.3 GiB (tonic imports torch). Every pass over the samples (the "
              "runs, energy tables, first spikes, divergence) goes in batches (`targets.record.BATCH_BYTES`, "
              "`schedule.BATCH_RASTER_BYTES`), so the rest is one batch's; the held spikes grow with the "
              f"samples ({(held_input + 2 * held_chip) * 12 / args.samples / 1024:.0f} KiB a sample here).\n")
    print(figure)
    replace_section(SECTION, figure)
    print(f"data written in {written - start:.0f} s; wrote its section of {RESULTS}")


if __name__ == "__main__":
    main()
