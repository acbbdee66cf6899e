"""Trained model checkpoints: an .npz of weights (weight_0, weight_1, ...) plus a JSON sidecar with the rest.

Two kinds: TTFSModel (Fast & Deep, models/ttfs.py) and MultiSpikeModel (Bacho & Chu, models/multispike.py); the
sidecar's "kind" tells them apart (absent = "ttfs", the format of the first checkpoints).

Models trained in another library are kept as the NIR graph that library exported (``graph_names``): the
user's path, which this project's exporter does not take (eventdigits-cnn, snnTorch's export).
"""

from __future__ import annotations

import json
import pathlib
import zipfile
from dataclasses import dataclass

import numpy as np

from ..targets.encoding import Encoding, encoding_description, encoding_from_description
from ..targets.files import atomic_path
from .data import Dataset
from .time_constants import TAU_MEM, TAU_SYN

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainedModel:
    """What every zoo model has: weights (n_out, n_in) per layer, the first layer fed by encoding.encode."""

    name: str
    weights: tuple[np.ndarray, ...]
    threshold: float
    encoding: Encoding
    dataset: str
    meta: dict


@dataclass(frozen=True)
class TTFSModel(TrainedModel):
    """A time-to-first-spike network (Fast & Deep, models/ttfs.py)."""


@dataclass(frozen=True)
class MultiSpikeModel(TrainedModel):
    """A multi-spike network (subtractive reset, tau_mem = 2 tau_syn, time in units of tau_mem): at most n_max[l]
    spikes per neuron of layer l, spikes after horizon dropped; decision = most output spikes (multispike.predict)."""

    n_max: tuple[int, ...]
    horizon: float
    tau_syn: float = TAU_SYN
    tau_mem: float = TAU_MEM


def zoo_dir() -> pathlib.Path:
    """Folder of the committed checkpoints."""
    return pathlib.Path(__file__).resolve().parent / "zoo"


def names() -> list[str]:
    """Names of the committed checkpoints."""
    return sorted(path.stem for path in zoo_dir().glob("*.npz"))


def graph_names() -> list[str]:
    """Names of the zoo models kept as the NIR graph their own library exported (<name>.nir with a JSON sidecar
    <name>.json: kind "nir", the data set, the compile options that state what NIR does not record, and meta)."""
    return sorted(path.stem for path in zoo_dir().glob("*.nir"))


def graph_path(name: str) -> pathlib.Path:
    """The .nir of a zoo graph."""
    if name not in graph_names():
        raise ValueError(f"unknown zoo graph {name!r}: zoo graphs are {', '.join(graph_names()) or '(none)'}")
    return zoo_dir() / f"{name}.nir"


def graph_description(name: str) -> dict:
    """The JSON sidecar of a zoo graph."""
    return json.loads(graph_path(name).with_suffix(".json").read_text())


def sidecar_path(npz_path) -> pathlib.Path:
    """<stem>.json next to <stem>.npz."""
    return pathlib.Path(npz_path).with_suffix(".json")


def _write_atomically(path: pathlib.Path, write) -> None:
    """Write through a temporary file in the same folder, then rename it over path (no partial output)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def save(model: TTFSModel | MultiSpikeModel, path, sidecar=None) -> None:
    """Save model as path (.npz, no pickled objects) and its JSON sidecar (at ``sidecar``, by default
    ``sidecar_path(path)``)."""
    path = pathlib.Path(path)
    arrays = {f"weight_{index}": np.asarray(weight, dtype=np.float64) for index, weight in enumerate(model.weights)}
    description = {
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "n_layers": len(model.weights),
        "threshold": model.threshold,
        "encoding": encoding_description(model.encoding),
        "dataset": model.dataset,
        "meta": model.meta,
    }
    if isinstance(model, MultiSpikeModel):
        description.update(kind="multispike", n_max=list(model.n_max), horizon=model.horizon,
                           tau_syn=model.tau_syn, tau_mem=model.tau_mem)
    text = json.dumps(description, indent=2, sort_keys=True) + "\n"
    _write_atomically(path, lambda handle: np.savez(handle, **arrays))
    _write_atomically(sidecar_path(path) if sidecar is None else pathlib.Path(sidecar),
                      lambda handle: handle.write(text.encode()))


def checkpoint_path(name_or_path: str) -> pathlib.Path:
    """The .npz of a zoo model name, or the path given."""
    if name_or_path in names():
        return zoo_dir() / f"{name_or_path}.npz"
    path = pathlib.Path(name_or_path)
    if path.suffix == ".npz" or path.exists():
        return path
    raise ValueError(f"unknown model {name_or_path!r}: zoo models are {', '.join(names()) or '(none)'}")


def load(name_or_path: str) -> TTFSModel | MultiSpikeModel:
    """Load a zoo model by name ("yinyang-ttfs") or from a path to an .npz with its JSON sidecar."""
    path = checkpoint_path(str(name_or_path))
    try:
        description = json.loads(sidecar_path(path).read_text())
        with np.load(path, allow_pickle=False) as archive:
            weights = tuple(archive[f"weight_{index}"].astype(np.float64) for index in range(description["n_layers"]))
        common = dict(
            name=description["name"],
            weights=weights,
            threshold=float(description["threshold"]),
            encoding=encoding_from_description(description["encoding"]),
            dataset=description["dataset"],
            meta=description["meta"],
        )
        kind = description.get("kind", "ttfs")
        if kind == "ttfs":
            return TTFSModel(**common)
        if kind == "multispike":
            tau_syn, tau_mem = float(description["tau_syn"]), float(description["tau_mem"])
            if tau_syn / tau_mem != TAU_SYN / TAU_MEM:  # the closed form's spike times solve for this ratio only
                raise ValueError(f"tau_syn / tau_mem is {tau_syn / tau_mem:g}; the multi-spike model's closed form "
                                 f"is for {TAU_SYN / TAU_MEM:g}")
            return MultiSpikeModel(**common, n_max=tuple(int(n) for n in description["n_max"]),
                                   horizon=float(description["horizon"]), tau_syn=tau_syn, tau_mem=tau_mem)
        raise ValueError(f"unknown model kind {kind!r}")
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot load model from {path} (and {sidecar_path(path).name}): {error}") from error


def output_spike_times(model: TTFSModel | MultiSpikeModel, features: np.ndarray) -> np.ndarray:
    """Output-layer spike times for raw features (N, F): first spikes (N, n_classes) of a TTFSModel, spike buffers
    (N, n_classes, n_max) of a MultiSpikeModel. The closed forms are torch's (imported here: loading, listing and
    exporting a checkpoint need no torch)."""
    from . import multispike, ttfs

    t_in = model.encoding.encode(features)
    if isinstance(model, MultiSpikeModel):
        return multispike.network_spike_times_numpy(t_in, model.weights, model.threshold, model.n_max,
                                                    model.horizon)[-1]
    return ttfs.network_spike_times_numpy(t_in, model.weights, model.threshold)[-1]


def accuracy(model: TTFSModel | MultiSpikeModel, dataset: Dataset) -> float:
    """Fraction of samples decided correctly: first output spike (TTFS), most output spikes (multi-spike)."""
    from . import multispike, ttfs

    decide = multispike.predict if isinstance(model, MultiSpikeModel) else ttfs.predict
    return float(np.mean(decide(output_spike_times(model, dataset.features)) == dataset.labels))
