"""How a run of bitsim's compiled engine scales: ``bench.py --only scaling``.

One axis at a time, the others held: samples (Yin-Yang zoo model, its test set repeated), and steps, hidden
width and input activity (untrained 784-H-10 TTFS networks on seeded random input spike trains; 1000 samples,
about 100 steps, H = 350, 2% input unless the axis says otherwise). Each point is the median of a few runs with
the engine's default threads; the fixed overhead of a run is the intercept of a least-squares line through the
samples axis (time = fixed + per-sample x samples).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engines import load_average, mnist_sized, yinyang

from snn_deploy.targets import bitsim

SAMPLES = (10, 100, 1000, 10000)
STEPS = (50, 100, 200, 400)
WIDTHS = (100, 200, 400, 800, 1600)
RATES = (0.005, 0.01, 0.02, 0.05, 0.1)


def timed_run(bundle, inputs, repeats: int) -> dict:
    bitsim.run(bundle, inputs)  # kernels loaded
    load = load_average()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bitsim.run(bundle, inputs)
        times.append(time.perf_counter() - start)
    neurons = sum(p.size for p in bundle.network.populations)
    seconds = float(np.median(times))
    return {"samples": inputs.num_samples, "steps": bundle.timing.num_steps, "neurons": neurons,
            "input_spikes": int(inputs.events.shape[1]), "seconds": seconds, "min_s": min(times),
            "max_s": max(times), "ns_per_sample_step": seconds / (inputs.num_samples * bundle.timing.num_steps) * 1e9,
            "load": load}


def bench_scaling(tmp: Path, deployed, random_ttfs, net_horizon, quick: bool = False) -> dict:
    repeats = 2 if quick else 5
    out: dict = {"samples": [], "steps": [], "width": [], "activity": []}
    for samples in SAMPLES[:3] if quick else SAMPLES:
        _, bundle, inputs = yinyang(deployed, tmp, samples=samples)
        out["samples"].append(timed_run(bundle, inputs, repeats))
    for steps in STEPS:
        _, bundle, inputs = mnist_sized(deployed, random_ttfs, net_horizon, tmp, steps=steps)
        out["steps"].append(timed_run(bundle, inputs, repeats))
    for width in WIDTHS:
        _, bundle, inputs = mnist_sized(deployed, random_ttfs, net_horizon, tmp, sizes=(784, width, 10))
        out["width"].append(timed_run(bundle, inputs, repeats))
    for rate in RATES:
        _, bundle, inputs = mnist_sized(deployed, random_ttfs, net_horizon, tmp, rate=rate)
        out["activity"].append({**timed_run(bundle, inputs, repeats), "rate": rate})
    samples = np.array([r["samples"] for r in out["samples"]], float)
    seconds = np.array([r["seconds"] for r in out["samples"]])
    per_sample, fixed = np.polyfit(samples, seconds, 1)
    out["fit"] = {"fixed_s": float(fixed), "per_sample_s": float(per_sample)}
    return out


def markdown(r: dict, measured: str) -> str:
    heading = "## Compiled engine: scaling with samples, steps, width and input activity"
    lines = [heading, "", measured, "", __doc__.split("\n\n", 1)[1].strip(), ""]
    columns = {"samples": ("Yin-Yang, samples", lambda x: f"{x['samples']}"),
               "steps": ("784-350-10, steps", lambda x: f"{x['steps']}"),
               "width": ("784-H-10, H", lambda x: f"{x['neurons'] - 10}"),
               "activity": ("784-350-10, input spikes per channel and step", lambda x: f"{x['rate']:.1%}")}
    for axis, (title, label) in columns.items():
        lines += [f"| {title} | samples x steps | run s (min..max) | ns per sample-step | input spikes | load |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {label(x)} | {x['samples']} x {x['steps']} | {x['seconds']:.4f} ({x['min_s']:.4f}..{x['max_s']:.4f})"
                  f" | {x['ns_per_sample_step']:.0f} | {x['input_spikes']:,} | {x['load']} |" for x in r[axis]]
        lines.append("")
    fit = r["fit"]
    lines.append(f"Least-squares line through the samples axis: fixed **{fit['fixed_s'] * 1e3:.2f} ms** per run + "
                 f"{fit['per_sample_s'] * 1e6:.1f} us per sample. Target (fixed overhead): < 5 ms.")
    return "\n".join(lines)
