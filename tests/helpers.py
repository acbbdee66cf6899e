"""Small builders shared by the tests."""

import hashlib
import re
from pathlib import Path

import numpy as np

from snn_deploy.targets.encoding import TTFSEncoding
from snn_deploy.models.zoo import TTFSModel
from snn_deploy.targets import bitsim, description, lava
from snn_deploy.targets.bundle import Bundle
from snn_deploy.targets.record import SpikeEvents, SpikeRecord


def edited_target(folder: Path, substitutions: list[tuple[str, str]], base: str = "loihi1") -> Path:
    """A copy of a shipped target file in ``folder`` with each (line pattern, replacement) applied once."""
    text = (description.TARGET_DIR / f"{base}.toml").read_text()
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        assert count == 1, pattern
    path = folder / "edited.toml"
    path.write_text(text)
    return path


def target_fields(name: str = "loihi2") -> dict:
    """The fields a bundle takes from its target: its name, arithmetic widths and back ends."""
    target = description.load(name)
    return {"target": target.name, "widths": target.widths, "backends": target.backends}


def random_ttfs_model(seed: int = 0, hidden: int = 20) -> TTFSModel:
    """A Yin-Yang-shaped TTFS model with Fast & Deep's initial weight statistics (untrained)."""
    rng = np.random.RandomState(seed)
    weights = (rng.normal(1.5, 0.8, (hidden, 5)), rng.normal(0.5, 0.8, (3, hidden)))
    return TTFSModel(name="random", weights=weights, threshold=1.0, encoding=TTFSEncoding(), dataset="yinyang",
                     meta={})


def assert_records_equal(expected: SpikeRecord, actual: SpikeRecord, context: str = "") -> None:
    """Every spike, every trace value and every counter equal, population by population."""
    assert (actual.num_samples, actual.num_steps) == (expected.num_samples, expected.num_steps)
    assert actual.spikes.keys() == expected.spikes.keys()
    for name, events in expected.spikes.items():
        np.testing.assert_array_equal(actual.spikes[name].events, events.events,
                                      err_msg=f"spikes of {name} {context}")
        assert actual.counters[name] == expected.counters[name], f"counters of {name} {context}"
        for key, trace in expected.traces.get(name, {}).items():
            np.testing.assert_array_equal(actual.traces[name][key], trace, err_msg=f"{key} of {name} {context}")


def assert_lava_matches_bitsim(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = True,
                               context: str = "") -> tuple[SpikeRecord, SpikeRecord]:
    """Run both back ends on the same bundle and inputs; return (bitsim's, Lava's) equal records."""
    expected = bitsim.run(bundle, inputs, record_state=record_state)
    actual = lava.run(bundle, inputs, record_state=record_state)
    assert actual.backend == "lava" and actual.bundle_checksum == bundle.checksum
    assert_records_equal(expected, actual, context)
    return expected, actual


def padded(spikes: np.ndarray, num_steps: int) -> SpikeEvents:
    """The input spikes (samples, steps, channels), then silence up to ``num_steps``."""
    raster = np.zeros((spikes.shape[0], num_steps, spikes.shape[2]), bool)
    raster[:, :spikes.shape[1]] = spikes
    return SpikeEvents.from_raster(raster)


def snapshot(*folders: Path) -> dict:
    """Every file and folder below ``folders`` (hidden temp files too), with each file's sha256: equal
    snapshots mean nothing was created, deleted or changed."""
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
            for folder in folders for path in sorted(folder.rglob("*"))}


# --- the user's data in the real on-disk layouts, written here (no downloads, nothing copied from tonic) ----

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("p", np.int64), ("t", np.int64)])


def lif_graph(n_in: int, n_out: int, seed: int = 0, tau: float = 5.0):
    """Input(n_in) -> Affine -> LIF(n_out) -> Output, random excitatory weights (its semantics given as options)."""
    import nir

    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Input(np.array([n_in])), nir.Affine(weight=rng.uniform(0, 0.5, (n_out, n_in)), bias=np.zeros(n_out)),
        nir.LIF(tau=np.full(n_out, tau), r=np.ones(n_out), v_leak=np.zeros(n_out), v_threshold=np.ones(n_out)),
        nir.Output(np.array([n_out])))


def discrete_time_semantics(time_unit: str, horizon: float) -> dict:
    """How snnTorch-like discrete-time models run (the CLI's option names)."""
    return {"time_unit": time_unit, "fire_once": False, "reset": "zero", "decoding": "spike_count",
            "horizon": horizon, "spike": "pulse", "integration": "euler"}


def write_nmnist(root: Path, samples, split: str = "Test", archive: bool = False) -> Path:
    """N-MNIST as its archive unpacks: NMNIST/<split>/<digit>/<n>.bin, 5 bytes per event: x, y, then
    polarity in bit 7 of byte 2 and a 23-bit µs time stamp (byte2 & 0x7f) << 16 | byte3 << 8 | byte4.
    ``archive``: also the zip tonic downloads (its contents are not read)."""
    folder = root / "NMNIST"
    for number, (label, events) in enumerate(samples):
        raw = np.zeros((len(events), 5), np.uint8)
        t = events["t"].astype(np.int64)
        raw[:, 0], raw[:, 1] = events["x"], events["y"]
        raw[:, 2] = (events["p"] << 7) | ((t >> 16) & 0x7F)
        raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
        path = folder / split / str(label) / f"{number:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw.tobytes())
    if archive:
        (folder / f"{split.lower()}.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    return folder


def write_shd(path: Path, samples, classes: int = 20) -> None:
    """SHD's HDF5 file: spikes/times (variable-length float seconds), spikes/units (variable-length uint16
    channels 0-699), labels, extra/speaker, extra/keys."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for index, (_, events) in enumerate(samples):
            times[index] = events["t"].astype(np.float32)
            units[index] = events["x"].astype(np.uint16)
        f["labels"] = np.array([label for label, _ in samples], np.uint16)
        f["extra/speaker"] = np.zeros(len(samples), np.uint16)
        f["extra/keys"] = np.array([f"word {k}".encode() for k in range(classes)])


def write_dvsgesture(root: Path, samples, split: str = "ibmGestureTest", archive: bool = False) -> Path:
    """DVSGesture as tonic's archive unpacks: <split>/user<NN>_<lighting>/<label>.npy, columns x, y, p, t
    (t in ms). ``samples``: (user, lighting, label, events)."""
    folder = root / "DVSGesture"
    for user, lighting, label, events in samples:
        path = folder / split / f"user{user:02d}_{lighting}" / f"{label}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.stack([events["x"], events["y"], events["p"], events["t"]], axis=1).astype(np.float64))
    if archive:
        (folder / f"{split}.tar.gz").write_bytes(b"")
    return folder


def random_events(rng, count: int, width: int, height: int, polarities: int, t_max: float) -> np.ndarray:
    """Sorted random events of a sensor (x, y, p, t), t uniform in [0, t_max) rounded to whole units."""
    events = np.zeros(count, EVENT_DTYPE)
    events["x"], events["y"] = rng.integers(0, width, count), rng.integers(0, height, count)
    events["p"], events["t"] = rng.integers(0, polarities, count), np.sort(rng.integers(0, int(t_max), count))
    return events
