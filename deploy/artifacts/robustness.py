"""Input noise for robustness checks, and what the chip and the float model do under it (typed)."""

from __future__ import annotations

from dataclasses import dataclass

# kind -> what its level means. Bacho & Chu (Neural Computation 2023) test both kinds of input noise.
PERTURBATIONS = {
    "jitter": "the standard deviation of Gaussian input spike-time noise, in chip steps",
    "drop": "the probability that an input spike is deleted",
}


@dataclass(frozen=True)
class Perturbation:
    kind: str  # one of PERTURBATIONS
    level: float


@dataclass(frozen=True)
class RobustnessSpec:
    """What verify --robustness asks for: the perturbations in order, and the seed of their noise."""

    perturbations: tuple[Perturbation, ...]
    seed: int = 0


@dataclass(frozen=True)
class RobustnessLevel:
    """Chip and float model on the same perturbed samples (the chip on the perturbed times requantized to its
    steps); accuracies None for unlabelled data."""

    kind: str
    level: float
    accuracy_chip: float | None
    accuracy_float: float | None
    agreement: float
