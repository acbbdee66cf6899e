"""Tolerances: when a verification fails. The defaults are defined here, once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """When a verification fails (exit code 1). Spike-time tolerance is in chip steps."""

    max_accuracy_drop: float = 0.01  # float accuracy - chip accuracy
    min_agreement: float = 0.98  # fraction of samples where chip and float decide alike
    max_spike_time_error_p95: float | None = None  # per layer, chip vs float, steps
    max_hardware_events: int = 0  # 24-bit current wraps (silent corruption on the chip)
