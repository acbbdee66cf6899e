"""Tolerances: when a verification fails. The defaults are defined here, once, and so are the places a
tolerance can come from."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT, FILE, OPTION = "default", "file", "option"
ORIGINS = (DEFAULT, FILE, OPTION)  # where a tolerance's value came from


@dataclass(frozen=True)
class ToleranceOrigin:
    """Where one tolerance's value came from: ``source`` is one of ORIGINS; ``where`` names the tolerance file
    (its path) or the option as it was given ("--min-agreement", "min_agreement="); "" for a default."""

    source: str
    where: str = ""


@dataclass(frozen=True)
class Tolerances:
    """When a verification fails (exit code 1). Spike-time tolerance is in chip steps."""

    max_accuracy_drop: float = 0.01  # float accuracy - chip accuracy
    min_agreement: float = 0.98  # fraction of samples where chip and float decide alike
    max_spike_time_error_p95: float | None = None  # per layer, chip vs float, steps
    max_hardware_events: int = 0  # 24-bit current wraps (silent corruption on the chip)
    # Where each value came from, by field name (``stages.tolerances.load_tolerances`` states every field; a
    # Tolerances built in code states none, see ``stages.tolerances.origin``). Not part of equality or hashing:
    # the same limits read from two places are the same tolerances.
    origins: dict[str, ToleranceOrigin] = field(default_factory=dict, compare=False)
