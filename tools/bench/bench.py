"""snn-deploy benchmarks. Run by hand, never as part of the test suite:

    .venv/bin/python tools/bench/bench.py            # everything, writes results.json and its sections of RESULTS.md
    .venv/bin/python tools/bench/bench.py --quick    # fewer samples and rounds, for a smoke run
    .venv/bin/python tools/bench/bench.py --only lava frameworks   # some of them (the others' sections stay)

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
from engines import load_average  # noqa: E402
from engines import markdown as engines_markdown  # noqa: E402
from frameworks import bench_frameworks  # noqa: E402
from frameworks import markdown as frameworks_markdown  # noqa: E402
from results_md import replace_sections  # noqa: E402
from scaling import bench_scaling  # noqa: E402
from scaling import markdown as scaling_markdown  # noqa: E402

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
    bitsim.run(bundle, inputs)  # the compiled engine's kernels are loaded before timing
    for _ in range(rounds):
        load = load_average()
        bitsim_s, expected = timed(lambda: bitsim.run(bundle, inputs))
        lava_s, actual = timed(lambda: lava.run(bundle, inputs))
        exact = all(np.array_equal(expected.spikes[k].events, actual.spikes[k].events) for k in expected.spikes)
        ratios.append(lava_s / bitsim_s)
        rows.append({"bitsim_s": bitsim_s, "lava_s": lava_s, "bit_exact": exact, "load": load})
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
    judge(compare(net, bundle, test.features[:10], test.labels[:10]), net, bundle)  # kernels loaded, imports done
    rows = []
    for _ in range(rounds):
        load = load_average()
        rows.append({"seconds": timed(lambda: judge(compare(net, bundle, test.features, test.labels), net,
                                                    bundle))[0], "load": load})
    times = [r["seconds"] for r in rows]
    return {"samples": len(test.labels), "rounds": rows,
            "seconds": {"median": float(np.median(times)), "min": min(times), "max": max(times)}}


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


def _measured(results: dict) -> str:
    m = results["machine"]
    return (f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, numpy {m['numpy']}, "
            f"by `tools/bench/bench.py{' --quick' if results['quick'] else ''}` on bitsim's "
            f"{results.get('engine', 'reference')} engine.")


def sections(results: dict, chosen: set[str]) -> dict[str, str]:
    """The RESULTS.md sections (heading -> text) of the benchmarks in ``chosen``; each replaces its own section only
    (``results_md``)."""
    out = {}
    measured = _measured(results)
    if "lava" in chosen:
        r = results["lava"]
        s = r["speedup"]
        heading = "## bitsim vs Lava (fixed_pt CPU models), Yin-Yang zoo model"
        lines = [heading, "", measured, "",
                 f"{r['samples']} test samples x {r['steps']} steps, Lava in one run for all samples; "
                 f"bit-exact on every round: {r['bit_exact']}; load average {_loads(r['rounds'])}.", "",
                 "| back end | samples/s |", "|---|---|",
                 f"| bitsim | {r['bitsim_samples_per_s']:.1f} |", f"| lava | {r['lava_samples_per_s']:.3f} |", "",
                 f"Speed-up of bitsim: **{s['median']:.0f}x** ({s['min']:.0f}..{s['max']:.0f}), "
                 f"{s['rounds']} rounds. Target: >= 1500x."]
        out[heading] = "\n".join(lines)
    if "float_torch" in chosen:
        r = results["float_torch"]
        s = r["bitsim_over_torch"]
        heading = "## bitsim vs float discrete simulation in torch"
        out[heading] = "\n".join([
            heading, "", measured, "",
            f"Same network and {r['batch']} samples x {r['steps']} steps on the CPU "
            f"(torch with {r['torch_threads']} threads).", "",
            f"bitsim time / torch time: **{s['median']:.2f}** ({s['min']:.2f}..{s['max']:.2f}). Target: <= 2."])
    if "verify_yinyang" in chosen:
        r = results["verify_yinyang"]
        heading = "## Full verify of the Yin-Yang test set"
        out[heading] = "\n".join([
            heading, "", measured, "",
            f"{r['samples']} samples, bitsim plus both float references and the energy estimate: "
            f"**{r['seconds']['median']:.2f} s** ({r['seconds']['min']:.2f}..{r['seconds']['max']:.2f}), "
            f"{len(r['rounds'])} rounds, load average {_loads(r['rounds'])}. Target: < 0.3 s."])
    if "throughput" in chosen:
        heading = "## bitsim throughput"
        lines = [heading, "", measured, "",
                 "| network | samples | steps | samples/s | synaptic events/s | peak memory |", "|---|---|---|---|---|---|"]
        for name, r in results["throughput"].items():
            lines.append(f"| {name} | {r['samples']} | {r['steps']} | {r['samples_per_s']:.1f} | "
                         f"{r['synaptic_events_per_s']:.3g} | {r['peak_rss_mb']:.0f} MB |")
        big = results["throughput"].get("784-350-10 verify")
        if big:
            lines += ["", f"Verify over {big['samples']} samples of 784-350-10 (bitsim, then both references and "
                          f"the verdict): peak memory **{big['peak_rss_mb']:.0f} MB**. Target: < 2 GB."]
        if "lava" in results:
            lava_rate = results["lava"]["lava_samples_per_s"]
            best = results["throughput"]["yinyang-ttfs"]["samples_per_s"]
            lines += ["", f"bitsim's Yin-Yang throughput at 1000 samples per run ({best:.0f} samples/s) over Lava's "
                          f"rate ({lava_rate:.2f} samples/s): **{best / lava_rate:.0f}x**."]
        out[heading] = "\n".join(lines)
    if "compile" in chosen:
        r = results["compile"]
        heading = "## Compile time (quantize + place), one square dense layer"
        lines = [heading, "", measured, "", "| synapses | quantize s | place s | total s |", "|---|---|---|---|"]
        lines += [f"| {x['synapses']:,} | {x['quantize_s']:.3f} | {x['place_s']:.3f} | {x['total_s']:.3f} |"
                  for x in r["rows"]]
        lines += ["", f"Growth: time ~ synapses^{r['growth_exponent']:.2f}. Target: 10^7 in < 30 s."]
        out[heading] = "\n".join(lines)
    texts = []
    if "engines" in chosen:
        texts.append("\n".join(engines_markdown(results["engines"])))
    if "frameworks" in chosen:
        texts.append(frameworks_markdown(results["frameworks"], measured))
    if "scaling" in chosen:
        texts.append(scaling_markdown(results["scaling"], measured))
    out.update({text.splitlines()[0]: text for text in texts})
    return out


def _loads(rows: list[dict]) -> str:
    loads = [r["load"] for r in rows if "load" in r]
    return f"{min(loads):.1f}..{max(loads):.1f}" if loads else "not recorded"


BENCHMARKS = ("lava", "float_torch", "verify_yinyang", "throughput", "compile", "engines", "frameworks", "scaling")


def main() -> None:
    parser = argparse.ArgumentParser(description="snn-deploy benchmarks (see the module docstring)")
    parser.add_argument("--quick", action="store_true", help="fewer samples and rounds")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(throughput_worker(json.loads(args.worker))))
        return
    import tempfile

    chosen = set(args.only or BENCHMARKS)
    previous = HERE / "results.json"
    # --only refreshes some parts and keeps the others from the last run (in results.json; RESULTS.md gets the
    # chosen parts' sections only).
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    results.update({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick,
                    "engine": bitsim.default_engine()})
    results.pop("all_compiled", None)
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
            results["verify_yinyang"] = bench_verify_yinyang(tmp, rounds=2 if args.quick else 7)
        if "frameworks" in chosen:
            print("compiled vs snnTorch and norse ...", flush=True)
            results["frameworks"] = bench_frameworks(tmp, deployed, random_ttfs, net_horizon,
                                                     rounds=2 if args.quick else 5)
        if "scaling" in chosen:
            print("scaling ...", flush=True)
            results["scaling"] = bench_scaling(tmp, deployed, random_ttfs, net_horizon, quick=args.quick)
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
    written = sections(results, chosen)
    replace_sections(written)
    print("\n\n".join(written.values()))


if __name__ == "__main__":
    main()
