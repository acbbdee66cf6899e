"""Small classification data sets with fixed, reproducible train/validation/test splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "validation", "test")

# Kriener, Göltz & Petrovici (2021), "The Yin-Yang dataset", arXiv:2102.08211: sizes and seeds of the published splits.
YINYANG_SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}
YINYANG_R_BIG = 0.5
YINYANG_R_SMALL = 0.1

# scikit-learn's 8x8 digits (1797 images): 360 test and 180 validation images, stratified, the rest is training.
DIGITS_TEST_SIZE = 360
DIGITS_VALIDATION_SIZE = 180
DIGITS_SEED = 0
DIGITS_MAX_PIXEL = 16.0


class DataUnavailable(ValueError):
    """A data set whose loader needs a package that is not installed (the message names the extra)."""


@dataclass(frozen=True)
class Dataset:
    """Features in [0, 1] with integer class labels."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    n_classes: int


def yinyang_class(x: float, y: float, r_small: float = YINYANG_R_SMALL, r_big: float = YINYANG_R_BIG) -> int:
    """Class of a point inside the Yin-Yang disc: 0 yin, 1 yang, 2 dot (Kriener et al. 2021).

    With d_r, d_l the distances to the right and left dot centres (1.5 r_big, r_big) and (0.5 r_big, r_big):
    dot if d_r < r_small or d_l < r_small; else yang if d_r <= r_small or r_small < d_l <= r_big / 2
    or (y > r_big and d_r > r_big / 2); else yin.
    """
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yang = d_right <= r_small or r_small < d_left <= 0.5 * r_big or (y > r_big and d_right > 0.5 * r_big)
    return int(is_yang)


def _yinyang_point(rng: np.random.RandomState, goal_class: int) -> tuple[float, float]:
    """Rejection-sample (x, y) uniformly in the disc of radius r_big around (r_big, r_big) until it has goal_class."""
    while True:
        # One rand(2) call per attempt, as in the original generator: the RNG order defines the published splits.
        x, y = rng.rand(2) * 2.0 * YINYANG_R_BIG
        if np.sqrt((x - YINYANG_R_BIG) ** 2 + (y - YINYANG_R_BIG) ** 2) > YINYANG_R_BIG:
            continue
        if yinyang_class(x, y) == goal_class:
            return x, y


def yinyang(split: str) -> Dataset:
    """Yin-Yang split with features [x, y, 1 - x, 1 - y]; the class is drawn uniformly before each point."""
    if split not in YINYANG_SPLITS:
        raise ValueError(_unknown_message(f"yinyang:{split}"))
    size, seed = YINYANG_SPLITS[split]
    rng = np.random.RandomState(seed)
    points, labels = [], []
    for _ in range(size):
        goal_class = rng.randint(3)
        points.append(_yinyang_point(rng, goal_class))
        labels.append(goal_class)
    xy = np.asarray(points, dtype=np.float64)
    features = np.concatenate([xy, 1.0 - xy], axis=1)
    return Dataset(f"yinyang:{split}", features, np.asarray(labels, dtype=np.int64), 3)


def digits(split: str) -> Dataset:
    """scikit-learn digits, features = pixel / 16.

    Split: stratified train_test_split (random_state=0) takes 360 test images, a second stratified
    train_test_split (random_state=0) of the remainder takes 180 validation images, 1257 remain for training.
    """
    if split not in SPLITS:
        raise ValueError(_unknown_message(f"digits:{split}"))
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataUnavailable("the digits data set needs scikit-learn: pip install 'snn-deploy[data]'") from None

    images, labels = load_digits(return_X_y=True)
    features = images.astype(np.float64) / DIGITS_MAX_PIXEL
    labels = labels.astype(np.int64)
    rest_x, test_x, rest_y, test_y = train_test_split(
        features, labels, test_size=DIGITS_TEST_SIZE, stratify=labels, random_state=DIGITS_SEED
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=DIGITS_VALIDATION_SIZE, stratify=rest_y, random_state=DIGITS_SEED
    )
    parts = {"train": (train_x, train_y), "validation": (val_x, val_y), "test": (test_x, test_y)}
    split_features, split_labels = parts[split]
    return Dataset(f"digits:{split}", split_features, split_labels, 10)


def eventdigits(split: str):
    """eventdigits (``models.eventdigits``): a digits split's images as DVS events, a tonic-like data set whose
    events are generated when read."""
    from .eventdigits import EventDigits

    if split not in SPLITS:
        raise ValueError(_unknown_message(f"eventdigits:{split}"))
    dataset = digits(split)
    return EventDigits(f"eventdigits:{split}", dataset.features.reshape(-1, 8, 8), dataset.labels,
                       SPLITS.index(split))


# Data sets of features in [0, 1] (``load``), and of input events (``load_events``: tonic-like data sets whose
# samples are structured events x, y, t (µs), p, read as tonic's data sets are).
LOADERS = {"yinyang": yinyang, "digits": digits}
EVENT_LOADERS = {"eventdigits": eventdigits}


def _unknown_message(spec: str) -> str:
    return (f"unknown data set {spec!r}: known data sets are {', '.join([*LOADERS, *EVENT_LOADERS])} with splits "
            f"{', '.join(SPLITS)}")


def load(spec: str) -> Dataset:
    """Load "<name>:<split>", e.g. "yinyang:test" or "digits:train"."""
    name, _, split = spec.partition(":")
    if name not in LOADERS or split not in SPLITS:
        raise ValueError(_unknown_message(spec))
    return LOADERS[name](split)


def load_events(spec: str):
    """Load an event data set "<name>:<split>", e.g. "eventdigits:test"."""
    name, _, split = spec.partition(":")
    if name not in EVENT_LOADERS or split not in SPLITS:
        raise ValueError(_unknown_message(spec))
    return EVENT_LOADERS[name](split)
