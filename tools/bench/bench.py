"""snn-deploy benchmarks. Run by hand, never as part of the test suite:

    .venv/bin/python tools/bench/bench.py            # everything, writes results.json and RESULTS.md here
    .venv/bin/python tools/bench/bench.py --quick    # fewer samples and rounds, for a smoke run

Every comparison runs A and B in alternation, round after round, in one process, and reports the
ratio per round as a median with its spread (min..max): load on the machine hits both sides alike.
Peak memory is measured in a child process per configuration (VmHWM from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compile_time import DT, SIZES, dense_layer_network  # noqa: E402
from engines import bench_engines  # noqa: E402
from engines import markdown as engines_markdown  # noqa: E402

from snn_deploy.deploy import compile_network, compare, export, judge, load_graph  # noqa: E402
from snn_deploy.deploy.stages.stimulus import input_times, to_steps  # noqa: E402
from snn_deploy.models import data, zoo  # noqa: E402
from snn_deploy.targets.encoding import TTFSEncoding  # noqa: E402
from snn_deploy.models.zoo import TTFSModel  # noqa: E402
from snn_deploy.targets import bitsim, description, lava  # noqa: E402

TARGET = description.load("loihi2")


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def ratio_summary(ratios: list[float]) -> dict:
    return {"median": float(np.median(ratios)), "min": float(min(ratios)), "max": float(max(ratios)),
            "rounds": len(ratios)}


def deployed(model, tmp: Path, steps_per_tau: float = 128):
    path = tmp / f"{model.name}.nir"
    export(model, path)
    net = load_graph(path)
    return net, compile_network(net, TARGET, steps_per_tau=steps_per_tau)


def random_ttfs(sizes: tuple[int, ...], seed: int = 0) -> TTFSModel:
    """An untrained TTFS network with Fast & Deep's initial weight statistics, scaled by fan-in so
    that hidden neurons fire (inputs + 1 bias spike)."""
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in zip((sizes[0] + 1,) + sizes[1:-1], sizes[1:]):
        weights.append(rng.normal(1.5, 0.8, (n_out, n_in)) * 5.0 / n_in)
    return TTFSModel(name="x".join(map(str, sizes)), weights=tuple(weights), threshold=1.0, encoding=TTFSEncoding(),
                     dataset="random", meta={})


def random_features(samples: int, size: int, seed: int = 1) -> np.ndarray:
    """MNIST-like inputs: most pixels dark (late spikes), a fifth bright."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random((samples, size)) < 0.2, rng.random((samples, size)), 1.0)


def bench_lava(tmp: Path, samples: int, rounds: int) -> dict:
    net, bundle = deployed(zoo.load("yinyang-ttfs"), tmp)
    features = data.load("yinyang:test").features[:samples]
    inputs = to_steps(input_times(bundle.encoding, features), bundle.timing.dt, bundle.timing.num_steps)
    lava.run(bundle, to_steps(input_times(bundle.encoding, features[:2]), bundle.timing.dt,
                              bundle.timing.num_steps))  # warm the worker environment's caches
    ratios, rows = [], []
    for _ in range(rounds):
        bitsim_s, expected = timed(lambda: bitsim.run(bundle, inputs))
        lava_s, actual = timed(lambda: lava.run(bundle, inputs))
        exact = all(np.array_equal(expected.spikes[k].events, actual.spikes[k].events) for k in expected.spikes)
        ratios.append(lava_s / bitsim_s)
        rows.append({"bitsim_s": bitsim_s, "lava_s": lava_s, "bit_exact": exact})
    return {"samples": samples, "steps": bundle.timing.num_steps, "rounds": rows,
            "bitsim_samples_per_s": samples / np.median([r["bitsim_s"] for r in rows]),
            "lava_samples_per_s": samples / np.median([r["lava_s"] for r in rows]),
            "speedup": ratio_summary(ratios), "bit_exact": all(r["bit_exact"] for r in rows)}


def bench_float_torch(tmp: Path, batch: int, rounds: int) -> dict:
    """bitsim against the float discrete-time simulation of the same network in plain torch."""
    import torch

    from snn_deploy.deploy.references.onnx import reference_module
    from snn_deploy.deploy.stages.discretize import discretize

    net, bundle = deployed(zoo.load("yinyang-ttfs"), tmp)
    features = data.load("yinyang:train").features[:batch]
    inputs = to_steps(input_times(bundle.encoding, features), bundle.timing.dt, bundle.timing.num_steps)
    module = reference_module(discretize(net, bundle.timing.dt), bundle.timing.num_steps)
    raster = torch.from_numpy(inputs.raster().astype(np.float64))
    ratios, rows = [], []
    for _ in range(rounds):
        bitsim_s, _ = timed(lambda: bitsim.run(bundle, inputs))
        with torch.no_grad():
            torch_s, _ = timed(lambda: module(raster))
        ratios.append(bitsim_s / torch_s)
        rows.append({"bitsim_s": bitsim_s, "torch_s": torch_s})
    return {"batch": batch, "steps": bundle.timing.num_steps, "torch_threads": torch.get_num_threads(),
            "rounds": rows, "bitsim_over_torch": ratio_summary(ratios)}


def throughput_worker(spec: dict) -> dict:
    """One throughput configuration, run in a child process so its peak memory is its own."""
    tmp = Path(spec["tmp"])
    if spec["model"]:
        model = zoo.load(spec["model"])
        features = data.load(f"{model.dataset}:test").features
        features = np.resize(features, (spec["samples"], features.shape[1]))
    else:
        model = random_ttfs(tuple(spec["sizes"]))
        features = random_features(spec["samples"], spec["sizes"][0])
    net, bundle = deployed(model, tmp, steps_per_tau=spec["steps"] / net_horizon(model))
    inputs = to_steps(input_times(bundle.encoding, features), bundle.timing.dt, bundle.timing.num_steps)
    seconds, record = timed(lambda: bitsim.run(bundle, inputs, batch_size=spec.get("batch", 1024)))
    synaptic_events = sum(
        int(np.count_nonzero(conn.weights, axis=0)[({bundle.network.input.name: inputs} | record.spikes)[
            conn.source].events[2]].sum()) for conn in bundle.network.connections)
    result = {"samples": spec["samples"], "steps": bundle.timing.num_steps, "seconds": seconds,
              "samples_per_s": spec["samples"] / seconds, "synaptic_events_per_s": synaptic_events / seconds}
    if spec.get("verify"):
        labels = np.zeros(spec["samples"], np.int64)
        verify_s, _ = timed(lambda: judge(compare(net, bundle, features, labels, record=record), net, bundle))
        result["verify_s_with_record"] = verify_s
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def net_horizon(model) -> float:
    from snn_deploy.deploy.stages.export import model_semantics

    return model_semantics(model).horizon


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_child(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_verify_yinyang(tmp: Path, rounds: int) -> dict:
    net, bundle = deployed(zoo.load("yinyang-ttfs"), tmp)
    test = data.load("yinyang:test")
    times = [timed(lambda: judge(compare(net, bundle, test.features, test.labels), net, bundle))[0]
             for _ in range(rounds)]
    return {"samples": len(test.labels), "seconds": {"median": float(np.median(times)), "min": min(times),
                                                     "max": max(times)}}


def bench_compile(repeats: int) -> dict:
    from snn_deploy.deploy.stages.discretize import discretize
    from snn_deploy.deploy.stages.place import place
    from snn_deploy.deploy.stages.quantize import quantize

    rows = []
    for synapses in SIZES:
        net = dense_layer_network(synapses)
        q_s = min(timed(lambda: quantize(discretize(net, DT), TARGET))[0] for _ in range(repeats))
        quantized = quantize(discretize(net, DT), TARGET)
        p_s = min(timed(lambda: place(quantized.network, TARGET, max_chips=64))[0] for _ in range(repeats))
        rows.append({"synapses": int(net.layers[0].feed_forward.weight.size), "quantize_s": q_s, "place_s": p_s,
                     "total_s": q_s + p_s})
    exponent = float(np.polyfit(np.log([r["synapses"] for r in rows]), np.log([r["total_s"] for r in rows]), 1)[0])
    return {"rows": rows, "growth_exponent": exponent}


# Written by hand from profiles (cProfile of bitsim.run and of verify on the Yin-Yang test set).
PROFILE_NOTES = """## Where the time goes, and what was done about it

Profiles of `bitsim.run` on the Yin-Yang zoo model (1000 samples) and of the whole verify:

| change | effect |
|---|---|
| integers carried exactly in float64 instead of int64 (every value < 2^36) | the LIF stages 4-8x faster: `trunc(x * (4096 - d) / 4096)` is the truncating shift |
| only the weight columns of inputs that spiked are added (activity < 2% of inputs per step) | Dense stage no longer a BLAS call on tiny matrices; bitsim 2.4 s -> 1.2 s |
| spikes recorded as events step by step, not as a (samples x steps x neurons) raster | drops two 60 MB `nonzero` scans; records stay compact for 10k samples |
| wrap/saturation masks built only when two reductions show an event | 4 full-array passes per population-step saved |
| the float discrete reference uses the same sparse spike product | verify 9.3 s -> 5.1 s |
| continuous reference: first window whose membrane maximum reaches threshold, one Lambert W per neuron; batches bounded by array size | 5x faster on 784-350-10; peak memory 11.7 GB -> bounded |
| 3-tau horizon for the zoo model (its last training-set output spike: 2.88 tau) | 510 -> 383 steps |
| sample batches on one thread per core when each gets 256+ samples (numpy releases the GIL) | both cores busy on large runs; small runs stay on one thread, where the per-step Python work would only take turns |

What remains in bitsim is about 18 numpy passes over a (samples x neurons) array per population
and step (decays, sums, the threshold test, the fire-once latch), each 50-100 us at 1000 x 120:
the arithmetic itself. Lava spends about 1.2 ms per step on even a tiny network (a forked process
per Lava process, message passing every step), independent of the batch: its per-sample cost is
the number of steps times that. bitsim's per-sample cost falls with the batch until the array
passes dominate; at 100 samples per run its per-step overhead is still large, which is why the
same-N ratio above is below the ratio of throughputs (bitsim at 1000 samples vs Lava).
Reaching 1000x would take compiled kernels (numba or C) or skipping neurons that have already
fired (for fire-once layers most of the run), which this numpy code does not do.
"""


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["# Benchmark results", "",
             f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
             f"numpy {m['numpy']}, by `tools/bench/bench.py{' --quick' if results['quick'] else ''}`. "
             "Ratios are per round, A and B alternating; median (min..max).", ""]
    if "lava" in results:
        r = results["lava"]
        s = r["speedup"]
        lines += ["## bitsim vs Lava (fixed_pt CPU models), Yin-Yang zoo model", "",
                  f"{r['samples']} test samples x {r['steps']} steps, Lava in one run for all samples; "
                  f"bit-exact on every round: {r['bit_exact']}.", "",
                  "| back end | samples/s |", "|---|---|",
                  f"| bitsim | {r['bitsim_samples_per_s']:.1f} |", f"| lava | {r['lava_samples_per_s']:.3f} |", "",
                  f"Speed-up of bitsim: **{s['median']:.0f}x** ({s['min']:.0f}..{s['max']:.0f}), "
                  f"{s['rounds']} rounds. Target: >= 1000x.", ""]
    if "float_torch" in results:
        r = results["float_torch"]
        s = r["bitsim_over_torch"]
        lines += ["## bitsim vs float discrete simulation in torch", "",
                  f"Same network and {r['batch']} samples x {r['steps']} steps on the CPU "
                  f"(torch with {r['torch_threads']} threads).", "",
                  f"bitsim time / torch time: **{s['median']:.2f}** ({s['min']:.2f}..{s['max']:.2f}). "
                  "Target: <= 2.", ""]
    if "verify_yinyang" in results:
        r = results["verify_yinyang"]
        lines += ["## Full verify of the Yin-Yang test set", "",
                  f"{r['samples']} samples, bitsim plus both float references and the energy estimate: "
                  f"**{r['seconds']['median']:.2f} s** ({r['seconds']['min']:.2f}..{r['seconds']['max']:.2f}). "
                  "Target: < 10 s.", ""]
    if "throughput" in results:
        lines += ["## bitsim throughput", "",
                  "| network | samples | steps | samples/s | synaptic events/s | peak memory |",
                  "|---|---|---|---|---|---|"]
        for name, r in results["throughput"].items():
            lines.append(f"| {name} | {r['samples']} | {r['steps']} | {r['samples_per_s']:.1f} | "
                         f"{r['synaptic_events_per_s']:.3g} | {r['peak_rss_mb']:.0f} MB |")
        lines.append("")
        big = results["throughput"].get("784-350-10 verify")
        if big:
            lines += [f"Verify over {big['samples']} samples of 784-350-10 (bitsim, then both references and "
                      f"the verdict): peak memory **{big['peak_rss_mb']:.0f} MB**. Target: < 2 GB.", ""]
    if "compile" in results:
        r = results["compile"]
        lines += ["## Compile time (quantize + place), one square dense layer", "",
                  "| synapses | quantize s | place s | total s |", "|---|---|---|---|"]
        lines += [f"| {x['synapses']:,} | {x['quantize_s']:.3f} | {x['place_s']:.3f} | {x['total_s']:.3f} |"
                  for x in r["rows"]]
        lines += ["", f"Growth: time ~ synapses^{r['growth_exponent']:.2f}. Target: 10^7 in < 30 s.", ""]
    if "lava" in results and "throughput" in results:
        lava_rate = results["lava"]["lava_samples_per_s"]
        best = results["throughput"]["yinyang-ttfs"]["samples_per_s"]
        lines += [f"bitsim's Yin-Yang throughput at 1000 samples per run ({best:.0f} samples/s) over Lava's rate "
                  f"({lava_rate:.2f} samples/s): **{best / lava_rate:.0f}x**.", ""]
    if "engines" in results:
        lines += engines_markdown(results["engines"])
        if set(results) & {"lava", "float_torch", "verify_yinyang", "throughput"} and not results.get("all_compiled"):
            lines += ["The bitsim figures of the sections above this one were measured before bitsim had its compiled "
                      "engine (they ran the numpy engine); `bench.py` without `--only` measures them again on the "
                      "default engine.", ""]
    return "\n".join(lines) + "\n" + PROFILE_NOTES


def main() -> None:
    parser = argparse.ArgumentParser(description="snn-deploy benchmarks (see the module docstring)")
    parser.add_argument("--quick", action="store_true", help="fewer samples and rounds")
    parser.add_argument("--only", nargs="*", choices=["lava", "float_torch", "verify_yinyang", "throughput", "compile",
                                                      "engines"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(throughput_worker(json.loads(args.worker))))
        return
    import tempfile

    chosen = set(args.only or ["lava", "float_torch", "verify_yinyang", "throughput", "compile", "engines"])
    previous = HERE / "results.json"
    # --only refreshes some parts and keeps the others from the last run.
    results = json.loads(previous.read_text()) if args.only and previous.is_file() else {}
    results.update({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick})
    # Whether the sections other than "engines" ran on the compiled engine (the default since it exists).
    results["all_compiled"] = not args.only or results.get("all_compiled", False)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "lava" in chosen:
            print("bitsim vs lava ...", flush=True)
            results["lava"] = bench_lava(tmp, samples=20 if args.quick else 100, rounds=2 if args.quick else 3)
        if "float_torch" in chosen:
            print("bitsim vs float torch ...", flush=True)
            results["float_torch"] = bench_float_torch(tmp, batch=256, rounds=3 if args.quick else 7)
        if "verify_yinyang" in chosen:
            print("full Yin-Yang verify ...", flush=True)
            results["verify_yinyang"] = bench_verify_yinyang(tmp, rounds=1 if args.quick else 3)
        if "throughput" in chosen:
            configs = {"yinyang-ttfs": {"model": "yinyang-ttfs", "samples": 1000, "steps": 383},
                       "digits-ttfs": {"model": "digits-ttfs", "samples": 1000, "steps": 383},
                       "784-350-10 @ 100 steps": {"model": "", "sizes": [784, 350, 10], "samples": 1000, "steps": 100},
                       "784-350-10 @ 300 steps": {"model": "", "sizes": [784, 350, 10], "samples": 1000, "steps": 300},
                       "400-400-10 @ 300 steps": {"model": "", "sizes": [400, 400, 10], "samples": 1000, "steps": 300},
                       "784-350-10 verify": {"model": "", "sizes": [784, 350, 10], "steps": 100, "verify": True,
                                             "samples": 1000 if args.quick else 10000, "batch": 512}}
            results["throughput"] = {}
            for name, spec in configs.items():
                print(f"throughput {name} ...", flush=True)
                results["throughput"][name] = in_child({**spec, "tmp": tmp_name})
        if "engines" in chosen:
            print("bitsim engines ...", flush=True)
            results["engines"] = bench_engines(tmp, deployed, random_ttfs, net_horizon, rounds=3 if args.quick else 7)
        if "compile" in chosen:
            print("compile time ...", flush=True)
            results["compile"] = bench_compile(repeats=1 if args.quick else 3)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
