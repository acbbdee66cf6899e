"""What verify measured (the Comparison) and what it concluded (the Verdict)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ...targets.record import SpikeEvents, SpikeRecord
from .tolerances import Tolerances

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    metrics: dict
    tolerances: Tolerances
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **self.metrics, "tolerances": asdict(self.tolerances),
                "passed": self.passed, "failures": list(self.failures)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


@dataclass(frozen=True)
class Comparison:
    """Everything verify measured, per sample: the data behind the verdict (and the report).

    ``times[model][layer]`` are first-spike times in chip steps (time / dt), +inf
    where silent, for model in "float", "discrete", "chip"; ``decisions[model]`` the decisions;
    ``discrete`` every layer's spikes in the discrete reference. ``labels`` is None for unlabelled
    input spike trains.
    """

    labels: np.ndarray | None
    decisions: dict[str, np.ndarray]
    times: dict[str, dict[str, np.ndarray]]
    inputs: SpikeEvents
    record: SpikeRecord
    float_reference: str  # "continuous" or "discrete"
    discrete: dict[str, SpikeEvents] = field(default_factory=dict)
