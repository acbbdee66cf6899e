"""bitsim's compiled engine against snnTorch and norse on the same network: ``bench.py --only frameworks``.

Each network is the chip network's dynamics as the float simulators step them: per population the float
discrete form the compiler quantizes (``stages.discretize``: u' = a_u u + W s, v' = a_v v + u' + c, a spike where
v' > theta, reset to zero), so the same decays, thresholds and weights, in float32 (what these simulators run),
over the bundle's steps, on the same input spike raster, batch 1000:

- snnTorch 1.0.0: ``Linear(bias=False)`` with weight g, then ``Synaptic(alpha=a_u, beta=a_v, threshold=theta,
  reset_mechanism="zero")``, whose step is syn' = alpha syn + x, mem' = beta mem + syn' (its
  ``_base_state_function``), fire where mem' > threshold;
- norse 1.1.0: ``Linear`` with weight g / (1 - a_v), then ``LIFCell(LIFParameters(tau_syn_inv=1 - a_u,
  tau_mem_inv=1 - a_v, v_th=theta, v_reset=0), dt=1)``, whose step (``lif_feed_forward_step``) is i' = i + x,
  v' = v + (1 - a_v)(i' - v), i'' = a_u i'; that is v' = a_v v + u' with u' = (1 - a_v) i'.

Neither has a fire-once latch (the chip's TTFS layers have one): their neurons may fire again, which costs a
dense simulator nothing more. They step a feed-forward chain within one step where the chip delays each layer by
one; the step count is the bundle's. Only the simulation is timed (``torch.no_grad``, the input tensor built
before), with torch's default threads (both cores); the compiled engine's time is a whole ``bitsim.run`` (its
default threads, both cores), records included. A, B and C alternate round by round, in rotating order.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from engines import load_average, mnist_sized, yinyang

from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.targets import bitsim

SIMULATORS = ("snntorch", "norse")


def chain(net, bundle) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(gain, a_u, a_v, threshold) per layer of a feed-forward chain, from the float discrete form."""
    discrete = discretize(net, bundle.timing.dt)
    layers, source = [], discrete.input_name
    for pop in discrete.populations:
        (feeds, gain), = pop.inputs
        if feeds != source or np.any(pop.drive != 0) or pop.reset != "zero":
            raise ValueError(f"{pop.name}: not a chain of unbiased, reset-to-zero layers")
        layers.append((gain, pop.alpha_u, pop.alpha_v, pop.threshold))
        source = pop.name
    return layers


def snntorch_runner(layers, raster):
    import snntorch
    import torch

    linears = [torch.nn.Linear(g.shape[1], g.shape[0], bias=False) for g, *_ in layers]
    neurons = []
    for linear, (gain, alpha, beta, theta) in zip(linears, layers):
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(gain))
        neurons.append(snntorch.Synaptic(alpha=torch.from_numpy(alpha).float(), beta=torch.from_numpy(beta).float(),
                                         threshold=torch.from_numpy(theta).float(), reset_mechanism="zero"))

    def run():
        with torch.no_grad():
            states = [(neuron.init_synaptic()) for neuron in neurons]
            out = 0
            for x in raster:
                for k, (linear, neuron) in enumerate(zip(linears, neurons)):
                    x, syn, mem = neuron(linear(x), *states[k])
                    states[k] = (syn, mem)
                out = out + x
            return out
    return run


def norse_runner(layers, raster):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # norse still calls torch.jit.script
        import norse.torch as norse

    linears, cells = [], []
    for gain, alpha_u, alpha_v, theta in layers:
        linear = torch.nn.Linear(gain.shape[1], gain.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(gain / (1 - alpha_v)[:, None]))
        linears.append(linear)
        params = norse.LIFParameters(tau_syn_inv=torch.from_numpy(1 - alpha_u).float(),
                                     tau_mem_inv=torch.from_numpy(1 - alpha_v).float(),
                                     v_leak=torch.tensor(0.0), v_th=torch.from_numpy(theta).float(),
                                     v_reset=torch.tensor(0.0))
        cells.append(norse.LIFCell(p=params, dt=1.0))

    def run():
        with torch.no_grad():
            states = [None] * len(cells)
            out = 0
            for x in raster:
                for k, (linear, cell) in enumerate(zip(linears, cells)):
                    x, states[k] = cell(linear(x), states[k])
                out = out + x
            return out
    return run


def compare(net, bundle, inputs, rounds: int) -> dict:
    import torch

    layers = [tuple(np.asarray(a, np.float32) for a in layer) for layer in chain(net, bundle)]
    raster = torch.from_numpy(np.ascontiguousarray(inputs.raster().transpose(1, 0, 2))).float()  # (steps, batch, in)
    runners = {"compiled": lambda: bitsim.run(bundle, inputs), "snntorch": snntorch_runner(layers, raster),
               "norse": norse_runner(layers, raster)}
    for run in runners.values():
        run()  # warm: kernels loaded, torch's first-call paths taken
    order, rows = list(runners), []
    for index in range(rounds):
        row = {"load": load_average()}
        for name in order[index % 3:] + order[:index % 3]:
            start = time.perf_counter()
            runners[name]()
            row[name] = time.perf_counter() - start
        rows.append(row)
    out = {"samples": inputs.num_samples, "steps": bundle.timing.num_steps, "torch_threads": torch.get_num_threads(),
           "sizes": [bundle.network.input.size] + [p.size for p in bundle.network.populations], "rounds": rows}
    for name in SIMULATORS:
        ratios = [r[name] / r["compiled"] for r in rows]
        out[name] = {"median_s": float(np.median([r[name] for r in rows])),
                     "speedup": {"median": float(np.median(ratios)), "min": min(ratios), "max": max(ratios)}}
    out["compiled_median_s"] = float(np.median([r["compiled"] for r in rows]))
    return out


def bench_frameworks(tmp: Path, deployed, random_ttfs, net_horizon, rounds: int) -> dict:
    result = {}
    net, bundle, inputs = yinyang(deployed, tmp)
    print("  Yin-Yang ...", flush=True)
    result["Yin-Yang zoo model"] = compare(net, bundle, inputs, rounds)
    for sizes in ((784, 350, 10), (400, 400, 10)):
        print(f"  {sizes} ...", flush=True)
        net, bundle, inputs = mnist_sized(deployed, random_ttfs, net_horizon, tmp, sizes=sizes)
        result["-".join(map(str, sizes)) + ", 2% input"] = compare(net, bundle, inputs, rounds)
    return result


def markdown(r: dict, measured: str) -> str:
    heading = "## Compiled engine vs snnTorch and norse, same network, steps, batch and input spikes"
    lines = [heading, "", measured, "", __doc__.split("\n\n", 1)[1].strip(), "",
             "| network | samples x steps | compiled s | snnTorch s | norse s | snnTorch / compiled | norse / compiled "
             "| target | load |", "|---|---|---|---|---|---|---|---|---|"]
    for name, x in r.items():
        loads = [row["load"] for row in x["rounds"]]
        lines.append(
            f"| {name} ({'-'.join(map(str, x['sizes']))}) | {x['samples']} x {x['steps']} | "
            f"{x['compiled_median_s']:.3f} | {x['snntorch']['median_s']:.3f} | {x['norse']['median_s']:.3f} | "
            + " | ".join(f"**{s['median']:.1f}x** ({s['min']:.1f}..{s['max']:.1f})"
                         for s in (x["snntorch"]["speedup"], x["norse"]["speedup"]))
            + f" | >= 2x | {min(loads):.1f}..{max(loads):.1f} |")
    threads = {x["torch_threads"] for x in r.values()}
    lines += ["", f"torch ran with {', '.join(map(str, sorted(threads)))} threads; {len(x['rounds'])} rounds each."]
    return "\n".join(lines)
