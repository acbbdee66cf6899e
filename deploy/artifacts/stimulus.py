"""The stimulus: what a run is fed (the artifact ``stages.stimulus`` returns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...targets.record import SpikeEvents


@dataclass(frozen=True)
class Stimulus:
    """What a run is fed: input spikes in chip steps, with the data set's labels and continuous input spike
    times where the data come from a labelled data set (None for random spike trains)."""

    name: str
    inputs: SpikeEvents
    labels: np.ndarray | None = None
    times: np.ndarray | None = None
