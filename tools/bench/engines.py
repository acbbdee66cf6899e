"""bitsim's two engines side by side: ``bench.py --only engines`` runs these and writes their section of RESULTS.md.

- compiled vs reference on the Yin-Yang zoo model (1000 test samples) and on 784-350-10 at 2% input (1000 seeded
  random spike trains, 101 steps), alternating round by round, each engine with its default threads;
- the fixed overhead of a run (the part of its time that does not grow with the samples);
- the compiled engine's start-up in a fresh process: compiling its kernels (an empty numba cache) and loading them
  from numba's on-disk cache;
- the fraction of one core's every-neuron ceiling the compiled engine reaches on Yin-Yang, with the arithmetic.

Every figure carries the machine's load average when it was taken (other work on this 2-core machine slows both
engines, not always alike).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from snn_deploy.deploy.stages.stimulus import input_times, random_spike_trains, to_steps
from snn_deploy.models import data, zoo
from snn_deploy.targets import bitsim, bitsim_compiled, description
from snn_deploy.targets.bundle import Bundle, InputLayer, IntNetwork, LifPopulation, Placement, Timing, save
from snn_deploy.targets.record import SpikeEvents

# The issue's figure for one core running the complete LIF update compiled (decays with truncation, wraps,
# saturation, threshold, reset): 2.6e9 neuron updates/s, 0.385 ns each (issue 17, "What the machine could do").
ISSUE_CEILING_PER_S = 2.6e9
INPUT_RATE = 0.02  # spikes per input channel and step, for 784-350-10


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def yinyang(deployed, tmp: Path, samples: int = 1000):
    """(float network, bundle, input spikes) of the Yin-Yang zoo model on its test set (repeated up to
    ``samples``)."""
    net, bundle = deployed(zoo.load("yinyang-ttfs"), tmp)
    features = data.load("yinyang:test").features
    features = np.resize(features, (samples, features.shape[1]))
    return net, bundle, to_steps(input_times(bundle.encoding, features), bundle.timing.dt, bundle.timing.num_steps)


def mnist_sized(deployed, random_ttfs, net_horizon, tmp: Path, sizes=(784, 350, 10), steps: int = 100,
                rate: float = INPUT_RATE, samples: int = 1000):
    """(float network, bundle, input spikes) of an untrained TTFS network of ``sizes`` over about ``steps``
    steps, on seeded random input spike trains of ``rate`` spikes per channel and step."""
    model = random_ttfs(tuple(sizes))
    net, bundle = deployed(model, tmp, steps_per_tau=steps / net_horizon(model))
    inputs = random_spike_trains(bundle.network.input.size, samples, bundle.timing.num_steps, rate, seed=0)
    return net, bundle, inputs


def speedup(bundle, inputs, rounds: int) -> dict:
    """Reference then compiled, round after round; the ratio of each round's times, and each engine's samples/s."""
    bitsim.run(bundle, inputs, engine="compiled")  # the kernels are loaded (or compiled) once, before timing
    rows = []
    for _ in range(rounds):
        load = load_average()
        start = time.perf_counter()
        expected = bitsim.run(bundle, inputs, engine="reference")
        middle = time.perf_counter()
        actual = bitsim.run(bundle, inputs, engine="compiled")
        end = time.perf_counter()
        exact = all(np.array_equal(expected.spikes[k].events, actual.spikes[k].events) for k in expected.spikes)
        rows.append({"reference_s": middle - start, "compiled_s": end - middle, "load": load,
                     "bit_exact": exact and expected.counters == actual.counters})
    ratios = [r["reference_s"] / r["compiled_s"] for r in rows]
    return {"samples": inputs.num_samples, "steps": bundle.timing.num_steps, "rounds": rows,
            "speedup": {"median": float(np.median(ratios)), "min": min(ratios), "max": max(ratios)},
            "reference_samples_per_s": inputs.num_samples / np.median([r["reference_s"] for r in rows]),
            "compiled_samples_per_s": inputs.num_samples / np.median([r["compiled_s"] for r in rows]),
            "bit_exact": all(r["bit_exact"] for r in rows)}


def fixed_overhead(bundle, inputs, repeats: int = 30) -> dict:
    """Per engine: the median time of a 1-sample run and of a 64-sample run; the fixed part is what a run costs
    beyond its samples: t(1) - (t(64) - t(1)) / 63."""
    out = {"load": load_average()}
    for engine in bitsim.ENGINES:
        times = {}
        for n in (1, 64):
            events = SpikeEvents.from_raster(inputs.raster(slice(0, n)))
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                bitsim.run(bundle, events, engine=engine)
                runs.append(time.perf_counter() - start)
            times[n] = float(np.median(runs))
        per_sample = (times[64] - times[1]) / 63
        out[engine] = {"one_sample_s": times[1], "per_sample_s": per_sample, "fixed_s": times[1] - per_sample}
    return out


STARTUP_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from snn_deploy.targets import bitsim, bundle
from snn_deploy.targets.record import SpikeEvents
loaded = bundle.load(sys.argv[1])
inputs = SpikeEvents.from_raster(np.load(sys.argv[2]))
imported = time.perf_counter()
import numba
numba_imported = time.perf_counter()
bitsim.run(loaded, inputs, engine="compiled")
first = time.perf_counter()
bitsim.run(loaded, inputs, engine="compiled")
second = time.perf_counter()
print(json.dumps({"numba_import_s": numba_imported - imported, "first_run_s": first - numba_imported,
                  "second_run_s": second - first, "process_to_first_record_s": first - start}))
"""


def startup(bundle, inputs, tmp: Path) -> dict:
    """A fresh process runs one sample twice, first with an empty numba cache (the kernels compile), then with the
    cache that run filled (the kernels load). Times after the interpreter started; numba's import apart."""
    bundle_path, raster_path = tmp / "startup.bundle", tmp / "startup.npy"
    save(bundle, bundle_path)
    np.save(raster_path, inputs.raster(slice(0, 1)))
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        for label in ("jit", "cached"):
            load = load_average()
            result = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT, str(bundle_path), str(raster_path)],
                                    env={**os.environ, "NUMBA_CACHE_DIR": cache}, capture_output=True, text=True,
                                    check=True)
            out[label] = {**json.loads(result.stdout.strip().splitlines()[-1]), "load": load}
    return out


def ceiling(rounds: int = 5) -> dict:
    """The compiled engine's every-neuron rate on one core: 4096 neurons that never rest (a bias) and never fire
    (the largest threshold), no synapses, 64 samples x 1000 steps on one thread; the best of ``rounds``."""
    out = {"load": load_average()}
    for fire_once in (False, True):
        pop = LifPopulation("every", 4096, du=100, dv=100, vth=2**17 - 1, bias_mant=5, fire_once=fire_once)
        target = description.load("loihi2")
        bundle = Bundle(target=target.name, network=IntNetwork(InputLayer("input", 1), (pop,), (), pop.name),
                        placement=Placement(target.name, ()), timing=Timing(dt=1.0, num_steps=1000),
                        widths=target.widths, backends=target.backends)
        inputs = SpikeEvents.from_raster(np.zeros((64, 1000, 1), bool))
        bitsim_compiled.run(bundle, inputs, workers=1)
        best = min(_timed(lambda: bitsim_compiled.run(bundle, inputs, workers=1)) for _ in range(rounds))
        out["fire_once" if fire_once else "plain"] = 64 * 1000 * 4096 / best
    return out


def one_thread_rate(bundle, inputs, rounds: int = 5) -> dict:
    """Neuron updates per second of the compiled engine on one thread: samples x steps x neurons / time."""
    updates = inputs.num_samples * bundle.timing.num_steps * sum(p.size for p in bundle.network.populations)
    load = load_average()
    best = min(_timed(lambda: bitsim_compiled.run(bundle, inputs, workers=1)) for _ in range(rounds))
    return {"updates": updates, "seconds": best, "per_s": updates / best, "load": load}


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def bench_engines(tmp: Path, deployed, random_ttfs, net_horizon, rounds: int) -> dict:
    _, yy_bundle, yy_inputs = yinyang(deployed, tmp)
    _, big_bundle, big_inputs = mnist_sized(deployed, random_ttfs, net_horizon, tmp)
    print("  start-up ...", flush=True)
    result = {"startup": startup(yy_bundle, yy_inputs, tmp)}
    print("  Yin-Yang ...", flush=True)
    result["yinyang"] = speedup(yy_bundle, yy_inputs, rounds)
    print("  784-350-10 ...", flush=True)
    result["784-350-10"] = speedup(big_bundle, big_inputs, rounds)
    print("  fixed overhead, ceiling ...", flush=True)
    result["fixed_overhead"] = fixed_overhead(yy_bundle, yy_inputs)
    result["ceiling"] = ceiling()
    result["yinyang_one_thread"] = one_thread_rate(yy_bundle, yy_inputs)
    return result


def markdown(r: dict) -> list[str]:
    def spread(s):
        return f"**{s['median']:.1f}x** ({s['min']:.1f}..{s['max']:.1f})"

    def loads(rows):
        return f"{min(x['load'] for x in rows):.1f}..{max(x['load'] for x in rows):.1f}"

    yy, big, fixed, ceil, one = (r[k] for k in ("yinyang", "784-350-10", "fixed_overhead", "ceiling",
                                                "yinyang_one_thread"))
    jit, cached = r["startup"]["jit"], r["startup"]["cached"]
    lines = ["## bitsim's engines: compiled (numba) vs reference (numpy)", "",
             "Both engines give the same records bit for bit (tests/test_bitsim_compiled.py); here, too, on every "
             f"round: {yy['bit_exact'] and big['bit_exact']}. Each engine with its default threads (both cores for "
             "1000 samples); the load average of this 2-core machine beside each figure.", "",
             "| network | samples x steps | reference samples/s | compiled samples/s | speed-up | target | load |",
             "|---|---|---|---|---|---|---|",
             f"| Yin-Yang zoo model | {yy['samples']} x {yy['steps']} | {yy['reference_samples_per_s']:.0f} | "
             f"{yy['compiled_samples_per_s']:.0f} | {spread(yy['speedup'])} | >= 8x | {loads(yy['rounds'])} |",
             f"| 784-350-10, {INPUT_RATE:.0%} input | {big['samples']} x {big['steps']} | "
             f"{big['reference_samples_per_s']:.0f} | {big['compiled_samples_per_s']:.0f} | {spread(big['speedup'])} "
             f"| >= 20x | {loads(big['rounds'])} |", "",
             f"Fixed overhead of a run (Yin-Yang; t(1 sample) - per-sample time; load {fixed['load']}): compiled "
             f"**{fixed['compiled']['fixed_s'] * 1e3:.2f} ms** (a 1-sample run takes "
             f"{fixed['compiled']['one_sample_s'] * 1e3:.2f} ms), reference {fixed['reference']['fixed_s'] * 1e3:.1f} "
             f"ms ({fixed['reference']['one_sample_s'] * 1e3:.1f} ms). Target: < 5 ms.", "",
             "Start-up in a fresh process (one Yin-Yang sample; numba's import apart: "
             f"{cached['numba_import_s'] * 1e3:.0f} ms): the first run with an empty numba cache compiles the kernels, "
             f"**{jit['first_run_s']:.1f} s** (load {jit['load']}); with the cache filled it loads them, "
             f"**{cached['first_run_s'] * 1e3:.0f} ms** (load {cached['load']}); the next run takes "
             f"{cached['second_run_s'] * 1e3:.2f} ms. The cache sits beside the module (numba's `cache=True`), so a "
             "new installation pays the compile once.", "",
             "Fraction of one core's every-neuron ceiling on Yin-Yang (one thread): "
             f"{one['updates'] / 1e6:.1f}e6 neuron updates (1000 samples x {yy['steps']} steps x 123 neurons) in "
             f"{one['seconds'] * 1e3:.1f} ms = {one['per_s'] / 1e9:.2f}e9/s (load {one['load']}). The engine's own "
             f"ceiling, every neuron every step (4096 neurons that never rest, no synapses; load {ceil['load']}): "
             f"{ceil['plain'] / 1e9:.2f}e9/s, {ceil['fire_once'] / 1e9:.2f}e9/s with the fire-once latch. Yin-Yang's "
             f"layers are fire-once: **{one['per_s'] / ceil['fire_once']:.0%}** of that ceiling, "
             f"{one['per_s'] / ISSUE_CEILING_PER_S:.0%} of the issue's 2.6e9/s. Target: >= 40%.", "", ENGINE_NOTES]
    return lines


# Written by hand from the measurements of tools/bench (and the experiments named), not recomputed.
ENGINE_NOTES = """How the compiled engine spends its time, and what was tried:

- One kernel call runs its samples one after the other, each through all its steps with its state in L1; a
  population step is two branch-free loops that the compiler vectorizes (8 int64 lanes) and a wrap fix-up that
  runs only when a current left the state. Indices are unsigned, or the loops would not vectorize (a signed index
  costs a wraparound test per element: 7x slower synaptic rows). Each (fire-once, reset) pair is its own
  specialization (15% faster than run-time flags, 2 s more to compile).
- Yin-Yang: about 190 ns per sample and step for 123 neurons, 1.5 ns a neuron update, while the engine's
  every-neuron rate is 0.75-1.0 ns on a 4096-neuron population. The difference is a fixed cost per population and
  step (~55 ns: the 3-neuron output layer costs half as much as the 120-neuron hidden layer). That is what keeps
  the speed-up near the 8x target and the rate at a quarter of the issue's 2.6e9/s. Running 8 samples side by
  side as the vector lanes (state neuron-major, 8 cells a neuron) made the neuron loop 1.5x faster per update,
  but the lane-interleaved spike scan, the transposed delivery and the per-block sort of the events took the
  gain back on Yin-Yang and made 784-350-10 2x slower, so the kernel stays per sample. Skipping fired fire-once
  neurons saves nothing in a vectorized loop, and their u must still be integrated: its wraps are counted.
  Returning to rest does not happen within Yin-Yang's 383 steps (never-fired hidden neurons keep decaying), so the
  end-of-sample skip does not fire there; it does on sparse random input.
- 784-350-10 at 2% input: about 1.3-1.9 us per sample and step, two thirds of it adding 16 weight rows of 350 a
  step (0.26 ns an add: the 1.1 MB weight matrix comes from L3). int16 weights saved 5-10% but cost a second
  kernel compile for wide weights; not kept.
- A GPU path (not measured: no GPU here) would run one sample per thread block with the neurons on its threads,
  the same kernel structure through numba.cuda, with the spike rows as coalesced adds; numba's CUDA target and a
  CUDA driver are what it would take.
"""
