"""The stimulus: what a run is fed (the artifact ``stages.stimulus`` returns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...targets.record import SpikeEvents


@dataclass(frozen=True)
class Stimulus:
    """What a run is fed: input spikes in chip steps, with the data set's labels and continuous input spike
    times where the data come from a labelled data set (None for random spike trains).

    ``selection`` says exactly which samples these are, canonically (e.g. "yinyang:test samples 0-999",
    "random:rate=0.05,seed=1 samples 0-99"): a spike record carries it, so that a replay of the record
    against any other selection is refused."""

    name: str
    inputs: SpikeEvents
    labels: np.ndarray | None = None
    times: np.ndarray | None = None
    selection: str = ""
