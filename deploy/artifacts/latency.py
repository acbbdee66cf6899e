"""What verify measures of decision timing and sample difficulty (typed; serialized into the verdict).

Steps are chip steps (1-based: step n is t = n dt). A model's decision "if stopped after step k" uses only
the spikes of steps 1..k, decided by the bundle's one decision rule (``targets.decision``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .energy import Range


@dataclass(frozen=True)
class LatencyStats:
    """Per-sample decision latencies, in steps, over the samples whose final decision is a class; ``undecided``
    counts the others (no output spike by the end of the run). None: no sample was decided."""

    median: float | None
    p95: float | None
    mean: float | None
    undecided: int


@dataclass(frozen=True)
class AccuracyByStep:
    """Accuracy of each model if the run were stopped after ``steps[i]`` (every step 1..num_steps)."""

    steps: tuple[int, ...]
    chip: tuple[float, ...]
    float: tuple[float, ...]


@dataclass(frozen=True)
class EarlyDecision:
    """The earliest step after which the chip's accuracy is within ``within`` (a fraction: 0.005 = 0.5
    points) of its final accuracy, that accuracy, and the energy per inference of a run stopped after that
    step (the verdict's energy model on the spikes of steps 1..step, static power over those steps)."""

    step: int
    accuracy: float
    within: float
    energy_j: Range


@dataclass(frozen=True)
class CountRuleCheck:
    """For a count decoding, where its rule and the other count decoding's (spike_count breaks ties by the earliest
    first spike and leaves a silent output undecided, spike_count_argmax takes torch.argmax: ``targets.decision``)
    part on the float model's outputs: the samples whose largest counts tie, those without any output spike, and
    those the other rule decides otherwise. Nonzero, a training script that scores by the other rule reports
    another accuracy than verify's float model."""

    tied: int
    silent: int
    other_decoding: str
    decided_otherwise: int


@dataclass(frozen=True)
class Difficulty:
    """Sample difficulty by the float model's decision margin (first_spike: second - first output spike time, in
    steps; spike_count: first - second output spike count); the chip's latency against it (Spearman's rank
    correlation, None when either is constant) and the chip-vs-float decision flips per margin quartile, the
    hardest (smallest margin) first."""

    latency_margin_spearman: float | None
    flips_by_margin_quartile: tuple[int, int, int, int]
    samples_by_margin_quartile: tuple[int, int, int, int]
    count_rule: CountRuleCheck | None = None  # None unless the decoding is a count decoding


@dataclass(frozen=True)
class DecisionTiming:
    """Decision latency (chip and float), accuracy if stopped early (labelled data only) and difficulty."""

    decision_latency_steps: dict[str, LatencyStats]  # "chip", "float"
    accuracy_by_step: AccuracyByStep | None
    early_decision: EarlyDecision | None
    difficulty: Difficulty
