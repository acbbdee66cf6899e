"""What goes into a back end and what comes out: input spikes and the spike record.

Both are compact: spikes are stored as events (sample, step, neuron), not as dense
samples x steps x neurons arrays, so long runs over large data sets stay small.
Steps count from 1, as in Lava.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The bytes a pass over a batch of samples may take in its per-sample tables (first spike steps and counts
# here, the energy model's (samples, steps, cores) tables, verify's divergence keys): such passes go over
# the samples in batches of about this size, so that their memory does not grow with the number of samples.
# The results do not depend on it (tests/test_streaming.py runs verify with one sample per batch).
BATCH_BYTES = 64 * 2**20


def samples_per_batch(bytes_per_sample: int) -> int:
    """How many samples one batch of a pass holds: BATCH_BYTES over what a sample takes, at least one."""
    return max(1, BATCH_BYTES // max(1, int(bytes_per_sample)))


def sorted_events(sample, step, neuron) -> np.ndarray:
    """Events as a (3, n) int32 array of rows sample, step, neuron, sorted in that order."""
    events = np.stack([np.asarray(sample), np.asarray(step), np.asarray(neuron)]).astype(np.int32)
    order = np.lexsort((events[2], events[1], events[0]))
    events = np.ascontiguousarray(events[:, order])
    events.setflags(write=False)
    return events


@dataclass(frozen=True)
class SpikeEvents:
    """Spikes of one population as a (3, n) int32 array of rows sample, step, neuron, sorted in
    that order (``from_arrays`` and ``load`` sort)."""

    events: np.ndarray
    num_samples: int
    num_steps: int
    size: int

    @classmethod
    def from_arrays(cls, sample, step, neuron, num_samples: int, num_steps: int, size: int) -> "SpikeEvents":
        return cls(sorted_events(sample, step, neuron), num_samples, num_steps, size)

    @classmethod
    def from_raster(cls, raster: np.ndarray) -> "SpikeEvents":
        """From a boolean (samples, steps, neurons) raster whose index 0 is step 1."""
        sample, step, neuron = np.nonzero(raster)
        return cls.from_arrays(sample, step + 1, neuron, *raster.shape)

    @classmethod
    def from_blocks(cls, blocks: list[np.ndarray], num_samples: int, num_steps: int, size: int) -> "SpikeEvents":
        """From sorted (3, n) int32 blocks of events (``sorted_events``), each of later samples than the one
        before (a run's batches): joined without sorting again, so that a large run's events are never held
        as int64 or through a global sort. Empties the list ``blocks``."""
        filled = [block for block in blocks if block.shape[1]]
        for before, after in zip(filled, filled[1:]):
            if after[0, 0] <= before[0, -1]:
                raise ValueError("event blocks must hold ever later samples")
        # Each block is copied into place and let go (``blocks`` is emptied): the blocks and the joined events
        # are not both held whole, only the joined ones' pages written so far.
        events = np.empty((3, sum(block.shape[1] for block in filled)), np.int32)
        blocks.clear()
        end = 0
        while filled:
            block = filled.pop(0)
            events[:, end:end + block.shape[1]] = block
            end += block.shape[1]
            del block
        events.setflags(write=False)
        return cls(events, num_samples, num_steps, size)

    def first_spike_steps(self) -> np.ndarray:
        """(samples, neurons) step of each neuron's first spike; -1 where it never fired."""
        first = np.full((self.num_samples, self.size), -1, dtype=np.int32)
        for start, events in self._event_batches():
            sample, step, neuron = events
            # Events are sorted by step within a sample: each (sample, neuron)'s first occurrence is its earliest
            # spike. (Assigning all of them, in reverse, is not that: numpy leaves unspecified which of repeated
            # indices' values an assignment keeps, and for large arrays it is not always the last.)
            keys, first_index = np.unique(sample.astype(np.int64) * self.size + neuron, return_index=True)
            first.flat[keys] = step[first_index]
        return first

    def counts(self) -> np.ndarray:
        """(samples, neurons) number of spikes."""
        counts = np.zeros((self.num_samples, self.size), dtype=np.int32)
        for start, events in self._event_batches():
            found = np.bincount((events[0].astype(np.int64) - start) * self.size + events[2])
            counts.flat[start * self.size:start * self.size + found.size] = found
        return counts

    def neuron_counts(self) -> np.ndarray:
        """(neurons,) int64 spikes of each neuron over all samples."""
        # In passes: bincount would take an int64 copy of all the neuron numbers at once.
        total = np.zeros(self.size, np.int64)
        per_pass = max(1, BATCH_BYTES // 8)
        for begin in range(0, self.events.shape[1], per_pass):
            total += np.bincount(self.events[2, begin:begin + per_pass], minlength=self.size)
        return total

    def _event_batches(self):
        """(first sample, its events) of consecutive sample ranges, each within BATCH_BYTES: a (samples,
        neurons) pass goes over them one at a time (events are sorted by sample). The samples stay numbered
        as in the whole."""
        # Per event: its int64 key, unique's sort order and sorted copy (np.unique), about 32 bytes.
        per_batch = samples_per_batch(32 * self.events.shape[1] // max(self.num_samples, 1) + 8 * self.size)
        bounds = self.sample_bounds(np.arange(0, self.num_samples + per_batch, per_batch))
        for index, (first, last) in enumerate(zip(bounds[:-1], bounds[1:])):
            if last > first:
                yield index * per_batch, self.events[:, first:last]

    def sample_bounds(self, samples) -> np.ndarray:
        """The index of each of ``samples``' first event (where it would be, for a sample without events)."""
        # Searched for in the events' own int32 (numpy would search a whole int64 copy of them otherwise);
        # every event's sample is below num_samples, so a larger one finds the end as num_samples does.
        return np.searchsorted(self.events[0], np.clip(samples, 0, self.num_samples).astype(np.int32))

    def sample_range(self, start: int, stop: int) -> "SpikeEvents":
        """Samples [start, stop), renumbered from 0 (events are sorted by sample, so they are one slice)."""
        first, last = self.sample_bounds([start, stop])
        part = self.events[:, first:last].copy()
        part[0] -= start
        part.setflags(write=False)
        return SpikeEvents(part, stop - start, self.num_steps, self.size)

    def raster(self, samples: slice = slice(None)) -> np.ndarray:
        """Dense boolean (samples, steps, neurons) raster of a slice of samples."""
        start, stop, _ = samples.indices(self.num_samples)
        out = np.zeros((stop - start, self.num_steps, self.size), dtype=bool)
        # Events are sorted by sample, so this slice of samples is one contiguous run of events.
        first, last = self.sample_bounds([start, stop])
        sample, step, neuron = self.events[:, first:last]
        out[sample - start, step - 1, neuron] = True
        return out


@dataclass(frozen=True)
class SpikeRecord:
    """The output of one back-end run over a set of samples.

    ``spikes`` maps each population name to its events; ``counters`` maps it to the hardware
    events counted during the run (24-bit current wraps, voltage saturations), never silent.
    ``traces`` holds the (samples, steps, neurons) u and v of each population when a run is asked to record its
    state, and always the v of a readout population (``bundle.LifPopulation.readout``): its membrane, the output.
    ``selection`` names the data selection the inputs came from (``deploy.artifacts.stimulus.Stimulus``).
    """

    backend: str
    bundle_checksum: str
    num_samples: int
    num_steps: int
    spikes: dict[str, SpikeEvents]
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    traces: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    selection: str = ""

    def membrane(self, name: str) -> np.ndarray:
        """The (samples, steps, neurons) int32 membrane v of population ``name`` on every step (a readout's is
        always recorded); KeyError naming it when the record has none."""
        try:
            return self.traces[name]["v"]
        except KeyError:
            raise KeyError(f"the record holds no membrane trace of {name!r} (a readout's, or a run with its state "
                           "recorded)") from None


RECORD_FORMAT = "snn-deploy-record"
RECORD_FORMAT_VERSION = 1


class RecordError(ValueError):
    """A spike record that is missing, corrupt or of an unknown format."""


def save(record: SpikeRecord, path) -> None:
    """Write a spike record as HDF5 (h5py comes with nir), atomically, with its bundle's checksum.

    Attributes hold the header as JSON; ``spikes/<population>`` the (3, n) events;
    ``traces/<population>/<u|v>`` the optional state traces.
    """
    import json

    import h5py

    from .files import atomic_path

    header = {"format": RECORD_FORMAT, "format_version": RECORD_FORMAT_VERSION, "backend": record.backend,
              "bundle_checksum": record.bundle_checksum, "num_samples": record.num_samples,
              "num_steps": record.num_steps, "counters": record.counters, "selection": record.selection,
              "populations": {name: s.size for name, s in record.spikes.items()}}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["header"] = json.dumps(header)
        for name, events in record.spikes.items():
            f.create_dataset(f"spikes/{name}", data=events.events, compression="gzip")
        _save_traces(f, "traces", record.traces)


# The record in NIR's data format: the root's attribute holding the header, the observable holding a node's
# spikes, and the group of the populations the compiler made (the bias relays), which are no NIR node.
NIR_DATA_HEADER = "snn_deploy_record"
NIR_DATA_OBSERVABLE = "spikes"
NIR_DATA_EXTRA = "snn_deploy_populations"
# The group of the state traces (a readout's membrane, or everything a run recorded): NIR data has no observable
# for them that nir.read_data would read back as the integers they are.
NIR_DATA_TRACES = "snn_deploy_traces"


def _event_data(events: SpikeEvents, dt: float):
    """SpikeEvents as NIR EventData: per sample a row of neuron indices (-1 past its last spike) and times,
    a spike in chip step n at (n - 1/2) dt, the middle of its step, so that nir's ``to_time_gridded(dt)``
    gives the same raster back (step n at index n - 1)."""
    import nir

    sample, step, neuron = events.events.astype(np.int64)
    counts = np.bincount(sample, minlength=events.num_samples)
    width = max(int(counts.max(initial=0)), 1)
    column = np.arange(sample.size) - (np.cumsum(counts) - counts)[sample]
    idx = np.full((events.num_samples, width), -1, np.int64)
    time = np.full((events.num_samples, width), np.inf)
    idx[sample, column] = neuron
    time[sample, column] = (step - 0.5) * dt
    return nir.EventData(idx=idx, time=time, n_neurons=events.size, t_max=events.num_steps * dt)


def save_nir_data(record: SpikeRecord, inputs: SpikeEvents, bundle, path) -> None:
    """Write a spike record as NIR data (``nir.write_data``; ``nir.read_data`` reads it): the input node's and
    every NIR node's spikes as EventData (observable "spikes"), keyed by NIR node name, times in the graph's
    time unit. The header (bundle checksum, data selection, counters, dt) is the root's attribute
    ``snn_deploy_record``, and the compiler's own populations (the bias relays) are EventData groups under
    ``snn_deploy_populations``, and the state traces (a readout's membrane) under ``snn_deploy_traces``, as the
    HDF5 record's: nir.read_data reads none of them, ``load`` all, so that ``--replay`` checks the record as it
    checks the HDF5 one."""
    import json

    import h5py
    import nir

    from .files import atomic_path

    dt = bundle.timing.dt
    input_name = bundle.network.input.name
    nir_nodes = {name: events for name, events in record.spikes.items() if name in bundle.source.nodes}
    data = nir.NIRGraphData({name: nir.NIRNodeData({NIR_DATA_OBSERVABLE: _event_data(events, dt)})
                             for name, events in {input_name: inputs, **nir_nodes}.items()})
    header = {"format": RECORD_FORMAT, "format_version": RECORD_FORMAT_VERSION, "backend": record.backend,
              "bundle_checksum": record.bundle_checksum, "num_samples": record.num_samples,
              "num_steps": record.num_steps, "counters": record.counters, "selection": record.selection,
              "populations": {name: s.size for name, s in record.spikes.items()}, "input": input_name, "dt": dt,
              "time_unit": bundle.timing.time_unit}
    with atomic_path(path) as tmp:
        nir.write_data(tmp, data)
        with h5py.File(tmp, "a") as f:
            f.attrs[NIR_DATA_HEADER] = json.dumps(header)
            for name, events in record.spikes.items():
                if name not in nir_nodes:
                    extra = _event_data(events, dt)
                    f.create_dataset(f"{NIR_DATA_EXTRA}/{name}/idx", data=extra.idx, compression="gzip")
                    f.create_dataset(f"{NIR_DATA_EXTRA}/{name}/time", data=extra.time, compression="gzip")
            _save_traces(f, NIR_DATA_TRACES, record.traces)


def _save_traces(f, group: str, traces: dict[str, dict[str, np.ndarray]]) -> None:
    for name, per in traces.items():
        for key, value in per.items():
            f.create_dataset(f"{group}/{name}/{key}", data=value, compression="gzip")


def _nir_data_events(group, dt: float) -> np.ndarray:
    """EventData (idx, time) -> (3, n) sample, step, neuron rows: time t in step floor(t / dt) + 1."""
    idx, time = np.array(group["idx"]), np.array(group["time"])
    sample, column = np.nonzero(idx >= 0)
    return np.stack([sample, np.floor(time[sample, column] / dt) + 1, idx[sample, column]]).astype(np.int64)


# Events are stored as int32 (``_events``): every sample, step and neuron index must fit.
MAX_INDEX = int(np.iinfo(np.int32).max)


def _count(table: dict, key: str) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INDEX:
        raise RecordError(f"its header's {key} must be a whole number in [1, {MAX_INDEX}], got {value!r}")
    return value


def _checked_events(name: str, array: np.ndarray, num_samples: int, num_steps: int, size: int) -> SpikeEvents:
    """A population's stored events, refused unless every (sample, step, neuron) lies within the run,
    and sorted (the readers rely on the order; a record written elsewhere, e.g. on a chip, need not have it)."""
    if array.ndim != 2 or array.shape[0] != 3 or array.dtype.kind not in "iu":
        raise RecordError(f"spikes/{name} must be a (3, n) integer array, got {array.shape} {array.dtype}")
    for row, what, low, high in ((0, "sample", 0, num_samples - 1), (1, "step", 1, num_steps),
                                 (2, "neuron", 0, size - 1)):
        outside = (array[row] < low) | (array[row] > high)
        if outside.any():
            bad = array[row][outside][0]
            raise RecordError(f"spikes/{name} has a spike at {what} {int(bad)}, outside [{low}, {high}]")
    events = SpikeEvents.from_arrays(*array, num_samples=num_samples, num_steps=num_steps, size=size)
    if np.any(np.all(events.events[:, 1:] == events.events[:, :-1], axis=0)):
        raise RecordError(f"spikes/{name} lists one spike twice (a neuron spikes at most once per step)")
    return events


def _checked_traces(name: str, group, num_samples: int, num_steps: int, size: int) -> dict[str, np.ndarray]:
    traces = {key: np.array(value) for key, value in group.items()}
    for key, value in traces.items():
        if value.shape != (num_samples, num_steps, size):
            raise RecordError(f"traces/{name}/{key} has shape {value.shape}, expected "
                              f"{(num_samples, num_steps, size)}")
    return traces


def load(path) -> SpikeRecord:
    """Read a spike record (the HDF5 record of ``save`` or the NIR data of ``save_nir_data``), checked: a
    missing, corrupt or inconsistent file is a one-line RecordError."""
    import json
    from pathlib import Path

    import h5py

    path = Path(path)
    if not path.is_file():
        raise RecordError(f"spike record not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            nir_data = NIR_DATA_HEADER in f.attrs
            header = json.loads(f.attrs[NIR_DATA_HEADER if nir_data else "header"])
            if not isinstance(header, dict) or header.get("format") != RECORD_FORMAT:
                raise RecordError(f"{path} is not an snn-deploy spike record")
            if header.get("format_version") != RECORD_FORMAT_VERSION:
                raise RecordError(f"{path} has record format version {header.get('format_version')}; "
                                  f"this snn-deploy reads version {RECORD_FORMAT_VERSION}")
            try:
                num_samples, num_steps = _count(header, "num_samples"), _count(header, "num_steps")
                populations = header["populations"]
                if not isinstance(populations, dict) or not isinstance(header.get("counters"), dict):
                    raise RecordError("its header's populations and counters must be tables")
                if not all(isinstance(header.get(key), str) for key in ("backend", "bundle_checksum")):
                    raise RecordError("its header's backend and bundle_checksum must be strings")
                sizes = {name: _count(populations, name) for name in populations}
                if nir_data:
                    groups = {name: f[f"nodes/{name}/observables/{NIR_DATA_OBSERVABLE}"] if f"nodes/{name}" in f
                              else f[f"{NIR_DATA_EXTRA}/{name}"] for name in sizes}
                    stored = {name: _nir_data_events(group, float(header["dt"])) for name, group in groups.items()}
                else:
                    stored = {name: np.array(f[f"spikes/{name}"]) for name in sizes}
                spikes = {name: _checked_events(name, stored[name], num_samples, num_steps, size)
                          for name, size in sizes.items()}
                trace_group = NIR_DATA_TRACES if nir_data else "traces"
                traces = {name: _checked_traces(name, group, num_samples, num_steps, sizes[name])
                          for name, group in f[trace_group].items()} if trace_group in f else {}
            except RecordError as exc:
                raise RecordError(f"{path}: {exc}") from None
            return SpikeRecord(backend=header["backend"], bundle_checksum=header["bundle_checksum"],
                               num_samples=num_samples, num_steps=num_steps, spikes=spikes,
                               counters=header["counters"], traces=traces, selection=header.get("selection", ""))
    except RecordError:
        raise
    except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path} is not a readable snn-deploy spike record ({exc.__class__.__name__})") from None
