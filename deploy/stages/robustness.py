"""Robustness: the same samples under seeded input noise, chip and float model side by side.

Two kinds (``artifacts.robustness.PERTURBATIONS``), as "jitter=0.5,1,2;drop=0.05,0.1;seed=0" (seed 0 unless
given):
  jitter  every input spike moves by Gaussian noise of the level's standard deviation (in chip steps);
  drop    every input spike is deleted with the level's probability.
Encoded data sets are perturbed in continuous time: the float model sees the perturbed times, the chip the
same times requantized to its steps (``stimulus.to_steps``), so both run their own arithmetic. Spike data
(rasters, events) are perturbed on the step grid: a jittered spike moves by the noise rounded to whole steps
and stays within the data's input steps; spikes that land on one step of one channel merge. The encoding's
bias channels (its ``bias_times``, the last inputs) belong to the model and are never perturbed.
``verify.robustness_levels`` runs chip and float model on each perturbed copy.
"""

from __future__ import annotations

import numpy as np

from ...targets.record import SpikeEvents
from ..artifacts.robustness import PERTURBATIONS, Perturbation, RobustnessSpec
from ..artifacts.stimulus import Stimulus
from ..errors import DeployError
from .stimulus import to_steps


def parse_robustness(spec: str) -> RobustnessSpec:
    """ "jitter=0.5,1,2;drop=0.05,0.1;seed=0" -> the perturbations, in the order given, and the seed."""
    example = "e.g. jitter=0.5,1,2;drop=0.05,0.1;seed=0"
    perturbations, seed = [], 0
    for part in filter(None, (part.strip() for part in spec.split(";"))):
        kind, equals, levels = part.partition("=")
        kind = kind.strip()
        if kind == "seed" and equals:
            if not levels.strip().isdigit():  # digits only: a whole number >= 0
                raise DeployError(f"--robustness seed must be a whole number >= 0, got {levels.strip()!r}")
            seed = int(levels)
            continue
        if kind not in PERTURBATIONS or not equals:
            raise DeployError(f"--robustness takes {', '.join(f'{k}=LEVELS' for k in PERTURBATIONS)} and seed=N "
                              f"({example}), not {part!r}")
        for text in levels.split(","):
            try:
                level = float(text)
            except ValueError:
                raise DeployError(f"--robustness {kind}: {text.strip()!r} is not a number ({example})") from None
            if not np.isfinite(level) or level < 0 or (kind == "drop" and level > 1):
                bound = "between 0 and 1" if kind == "drop" else "at least 0"
                raise DeployError(f"--robustness {kind} levels must be {bound}, got {text.strip()}")
            perturbations.append(Perturbation(kind, level))
    if not perturbations:
        raise DeployError(f"--robustness names no perturbation ({example})")
    return RobustnessSpec(tuple(perturbations), seed)


def _rng(perturbation: Perturbation, seed: int) -> np.random.Generator:
    # One stream per (seed, kind, level): a level's noise does not depend on which other levels are asked for.
    kind = list(PERTURBATIONS).index(perturbation.kind)
    return np.random.default_rng([seed, kind, int(round(perturbation.level * 1e9))])


def _perturbed_times(times: np.ndarray, sensors: int, perturbation: Perturbation, dt: float,
                     rng: np.random.Generator) -> np.ndarray:
    out = np.array(times, dtype=np.float64)
    sensor = out[:, :sensors]
    if perturbation.kind == "jitter":
        noise = rng.normal(0.0, perturbation.level * dt, sensor.shape)
        sensor[:] = np.where(np.isfinite(sensor), np.maximum(sensor + noise, 0.0), sensor)
    else:
        sensor[rng.random(sensor.shape) < perturbation.level] = np.inf
    return out


def _perturbed_events(inputs: SpikeEvents, sensors: int, perturbation: Perturbation, last_step: int,
                      rng: np.random.Generator) -> SpikeEvents:
    sample, step, channel = (row.astype(np.int64) for row in inputs.events)
    sensor = channel < sensors
    if perturbation.kind == "jitter":
        moved = step + np.rint(rng.normal(0.0, perturbation.level, step.shape)).astype(np.int64)
        step = np.where(sensor, np.clip(moved, 1, last_step), step)
    else:
        keep = ~sensor | (rng.random(step.shape) >= perturbation.level)
        sample, step, channel = sample[keep], step[keep], channel[keep]
    sample, step, channel = np.unique(np.stack([sample, step, channel]), axis=1)  # spikes on one step merge
    return SpikeEvents.from_arrays(sample, step, channel, inputs.num_samples, inputs.num_steps, inputs.size)


def perturb(stimulus: Stimulus, bundle, perturbation: Perturbation, seed: int = 0) -> Stimulus:
    """The stimulus under one perturbation (same samples, labels and selection name with the noise stated)."""
    rng = _rng(perturbation, seed)
    sensors = bundle.network.input.size - len(bundle.encoding.get("bias_times", ())) if stimulus.times is not None \
        else bundle.network.input.size
    name = f"{stimulus.name} with {perturbation.kind} {perturbation.level:g} (seed {seed})"
    if stimulus.times is not None:
        times = _perturbed_times(stimulus.times, sensors, perturbation, bundle.timing.dt, rng)
        inputs = to_steps(times, bundle.timing.dt, bundle.timing.num_steps)
    else:
        times = None
        last_step = stimulus.report.input_steps if stimulus.report is not None else bundle.timing.num_steps
        inputs = _perturbed_events(stimulus.inputs, sensors, perturbation, last_step, rng)
    return Stimulus(name, inputs, stimulus.labels, times, selection=f"{stimulus.selection} {name}")
