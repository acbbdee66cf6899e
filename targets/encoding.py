"""How data become input spike times: the encodings a bundle can carry (numpy only, no torch).

The zoo models are trained with these encodings (models/), the graph's metadata names one, the
compiler copies it into the bundle, and ``run`` and ``verify`` encode a data set with it. Features
are in [0, 1]; times are in the model's time unit, +inf meaning no spike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Fast & Deep input coding for Yin-Yang (Göltz et al. 2021, Methods; experiment_configs/yin_yang.yaml of the
# authors' code), in units of tau.
T_EARLY = 0.15
T_LATE = 2.0
T_BIAS = 0.9


def _check_times(kind: str, t_early: float, t_late: float, t_bias: float) -> None:
    values = {"t_early": t_early, "t_late": t_late, "t_bias": t_bias}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{kind} encoding: {name} must be a finite time >= 0, got {value!r}")
    if not t_early < t_late:
        raise ValueError(f"{kind} encoding: t_early ({t_early}) must come before t_late ({t_late})")


@dataclass(frozen=True)
class TTFSEncoding:
    """Feature v in [0, 1] -> spike time t = t_early + v (t_late - t_early); one bias spike at t_bias is appended."""

    t_early: float = T_EARLY
    t_late: float = T_LATE
    t_bias: float = T_BIAS

    kind = "ttfs_linear"

    def __post_init__(self):
        _check_times(self.kind, self.t_early, self.t_late, self.t_bias)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, F + 1) float64 spike times, the last column the bias spike."""
        features = np.asarray(features, dtype=np.float64)
        times = self.t_early + features * (self.t_late - self.t_early)
        bias = np.full((features.shape[0], 1), self.t_bias)
        return np.concatenate([times, bias], axis=1)


@dataclass(frozen=True)
class PixelLatencyEncoding:
    """Pixel x in [0, 1] -> one spike at t = t_early + (1 - x) (t_late - t_early) (brighter = earlier); one bias
    spike at t_bias is appended. Blank pixels (x = 0) either stay silent, as in Bacho & Chu (2023)'s MNIST coding,
    or, with blank_spikes, spike at t_late like every other pixel, as in Fast & Deep's MNIST coding (Göltz et al.
    2021; their datasets.py maps 0 to the latest time). The late volley lets a first-spike network tell a blank
    pixel from one still to come (digits-ttfs uses it; models/train.py DIGITS_TTFS_CONFIG has the measurements)."""

    t_early: float
    t_late: float
    t_bias: float
    blank_spikes: bool = False

    kind = "pixel_latency"

    def __post_init__(self):
        _check_times(self.kind, self.t_early, self.t_late, self.t_bias)
        if not isinstance(self.blank_spikes, bool):
            raise ValueError(f"{self.kind} encoding: blank_spikes must be true or false, got {self.blank_spikes!r}")

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, F + 1) float64 spike times (inf = no spike), the last column the bias spike."""
        features = np.asarray(features, dtype=np.float64)
        times = self.t_early + (1.0 - features) * (self.t_late - self.t_early)
        if not self.blank_spikes:
            times = np.where(features > 0, times, np.inf)
        bias = np.full((features.shape[0], 1), self.t_bias)
        return np.concatenate([times, bias], axis=1)


Encoding = TTFSEncoding | PixelLatencyEncoding
ENCODINGS = {TTFSEncoding.kind: TTFSEncoding, PixelLatencyEncoding.kind: PixelLatencyEncoding}
# Latency codes: every input channel spikes at most once per sample.
SINGLE_SPIKE_ENCODINGS = tuple(ENCODINGS)


def encoding_description(encoding: Encoding) -> dict:
    """The sidecar's "encoding" entry: the fields, plus "kind" for any encoding but TTFSEncoding (the original)."""
    fields = asdict(encoding)
    return fields if isinstance(encoding, TTFSEncoding) else {"kind": encoding.kind, **fields}


def encoding_from_description(description: dict) -> Encoding:
    """Inverse of encoding_description. Unknown kinds or fields, or bad values, are a ValueError."""
    fields = dict(description)
    kind = fields.pop("kind", TTFSEncoding.kind)
    if kind not in ENCODINGS:
        raise ValueError(f"input encoding {kind!r} is not supported; known: {', '.join(ENCODINGS)}")
    try:
        return ENCODINGS[kind](**fields)
    except TypeError as error:
        raise ValueError(f"input encoding {kind!r} has fields it does not take: {error}") from None
