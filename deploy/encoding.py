"""Data -> input spikes: continuous spike times by the graph's encoding, then chip steps."""

from __future__ import annotations

import numpy as np

from ..targets.record import SpikeEvents
from .errors import DeployError

# Latency codes: every input channel spikes at most once per sample.
SINGLE_SPIKE_ENCODINGS = ("ttfs_linear", "pixel_latency")


def input_times(encoding: dict, features: np.ndarray) -> np.ndarray:
    """(samples, features) in [0, 1] -> (samples, inputs) spike times in the graph's time unit.

    The encodings are the models' own (``models.zoo.ENCODINGS``): the graph's metadata names one.
    """
    from ..models.zoo import ENCODINGS, encoding_from_description

    if not encoding:
        raise DeployError("the graph states no input encoding, so a data set cannot be fed to it "
                          "(it takes input spike trains)")
    if encoding.get("kind") not in ENCODINGS:
        raise DeployError(f"input encoding {encoding.get('kind')!r} is not supported; known: {', '.join(ENCODINGS)}")
    (t_bias,) = encoding["bias_times"]
    features = np.asarray(features, dtype=np.float64)
    if not np.all(np.isfinite(features)):
        raise DeployError("input features contain NaN or infinity")
    model_encoding = encoding_from_description({"kind": encoding["kind"], "t_early": encoding["t_early"],
                                                "t_late": encoding["t_late"], "t_bias": t_bias})
    return model_encoding.encode(features)


def to_steps(times: np.ndarray, dt: float, num_steps: int) -> SpikeEvents:
    """Spike time t is sent in step round(t / dt), at least step 1; +inf means no spike.

    Spikes that would fall after the last step are dropped.
    """
    steps = np.floor(np.asarray(times) / dt + 0.5)
    sample, channel = np.nonzero(np.isfinite(steps) & (steps <= num_steps))
    step = np.maximum(steps[sample, channel], 1).astype(np.int64)
    return SpikeEvents.from_arrays(sample, step, channel, num_samples=times.shape[0], num_steps=num_steps,
                                   size=times.shape[1])
