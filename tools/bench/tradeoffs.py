"""The zoo's TTFS and multi-spike models side by side on the chip (loihi2, bitsim): accuracy, decision latency,
spikes and energy per inference, and accuracy under input noise. Run by hand:

    .venv/bin/python tools/bench/tradeoffs.py

Each model is exported, compiled with default options and verified on its whole test split with
``--robustness jitter=1;drop=0.1``. The table goes into RESULTS.md's section "Zoo tradeoffs on the chip"
beside this file (and, by hand, into the README).
"""

from __future__ import annotations

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

SECTION = "## Zoo tradeoffs on the chip"
ROBUSTNESS = "jitter=1;drop=0.1"


def measure(name: str, folder: Path) -> dict:
    graph, bundle = folder / f"{name}.nir", folder / f"{name}.bundle"
    assert main(["export", name, "-o", str(graph), "-q"]) == 0
    assert main(["compile", str(graph), "--target", "loihi2", "-o", str(bundle), "-q"]) == 0
    dataset = zoo.load(name).dataset
    start = time.perf_counter()
    verdict = verify(graph, bundle, data=f"{dataset}:test", robustness=ROBUSTNESS)
    seconds = time.perf_counter() - start
    m = verdict.metrics
    jitter, drop = m.robustness
    return {"model": name, "samples": m.samples, "steps": m.num_steps, "float": m.accuracy.float,
            "chip": m.accuracy.chip, "agreement": m.agreement,
            "latency_mean": m.decision_latency_steps["chip"].mean, "latency_p95": m.decision_latency_steps["chip"].p95,
            "latency_us": m.decision_latency_steps["chip"].mean * m.energy.latency.step_s.nominal * 1e6,
            "spikes": m.energy.total.spikes, "energy_uj": m.energy.total.energy_j.total.nominal * 1e6,
            "jitter_chip": jitter.accuracy_chip, "drop_chip": drop.accuracy_chip,
            "jitter_float": jitter.accuracy_float, "drop_float": drop.accuracy_float, "seconds": seconds}


def table(rows: list[dict]) -> str:
    lines = ["| model | float | chip | agreement | decision latency, steps mean / p95 (µs mean) | spikes per "
             "inference | energy per inference | chip (float) at jitter 1 step | chip (float) at 10% deletion |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['float']:.2%} | {r['chip']:.2%} | {r['agreement']:.2%} | "
                     f"{r['latency_mean']:.1f} / {r['latency_p95']:.0f} ({r['latency_us']:.1f}) | {r['spikes']:.1f} | "
                     f"{r['energy_uj']:.2f} µJ | {r['jitter_chip']:.2%} ({r['jitter_float']:.2%}) | "
                     f"{r['drop_chip']:.2%} ({r['drop_float']:.2%}) |")
    return "\n".join(lines)


def main_() -> None:
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(name, Path(folder)) for name in zoo.names()]
    text = table(rows)
    print(text)
    measured = f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end"
    replace_section(SECTION, SECTION + "\n\n" + (
        f"Measured {measured}. Each zoo model exported, compiled for loihi2 with default options (calibration on "
        f"the training split included) and verified on bitsim on its whole "
        f"test split, with `--robustness \"{ROBUSTNESS}\"` (seed 0); by `tools/bench/tradeoffs.py`. Latency: the "
        "step from which the chip's decision is final (nominal step time of the energy model in µs). Energy: "
        "nominal, per inference, static power over the whole run included.\n\n" + text + "\n"))


if __name__ == "__main__":
    main_()
