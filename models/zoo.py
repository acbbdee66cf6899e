"""Trained model checkpoints: an .npz of weights (weight_0, weight_1, ...) plus a JSON sidecar with the rest."""

from __future__ import annotations

import json
import pathlib
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

from ..targets.files import atomic_path
from .data import Dataset
from .ttfs import TTFSEncoding, network_spike_times_numpy, predict

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TTFSModel:
    """A time-to-first-spike network: weights (n_out, n_in) per layer, the first layer fed by encoding.encode."""

    name: str
    weights: tuple[np.ndarray, ...]
    threshold: float
    encoding: TTFSEncoding
    dataset: str
    meta: dict


def zoo_dir() -> pathlib.Path:
    """Folder of the committed checkpoints."""
    return pathlib.Path(__file__).resolve().parent / "zoo"


def names() -> list[str]:
    """Names of the committed checkpoints."""
    return sorted(path.stem for path in zoo_dir().glob("*.npz"))


def sidecar_path(npz_path) -> pathlib.Path:
    """<stem>.json next to <stem>.npz."""
    return pathlib.Path(npz_path).with_suffix(".json")


def _write_atomically(path: pathlib.Path, write) -> None:
    """Write through a temporary file in the same folder, then rename it over path (no partial output)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def save(model: TTFSModel, path) -> None:
    """Save model as path (.npz, no pickled objects) and its JSON sidecar."""
    path = pathlib.Path(path)
    arrays = {f"weight_{index}": np.asarray(weight, dtype=np.float64) for index, weight in enumerate(model.weights)}
    description = {
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "n_layers": len(model.weights),
        "threshold": model.threshold,
        "encoding": asdict(model.encoding),
        "dataset": model.dataset,
        "meta": model.meta,
    }
    text = json.dumps(description, indent=2, sort_keys=True) + "\n"
    _write_atomically(path, lambda handle: np.savez(handle, **arrays))
    _write_atomically(sidecar_path(path), lambda handle: handle.write(text.encode()))


def _resolve(name_or_path: str) -> pathlib.Path:
    if name_or_path in names():
        return zoo_dir() / f"{name_or_path}.npz"
    path = pathlib.Path(name_or_path)
    if path.suffix == ".npz" or path.exists():
        return path
    raise ValueError(f"unknown model {name_or_path!r}: zoo models are {', '.join(names()) or '(none)'}")


def load(name_or_path: str) -> TTFSModel:
    """Load a zoo model by name ("yinyang-ttfs") or from a path to an .npz with its JSON sidecar."""
    path = _resolve(str(name_or_path))
    try:
        description = json.loads(sidecar_path(path).read_text())
        with np.load(path, allow_pickle=False) as archive:
            weights = tuple(archive[f"weight_{index}"].astype(np.float64) for index in range(description["n_layers"]))
        return TTFSModel(
            name=description["name"],
            weights=weights,
            threshold=float(description["threshold"]),
            encoding=TTFSEncoding(**description["encoding"]),
            dataset=description["dataset"],
            meta=description["meta"],
        )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot load model from {path} (and {sidecar_path(path).name}): {error}") from error


def output_spike_times(model: TTFSModel, features: np.ndarray) -> np.ndarray:
    """Output-layer first spike times (N, n_classes) for raw features (N, F)."""
    return network_spike_times_numpy(model.encoding.encode(features), model.weights, model.threshold)[-1]


def accuracy(model: TTFSModel, dataset: Dataset) -> float:
    """Fraction of samples whose first output spike is the label's."""
    return float(np.mean(predict(output_spike_times(model, dataset.features)) == dataset.labels))
