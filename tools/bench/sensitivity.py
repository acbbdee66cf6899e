"""How fragile the float decisions of the NIR paper's graphs are, and whether the chip's voltage saturation
decides anything. Run by hand:

    .venv/bin/python tools/bench/sensitivity.py [--only braille_bias_zero ...]   # writes SENSITIVITY.md here

Per graph and input rate (random spike trains, seed 0, as tools/bench/imported_graphs.py measures), on the
float discrete reference alone (no chip run):

- the margin of each float decision: the output's top spike count minus the runner-up's;
- the fraction of decisions unchanged when every synapse's gain is multiplied by 1 + sigma z (z standard
  normal, seed 0): the noise floor a deployment with weight errors of that size cannot beat. The chip's 8-bit
  weights err by up to half a mantissa step of each row's largest weight (the compile report's w err);
- the fraction unchanged when every neuron's weights (all its sources, an Affine bias's constant source included)
  are rounded to nearest on a signed b-bit grid spanning the row's largest |weight|, the rest of the float model
  exact: the weight precision these decisions need, free of every other chip effect (b = 8 is the grid of the
  chip's 8-bit mantissas with the neuron's own scale);
- the fraction unchanged when the float membrane is floored where the chip's saturates (-(state limit) / S per
  neuron, S the compiled scale of the default 8-bit bundle): whether saturation alone changes decisions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.stages.verify import decide
from snn_deploy.targets import schedule

MEASURED = ("braille_bias_zero", "braille_subtract", "cnn_sinabs")
RATES = {"cnn_sinabs": (0.01, 0.05)}
SIGMAS = (1e-4, 1e-3, 2e-3, 4e-3)
WEIGHT_BITS = (8, 9, 10, 11, 12, 13, 14, 16)
TARGET_AGREEMENT = 0.97  # issue 18's bar for plain 8-bit deployments


def with_gain_noise(discrete, sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return with_gains(discrete, {(d.name, source): gain * (1 + sigma * rng.standard_normal(gain.shape))
                                 for d in discrete.populations for source, gain in d.inputs})


def row_grids(discrete, bits: int) -> dict[str, np.ndarray]:
    """Per population with inputs, the step of a signed ``bits``-bit grid spanning each neuron's largest |weight|
    (size, 1)."""
    levels = (1 << (bits - 1)) - 1
    grids = {}
    for d in discrete.populations:
        if d.inputs:
            row_max = np.abs(np.concatenate([gain for _, gain in d.inputs], axis=1)).max(axis=1, keepdims=True)
            grids[d.name] = np.where(row_max > 0, row_max / levels, 1.0)
    return grids


def with_gains(discrete, gains: dict[tuple[str, str], np.ndarray]):
    """``discrete`` with the gains of each (population, source) listed replaced."""
    return dataclasses.replace(discrete, populations=tuple(
        dataclasses.replace(d, inputs=tuple((source, gains.get((d.name, source), gain)) for source, gain in d.inputs))
        for d in discrete.populations))


def rounded_mantissas(discrete, grids: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Per (population, source), its gains rounded to nearest on the population's ``row_grids``, in grid steps."""
    return {(d.name, source): np.rint(gain / grids[d.name]) for d in discrete.populations for source, gain in d.inputs}


def on_grids(discrete, grids: dict[str, np.ndarray], mantissas: dict[tuple[str, str], np.ndarray]):
    """``discrete`` with the gains these mantissas of ``grids`` make."""
    return with_gains(discrete, {key: grids[key[0]] * m for key, m in mantissas.items()})


def with_rounded_weights(discrete, bits: int):
    """Every neuron's weights rounded to nearest on a signed ``bits``-bit grid spanning its largest |weight|."""
    grids = row_grids(discrete, bits)
    return on_grids(discrete, grids, rounded_mantissas(discrete, grids))


def floored_arithmetic(floors: dict[str, np.ndarray]) -> schedule.Arithmetic:
    """The float reference with each listed population's v floored at its value (the chip's saturation)."""
    step = reference.FLOAT_ARITHMETIC.neuron_step

    def floored_step(pop, state, activation):
        result = step(pop, state, activation)
        if pop.name not in floors:
            return result
        s = result.state
        return dataclasses.replace(result, state=reference.FloatState(s.u, np.maximum(s.v, floors[pop.name]), s.fired))

    return dataclasses.replace(reference.FLOAT_ARITHMETIC, neuron_step=floored_step)


def measure(name: str, rate: float) -> dict:
    path, semantics, dt, _, samples = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    bundle = compile_network(net, TARGET, dt=dt, calibrate=None)
    discrete = discretize(net, dt)
    steps, out, decoding = bundle.timing.num_steps, net.output, bundle.decoding
    inputs = random_spike_trains(net.input_size, samples, steps, rate, seed=0)
    spikes = reference.simulate(discrete, inputs, steps)
    decisions = decide(spikes[out], decoding)
    counts = spikes[out].counts()
    top = np.sort(counts, axis=1)
    margin = top[:, -1] - top[:, -2]

    def unchanged(changed) -> float:
        return float(np.mean(decide(reference.simulate(changed, inputs, steps)[out], decoding) == decisions))

    noise = {sigma: unchanged(with_gain_noise(discrete, sigma)) for sigma in SIGMAS}
    rounding = {bits: unchanged(with_rounded_weights(discrete, bits)) for bits in WEIGHT_BITS}
    limit = bundle.widths.state_limit - 1
    floors = {}
    for disc in discrete.populations:
        if disc.name in bundle.report.quantization:
            pop = bundle.network.population(disc.name)
            floors[disc.name] = -limit * disc.threshold / (pop.vth * (1 << bundle.widths.threshold_shift))
    floored, _, _ = schedule.run(reference.chip_network(discrete), floored_arithmetic(floors), inputs, steps)
    return {"graph": name, "rate": rate, "samples": samples,
            "mean_output_spikes": float(counts.sum(axis=1).mean()),
            "margin_median": float(np.median(margin)), "margin_at_most_2": float(np.mean(margin <= 2)),
            "unchanged_by_gain_noise": noise,
            "unchanged_by_weight_bits": rounding,
            "fewest_weight_bits_for_target": next((b for b in WEIGHT_BITS if rounding[b] >= TARGET_AGREEMENT), None),
            "unchanged_by_saturation": float(np.mean(decide(floored[out], decoding) == decisions)),
            "weight_error_max": {k: q.weight_error_max for k, q in bundle.report.quantization.items()}}


def markdown(rows: list[dict]) -> str:
    lines = ["# How fragile the float decisions are (NIR paper graphs, random spike trains, seed 0)", "",
             "Written by `tools/bench/sensitivity.py` (float discrete reference only; see its docstring). "
             "Gain noise: every synapse's gain times 1 + sigma z.", "",
             "| graph | rate | samples | mean output spikes | median margin (spikes) | margin <= 2 | "
             + " | ".join(f"unchanged, sigma {s:g}" for s in SIGMAS)
             + " | unchanged with the chip's v saturation | 8-bit w err max per layer |",
             "|---|---|---|---|---|---|" + "---|" * len(SIGMAS) + "---|---|"]
    bits = ["", "## The weight precision the decisions need", "",
            "Each neuron's weights rounded to nearest on a signed b-bit grid spanning its largest |weight|, everything "
            "else the exact float model (b = 8: the chip's 8-bit mantissas at the neuron's own scale). Decisions "
            f"unchanged, and the fewest bits at which at least {TARGET_AGREEMENT:.0%} are.", "",
            "| graph | rate | " + " | ".join(f"{b} bit" for b in WEIGHT_BITS) + f" | bits for {TARGET_AGREEMENT:.0%} |",
            "|---|---|" + "---|" * len(WEIGHT_BITS) + "---|"]
    for r in rows:
        noise = " | ".join(f"{100 * r['unchanged_by_gain_noise'][s]:.1f}%" for s in SIGMAS)
        errors = ", ".join(f"{k} {v:.2%}" for k, v in r["weight_error_max"].items())
        lines.append(f"| {r['graph']} | {r['rate']} | {r['samples']} | {r['mean_output_spikes']:.0f} | "
                     f"{r['margin_median']:g} | {100 * r['margin_at_most_2']:.1f}% | {noise} | "
                     f"{100 * r['unchanged_by_saturation']:.1f}% | {errors} |")
        fewest = r["fewest_weight_bits_for_target"]
        bits.append(f"| {r['graph']} | {r['rate']} | "
                    + " | ".join(f"{100 * r['unchanged_by_weight_bits'][b]:.1f}%" for b in WEIGHT_BITS)
                    + f" | {fewest if fewest else f'> {WEIGHT_BITS[-1]}'} |")
    return "\n".join(lines + bits) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=MEASURED, default=list(MEASURED))
    args = parser.parse_args()
    rows = []
    for name in args.only:
        for rate in RATES.get(name, GRAPHS[name][3]):
            rows.append(measure(name, rate))
            print(json.dumps(rows[-1]), flush=True)
    (HERE / "sensitivity.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    (HERE / "SENSITIVITY.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
