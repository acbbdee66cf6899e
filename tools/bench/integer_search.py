"""Can any 8-bit weights decide like the float Braille graphs on unseen inputs? A search that needs no gradient.
Run by hand:

    .venv/bin/python tools/bench/integer_search.py [--only braille_subtract] [--proposals 3000]
    # writes INTEGER_SEARCH.md and integer_search.json here (a row measured again replaces its old one)

finetune's straight-through gradient finds no better 8-bit weights on these graphs (FINETUNE.md): the 8-bit loss is
a staircase the surrogate gradient cannot see. This bench asks the question without a gradient. It starts
from the 8-bit weights of SENSITIVITY.md's second table: each neuron's weights rounded to nearest on a signed
8-bit grid spanning its largest |weight|, the rest the exact float model. It then moves one mantissa at a time by
one step, drawn at random (seed 0), and keeps a move only when it lowers, on the tuning trains (random spike
trains of the rate, seed 1), the fraction of decisions unlike the float model's plus the output counts' relative
L1 error. Held-out trains (seed 0, as every other table here) measure whether what the tuning trains gain carries
over to inputs the search never saw.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from imported_graphs import GRAPHS, HERE, REFERENCE, TARGET
from sensitivity import on_grids, rounded_mantissas, row_grids
from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.stages.verify import decide

# (graph, rate, tuning trains): both Braille graphs at both rates on 200 trains, compile's calibration default, and
# the cell that gains most on its tuning data on five times as many.
CELLS = (("braille_bias_zero", 0.01, 200), ("braille_bias_zero", 0.05, 200), ("braille_subtract", 0.01, 200),
         ("braille_subtract", 0.05, 200), ("braille_subtract", 0.05, 1000))
WEIGHT_BITS = 8
CHECKPOINTS = 500  # proposals between two held-out measurements


def measure(name: str, rate: float, tuning_samples: int, proposals: int) -> dict:
    path, semantics, dt, _, test_samples = GRAPHS[name]
    net = load_graph(REFERENCE / path, semantics)
    bundle = compile_network(net, TARGET, dt=dt, calibrate=None)
    steps, out, decoding = bundle.timing.num_steps, net.output, bundle.decoding
    discrete = discretize(net, dt)
    tuning = random_spike_trains(net.input_size, tuning_samples, steps, rate, seed=1)
    held_out = random_spike_trains(net.input_size, test_samples, steps, rate, seed=0)

    def outputs(network, inputs):
        spikes = reference.simulate(network, inputs, steps)[out]
        return spikes.counts(), decide(spikes, decoding)

    float_tuning, float_held_out = outputs(discrete, tuning), outputs(discrete, held_out)
    grids = row_grids(discrete, WEIGHT_BITS)
    mantissas = rounded_mantissas(discrete, grids)
    keys = list(mantissas)
    sizes = np.array([mantissas[k].size for k in keys], float)
    block_odds = sizes / sizes.sum()  # every weight equally likely to be drawn
    levels = (1 << (WEIGHT_BITS - 1)) - 1

    def network():
        return on_grids(discrete, grids, mantissas)

    def tuning_loss(net_) -> tuple[float, float]:
        counts, decisions = outputs(net_, tuning)
        unlike = float(np.mean(decisions != float_tuning[1]))
        return unlike + float(np.abs(counts - float_tuning[0]).sum() / max(float_tuning[0].sum(), 1)), 1 - unlike

    def held_out_agreement(net_) -> float:
        return float(np.mean(outputs(net_, held_out)[1] == float_held_out[1]))

    rng = np.random.default_rng(0)
    current = network()
    loss, tuning_agreement = tuning_loss(current)
    curve = [{"proposals": 0, "accepted": 0, "tuning": tuning_agreement, "held_out": held_out_agreement(current)}]
    accepted, started = 0, time.perf_counter()
    for proposal in range(1, proposals + 1):
        key = keys[rng.choice(len(keys), p=block_odds)]
        block = mantissas[key]
        index = np.unravel_index(rng.integers(block.size), block.shape)
        was, move = block[index], rng.choice((-1, 1))
        if abs(was + move) <= levels:
            block[index] = was + move
            candidate = network()
            candidate_loss, candidate_agreement = tuning_loss(candidate)
            if candidate_loss < loss:
                current, loss, tuning_agreement, accepted = candidate, candidate_loss, candidate_agreement, accepted + 1
            else:
                block[index] = was
        if proposal % CHECKPOINTS == 0 or proposal == proposals:
            curve.append({"proposals": proposal, "accepted": accepted, "tuning": tuning_agreement,
                          "held_out": held_out_agreement(current)})
            print(f"  {name} {rate} N={tuning_samples}: {curve[-1]}", flush=True)
    return {"graph": name, "rate": rate, "weight_bits": WEIGHT_BITS, "tuning_samples": tuning_samples,
            "test_samples": test_samples, "weights": int(sizes.sum()), "curve": curve,
            "seconds": round(time.perf_counter() - started, 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["# 8-bit weights found by integer search, on unseen inputs (Braille graphs, float model)", "",
             "Written by `tools/bench/integer_search.py` (see its docstring). 8-bit mantissas on each neuron's own "
             "grid, moved one step at a time and kept when they lower the tuning trains' disagreement plus count "
             "error (seed 1); decisions equal to the float model's on the tuning trains and on held-out trains "
             "(seed 0). The start is SENSITIVITY.md's 8-bit column.", "",
             "| graph | rate | tuning samples | weights | proposals (accepted) | tuning: start -> end | "
             "held out: start -> end | held out along the search | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        first, last = r["curve"][0], r["curve"][-1]
        along = " ".join(f"{100 * c['held_out']:.1f}" for c in r["curve"])
        lines.append(f"| {r['graph']} | {r['rate']} | {r['tuning_samples']} | {r['weights']} | "
                     f"{last['proposals']} ({last['accepted']}) | {100 * first['tuning']:.1f}% -> "
                     f"{100 * last['tuning']:.1f}% | {100 * first['held_out']:.1f}% -> {100 * last['held_out']:.1f}% | "
                     f"{along} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted({c[0] for c in CELLS}), default=[c[0] for c in CELLS])
    parser.add_argument("--proposals", type=int, default=3000)
    args = parser.parse_args()
    results = HERE / "integer_search.json"
    rows = {(r["graph"], r["rate"], r["tuning_samples"]): r for r in
            (json.loads(results.read_text()) if results.exists() else [])}
    for cell in CELLS:
        if cell[0] not in args.only:
            continue
        rows[cell] = measure(*cell, args.proposals)
        ordered = [rows[c] for c in CELLS if c in rows]  # written after every cell: a long run keeps what it has
        results.write_text(json.dumps(ordered, indent=1) + "\n")
        (HERE / "INTEGER_SEARCH.md").write_text(markdown(ordered))


if __name__ == "__main__":
    main()
