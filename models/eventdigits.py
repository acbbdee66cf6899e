"""eventdigits: a small offline counterpart of N-MNIST, made from scikit-learn's 8x8 digits.

N-MNIST (Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets to spiking neuromorphic
datasets using saccades", Frontiers in Neuroscience 9:437, 2015) was recorded by an ATIS camera moved in
three saccades in front of a screen showing MNIST digits: 34x34 pixels, ON/OFF events. This module does
the same in simulation, deterministically:

- Image: each 8x8 digit (values 0-16 = brightness, a bright digit on a dark screen as N-MNIST showed
  MNIST) is upsampled 3x by bilinear interpolation to 24x24. 24 pixels is about an MNIST digit's
  extent (20 of 28 pixels) scaled to the sensor, and 24 plus the saccades' 7-pixel travel fits the
  34-pixel sensor: N-MNIST's own size, so the events are channels of the same 2x34x34 sensor and the
  files written here are read by tonic's NMNIST reader as they are. 8x8 upsampled further would add
  input neurons without adding information (the network pools them away).
- Motion: the three saccades of N-MNIST's triangle, as tonic's ``NMNIST`` ``stabilize`` undoes them
  (the image moves by (+3.5, +7), (+3.5, -7), (-7, 0) pixels in (x, y)), at constant speed, each
  lasting 1 ms instead of N-MNIST's 100 ms: 10 steps of snnTorch's exported dt (1e-4 s), so that one
  network step is one 100 µs bin at the default time scale (--time-scale 1 for a graph in seconds).
- Pixels: a DVS pixel (Lichtsteiner, Posch & Delbruck, IEEE JSSC 43(2), 2008) sends an ON (OFF)
  event each time its log intensity rises (falls) by the contrast threshold since its last event,
  here C = 0.25 with a fixed per-pixel mismatch of 2.1 % (that paper's measured threshold mismatch),
  on top of a screen black level of 5 % of white. The sensor is sampled 4 times per step; a crossing's
  time stamp is interpolated linearly between two samples and floored to whole µs (N-MNIST's unit).
  Comparisons are made on intensities (I >= I_ref e^C), which avoids an array logarithm whose last
  bits could depend on the CPU's vector unit.
- Noise: background-activity events, a seeded Poisson count of mean 200 per sample (about 1.6 % of a
  sample's events, which average 12,000), uniform over pixels, polarities and time.

Splits are the digits splits (``data.eventdigits``: the 1257 train, 180 validation and 360 test images of
``data.digits``, in that order). Sample i of a split is generated from its own seeded generator (seed, split, i), so any sample
can be made alone. A split behaves like a tonic data set (``sensor_size``, ``len``, ``[i]`` -> (events,
label), ``targets``), and ``write_nmnist`` writes it in N-MNIST's on-disk format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SENSOR = (34, 34, 2)  # (width, height, polarities): N-MNIST's ATIS crop (Orchard et al. 2015)
UPSAMPLE = 3  # 8x8 -> 24x24
DIGIT_SIZE = 8 * UPSAMPLE
# The image's (x, y) displacement during each saccade, in pixels (tonic's NMNIST.stabilize, which undoes them).
SACCADES = ((3.5, 7.0), (3.5, -7.0), (-7.0, 0.0))
STEP_US = 100  # one network step: snnTorch's exported dt, 1e-4 s
STEPS_PER_SACCADE = 10
NUM_STEPS = STEPS_PER_SACCADE * len(SACCADES)
DURATION_US = NUM_STEPS * STEP_US
SAMPLES_PER_STEP = 4  # the pixel circuit is evaluated every 25 µs
CONTRAST = 0.25  # log-intensity threshold
CONTRAST_MISMATCH = 0.021  # relative, per pixel (Lichtsteiner et al. 2008)
BLACK_LEVEL = 0.05  # the screen's black, as a fraction of its white
NOISE_EVENTS = 200.0  # mean background-activity events per sample
SEED = 2015
# tonic's NMNIST dtype: structured events (x, y, t, p), t in µs.
EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])


def upsample(image: np.ndarray, factor: int = UPSAMPLE) -> np.ndarray:
    """Bilinear upsampling of an (h, w) image by an integer factor, pixel centres aligned (as
    torch's interpolate with align_corners=False), edges clamped; elementwise arithmetic only."""
    def axis_weights(size: int):
        source = (np.arange(size * factor) + 0.5) / factor - 0.5
        low = np.clip(np.floor(source).astype(np.int64), 0, size - 1)
        high = np.minimum(low + 1, size - 1)
        fraction = np.clip(source - np.floor(source), 0.0, 1.0)
        fraction[source < 0] = 0.0
        return low, high, fraction

    rows_low, rows_high, fy = axis_weights(image.shape[0])
    cols_low, cols_high, fx = axis_weights(image.shape[1])
    top = image[rows_low][:, cols_low] * (1 - fx) + image[rows_low][:, cols_high] * fx
    bottom = image[rows_high][:, cols_low] * (1 - fx) + image[rows_high][:, cols_high] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


def trajectory(num_samples: int) -> np.ndarray:
    """(num_samples + 1, 2) (x, y) offsets of the image's top-left corner on the sensor at each pixel-circuit
    sample, starting at rest: the triangle of SACCADES, centred on the sensor."""
    corners = np.cumsum(np.array([(0.0, 0.0), *SACCADES]), axis=0)
    span = corners.max(axis=0) - corners.min(axis=0)
    start = (np.array(SENSOR[:2], dtype=np.float64) - DIGIT_SIZE - span) / 2 - corners.min(axis=0)
    per_saccade = num_samples // len(SACCADES)
    offsets = [start + corners[0]]
    for index in range(len(SACCADES)):
        fraction = np.arange(1, per_saccade + 1)[:, None] / per_saccade
        offsets.extend(start + corners[index] + fraction * (corners[index + 1] - corners[index]))
    return np.array(offsets)


def sensor_view(canvas: np.ndarray, offset_x: float, offset_y: float) -> np.ndarray:
    """The (height, width) sensor image of ``canvas`` placed with its top-left corner at (offset_x, offset_y)
    pixels, bilinearly resampled, zero outside (the canvas must fit on the sensor)."""
    width, height = SENSOR[:2]
    ix, iy = math.floor(offset_x), math.floor(offset_y)
    fx, fy = offset_x - ix, offset_y - iy
    # Sensor pixel (y, x) sees canvas point (y - offset_y, x - offset_x), between canvas rows y - iy - 1 and
    # y - iy: in ``shifted``, canvas row r sits at row r + iy + 1, so row y + 1 holds r = y - iy, row y r - 1.
    shifted = np.zeros((height + 1, width + 1))
    shifted[iy + 1:iy + 1 + canvas.shape[0], ix + 1:ix + 1 + canvas.shape[1]] = canvas
    return ((1 - fy) * ((1 - fx) * shifted[1:, 1:] + fx * shifted[1:, :-1])
            + fy * ((1 - fx) * shifted[:-1, 1:] + fx * shifted[:-1, :-1]))


def _threshold_factors() -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel multiplicative thresholds e^C_i (ON) and e^-C_i (OFF): one camera, one mismatch map."""
    width, height = SENSOR[:2]
    contrast = CONTRAST * (1 + CONTRAST_MISMATCH * np.random.default_rng(SEED).standard_normal((height, width)))
    up = np.array([[math.exp(c) for c in row] for row in contrast])
    down = np.array([[math.exp(-c) for c in row] for row in contrast])
    return up, down


def dvs_events(image: np.ndarray, rng: np.random.Generator, thresholds=None, noise: float = NOISE_EVENTS) -> np.ndarray:
    """The events of one 8x8 image (values in [0, 1]) moved along the saccades, with a Poisson number of mean
    ``noise`` noise events, sorted by time (stable: the pixel circuit's order within a time stamp)."""
    up, down = _threshold_factors() if thresholds is None else thresholds
    canvas = upsample(np.asarray(image, dtype=np.float64))
    frames = NUM_STEPS * SAMPLES_PER_STEP
    offsets = trajectory(frames)
    frame_us = STEP_US / SAMPLES_PER_STEP

    def intensity(k):
        return BLACK_LEVEL + (1 - BLACK_LEVEL) * sensor_view(canvas, *offsets[k])

    previous = intensity(0)
    reference = previous.copy()  # each pixel's level at its last event; at rest, the still image
    parts = []
    for k in range(1, frames + 1):
        current = intensity(k)
        for polarity, factor in ((1, up), (0, down)):
            while True:
                level = reference * factor
                crossed = current >= level if polarity else current <= level
                if not crossed.any():
                    break
                y, x = np.nonzero(crossed)
                change = current[y, x] - previous[y, x]
                fraction = np.where(change != 0, (level[y, x] - previous[y, x]) / np.where(change != 0, change, 1),
                                    1.0)
                t = np.floor((k - 1 + np.clip(fraction, 0.0, 1.0)) * frame_us).astype(np.int64)
                parts.append((x, y, np.minimum(t, DURATION_US - 1), np.full(x.size, polarity)))
                reference[y, x] = level[y, x]
        previous = current
    count = rng.poisson(noise)
    width, height = SENSOR[:2]
    parts.append((rng.integers(0, width, count), rng.integers(0, height, count),
                  rng.integers(0, DURATION_US, count), rng.integers(0, 2, count)))
    x, y, t, p = (np.concatenate(column) for column in zip(*parts))
    events = np.zeros(x.size, EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events[np.argsort(events["t"], kind="stable")]


@dataclass(frozen=True)
class EventDigits:
    """One split of eventdigits, read like a tonic data set: ``[i]`` -> (events, label), events generated
    on demand (and kept)."""

    name: str
    images: np.ndarray  # (samples, 8, 8) in [0, 1]
    targets: np.ndarray
    split_index: int  # its position in data.SPLITS: part of each sample's seed
    sensor_size: tuple = SENSOR
    n_classes: int = 10
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        index = range(len(self))[index]
        if index not in self._cache:
            rng = np.random.default_rng([SEED, self.split_index, index])
            self._cache[index] = dvs_events(self.images[index], rng, self._thresholds())
        return self._cache[index], int(self.targets[index])

    def _thresholds(self):
        if "thresholds" not in self._cache:
            self._cache["thresholds"] = _threshold_factors()
        return self._cache["thresholds"]

    def frames(self, count: int | None = None, steps: int = NUM_STEPS) -> np.ndarray:
        """(samples, steps, 2, height, width) bool: whether a channel has an event in a step of STEP_US, as
        the chip is fed (several events of a channel in one step are one spike)."""
        count = len(self) if count is None else count
        width, height = SENSOR[:2]
        out = np.zeros((count, steps, 2, height, width), bool)
        for index in range(count):
            events = self[index][0]
            step = events["t"] // STEP_US
            keep = step < steps
            out[index, step[keep], events["p"][keep], events["y"][keep], events["x"][keep]] = True
        return out


def nmnist_bytes(events: np.ndarray) -> bytes:
    """Events in N-MNIST's .bin format: 5 bytes each, x, y, then the polarity in bit 7 of byte 2 and a 23-bit µs
    time stamp in the rest of bytes 2-4 (Orchard's format, as tonic.io.read_mnist_file reads it)."""
    t = events["t"].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= 2**23):
        raise ValueError("N-MNIST's time stamps are 23-bit µs counts")
    raw = np.zeros((events.size, 5), np.uint8)
    raw[:, 0], raw[:, 1] = events["x"], events["y"]
    raw[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def nmnist_folder_split(split: str) -> str:
    """N-MNIST has Train and Test folders: eventdigits' test is Test, train and validation are Train."""
    return "Test" if split == "test" else "Train"


def write_nmnist(dataset: EventDigits, root, count: int | None = None) -> Path:
    """Write a split as N-MNIST's archive unpacks: ROOT/NMNIST/<Train|Test>/<digit>/<index>.bin, index the
    sample's position in the split (5 digits). tonic lists the files by digit, then index: sample j of
    ``--data nmnist:test --data-root ROOT`` is sample ``nmnist_order(labels)[j]`` of the split."""
    folder = Path(root) / "NMNIST" / nmnist_folder_split(dataset.name.partition(":")[2])
    count = len(dataset) if count is None else count
    for index in range(count):
        events, label = dataset[index]
        path = folder / str(label) / f"{index:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nmnist_bytes(events))
    return Path(root) / "NMNIST"


def nmnist_order(labels: np.ndarray) -> np.ndarray:
    """The split's sample indices in the order N-MNIST's files are read back: by digit, then index."""
    return np.lexsort((np.arange(len(labels)), np.asarray(labels)))
