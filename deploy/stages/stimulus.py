"""stimulus: a data selection -> the input spikes a run is fed (``artifacts.stimulus.Stimulus``).

A labelled data set is encoded by the bundle's input encoding into continuous spike times, then
chip steps; random spike trains are drawn directly in chip steps.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import zipfile
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ...targets import schedule
from ...targets.encoding import encoding_description
from ...targets.record import SpikeEvents
from ..artifacts.semantics import input_encoding
from ..artifacts.stimulus import DataOptions, DataReport, DataSpec, Stimulus
from ..errors import DeployError, require_extra


def graph_encoding(model_encoding, dataset: str) -> dict:
    """The graph metadata's "encoding" entry for a zoo model's encoding (``targets.encoding``)."""
    fields = {name: value for name, value in encoding_description(model_encoding).items() if name != "t_bias"}
    return {"kind": "ttfs_linear", **fields, "bias_times": [model_encoding.t_bias], "dataset": dataset}


def input_times(encoding: dict, features: np.ndarray) -> np.ndarray:
    """(samples, features) in [0, 1] -> (samples, inputs) spike times in the graph's time unit.

    The encodings are the models' own (``targets.encoding``): the graph's metadata names one.
    """
    if not encoding:
        raise DeployError("the graph states no input encoding, so a data set cannot be fed to it "
                          "(it takes input spike trains)")
    model_encoding = input_encoding(encoding)
    features = np.asarray(features, dtype=np.float64)
    if not np.all(np.isfinite(features)):
        raise DeployError("input features contain NaN or infinity")
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


RANDOM_DATA = "random"
DEFAULT_RANDOM_RATE = 0.05  # spikes per channel and step


def random_spec(spec: str) -> dict | None:
    """Parse "random" or "random:rate=0.05,seed=0" (None for any other data spec)."""
    name, _, options = spec.partition(":")
    if name != RANDOM_DATA:
        return None
    values = {"rate": DEFAULT_RANDOM_RATE, "seed": 0}
    for item in filter(None, options.split(",")):
        key, _, text = item.partition("=")
        if key not in values:
            raise DeployError(f"random data takes rate= and seed=, not {key!r} (e.g. random:rate=0.05,seed=0)")
        try:
            values[key] = type(values[key])(text)
        except ValueError:
            kind = "whole number" if key == "seed" else "number"
            raise DeployError(f"random data: {key}={text!r} is not a {kind}") from None
    if not 0 < values["rate"] <= 1:
        raise DeployError(f"random data: rate must be in (0, 1] spikes per step, got {values['rate']}")
    if values["seed"] < 0:
        raise DeployError(f"random data: seed must be a whole number >= 0, got {values['seed']}")
    return values


def random_spike_trains(size: int, num_samples: int, num_steps: int, rate: float, seed: int,
                        first: int = 0) -> SpikeEvents:
    """Seeded Bernoulli spike trains: each channel spikes in each step with probability ``rate``. ``first``:
    these are samples [first, first + num_samples) of the seed's sequence, numbered from 0 (what a worker of a
    split verification draws)."""
    rng = np.random.default_rng(seed)
    # Each float64 draw takes one 64-bit output of the generator (PCG64): skip the earlier samples' draws.
    rng.bit_generator.advance(first * num_steps * size)
    parts = []
    for sample in range(num_samples):  # one sample at a time: a whole raster of floats can be gigabytes
        step, channel = np.nonzero(rng.random((num_steps, size)) < rate)
        parts.append((np.full(step.size, sample), step + 1, channel))
    sample, step, channel = (np.concatenate(a) for a in zip(*parts))
    return SpikeEvents.from_arrays(sample, step, channel, num_samples=num_samples, num_steps=num_steps, size=size)


DEFAULT_RANDOM_SAMPLES = 100


def load_data(spec: str, samples: int | None):
    """A data set split ("yinyang:test"), its first ``samples`` samples if given."""
    from ...models import data

    try:
        dataset = data.load(spec)
    except ValueError as exc:
        raise DeployError(str(exc).splitlines()[0]) from None
    if samples is not None:
        count = _sample_count(samples, dataset.labels.size, dataset.name)
        dataset = type(dataset)(name=dataset.name, features=dataset.features[:count],
                                labels=dataset.labels[:count], n_classes=dataset.n_classes)
    return dataset


def available_memory() -> tuple[int, str]:
    """The bytes of memory this machine has available now, and where that figure comes from."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except OSError:  # not Linux
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical pages"


def _size(num_bytes: float) -> str:
    """1536 -> "1.5 KiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = 0
    while num_bytes >= 1024 and power < len(units) - 1:
        num_bytes /= 1024
        power += 1
    return f"{num_bytes:.3g} {units[power]}"


def run_memory(bundle, num_samples: int, *, input_events: int, record_state: bool = False,
               references: bool = False) -> dict[str, int]:
    """The bytes a run of ``bundle`` over ``num_samples`` samples needs at its peak, estimated before
    anything is allocated, by what holds them: the back end's run as bitsim allocates it
    (``schedule.run_memory``; a Lava worker process is not counted) and, for verify, the float references."""
    sizes = [pop.size for pop in bundle.network.populations]
    # One spike per neuron and sample: all a fire-once neuron can send, a lower bound for the others.
    output_events = num_samples * sum(sizes)
    memory = schedule.run_memory(bundle.network.input.size, sizes, num_samples, bundle.timing.num_steps,
                                 spike_events=input_events + output_events, record_state=record_state)
    if references:
        # The discrete reference runs after the back end (its batches then reuse the back end's room)
        # and adds its spike events; verify keeps four (samples, neurons) float64 tables of spike times
        # (chip, discrete, float, and the continuous reference's).
        memory["float references"] = output_events * (schedule.EVENT_BYTES + 4 * 8)
    return memory


def check_memory(memory: dict[str, int]) -> None:
    """Refuse a run whose estimated memory exceeds what the machine has available."""
    needed = sum(memory.values())
    available, source = available_memory()
    if needed > available:
        parts = ", ".join(f"{what} {_size(size)}" for what, size in memory.items() if size)
        raise DeployError(f"this run needs an estimated {_size(needed)} of memory ({parts}), more than the "
                          f"{_size(available)} available ({source}); use fewer --samples, or a bundle with "
                          "fewer steps per sample (a shorter --duration or a larger --dt)")


def load_stimulus(data, samples: int | None, bundle, *, options: DataOptions = DataOptions(),
                  record_state: bool = False, references: bool = False) -> Stimulus:
    """The input spikes a run of ``bundle`` is fed, from any data source (``data``):

      "yinyang:test", "digits:test"        a shipped data set, encoded by the bundle's input encoding;
      "eventdigits:test"                   a shipped event data set, read as a tonic data set is;
      "random[:rate=0.05,seed=0]"          seeded random spike trains;
      "nmnist:test", "shd:test", "ssc:test", "dvsgesture:test"
                                           a tonic event data set in the folder ``options.data_root``;
      a ``.npz`` file, or NIR data (``.h5``) the user's spikes (``npz_source``, ``nir_data_source``);
      from Python also a raster, a SpikeEvents, NIR data, a tonic data set object, or a (samples, features)
      array of features for the bundle's encoding.

    A run over it that would not fit in memory (``run_memory``: ``record_state`` traces, the float
    ``references`` of verify) is refused before it runs; random spike trains before any is drawn.
    """
    if isinstance(data, str) and random_spec(data) is not None:
        _no_data_options(options, "random spike trains")
        return _random_stimulus(random_spec(data), samples, bundle, record_state, references)
    from ...models import data as data_sets

    if isinstance(data, str) and data.partition(":")[0] in data_sets.LOADERS:
        _no_data_options(options, data)
        dataset = load_data(data, samples)
        return _features_stimulus(dataset.name, dataset.features, dataset.labels, bundle, record_state, references)
    if isinstance(data, np.ndarray) and data.ndim == 2:  # features, as verify(net, bundle, features, labels) takes
        _no_data_options(replace(options, labels=None), "input features")
        what = "the features array"
        features, labels = _first(data, samples, what), None
        if options.labels is not None:
            labels = _checked_labels(*_labels_option(options), data.shape[0], bundle, what)[:features.shape[0]]
        return _features_stimulus(f"features {_digest(features)}", features, labels, bundle, record_state, references)
    source = event_source(data, bundle, options)
    return _events_stimulus(source, samples, bundle, options, record_state, references)


def select_data(data, samples: int | None, bundle, *, options: DataOptions = DataOptions(),
                references: bool = False, split: bool = False) -> Stimulus | DataSpec:
    """What a verification runs on: with ``split`` (the samples split between workers) and data named by a
    spec the workers can load their parts of (``by_name``), the ``DataSpec`` alone, no sample read; else
    ``load_stimulus``."""
    if split and by_name(data):
        return data_spec(data, samples, bundle, options)
    return load_stimulus(data, samples, bundle, options=options, references=references)


def by_name(data) -> bool:
    """Data a worker loads its own samples of: given by name or path (a data set split, random spike trains, a
    file, a tonic data set folder), not an object in this process's memory."""
    return isinstance(data, (str, Path))


def data_spec(data: str | Path, samples: int | None, bundle, options: DataOptions = DataOptions()) -> DataSpec:
    """The selection ``load_stimulus(data, samples)`` makes, named, counted and checked, with no input spike
    encoded, drawn or read (a shipped data set's features are read, to count them; a file's header, or an
    events file's arrays). Paths are made absolute: the workers may run elsewhere."""
    random = random_spec(str(data))
    if random is not None:
        _no_data_options(options, "random spike trains")
        return DataSpec(str(data), samples, options, _random_count(samples), _random_name(random), labelled=False)
    from ...models import data as data_sets

    if str(data).partition(":")[0] in data_sets.LOADERS:
        _no_data_options(options, str(data))
        dataset = load_data(str(data), samples)
        return DataSpec(str(data), samples, options, int(dataset.labels.size), dataset.name, labelled=True)
    absolute = [str(Path(path).resolve()) if isinstance(path, (str, os.PathLike)) else path
                for path in (options.labels, options.data_root)]
    options = replace(options, labels=absolute[0], data_root=absolute[1])
    if Path(data).is_file():
        data = Path(data).resolve()
    source = event_source(data, bundle, options)
    count, labelled = _selected(source, samples, bundle, options)
    return DataSpec(str(data), samples, options, count, source.name, labelled)


def load_stimulus_part(spec: DataSpec, bundle, start: int, stop: int, *, references: bool = False) -> Stimulus:
    """Samples [start, stop) of ``spec``'s selection, numbered from 0: the same input spikes, labels and input
    times as that range of ``load_stimulus(spec.data, spec.samples)``, read without the other samples (an
    .npz raster streamed past them; a shipped data set's features are read whole, and encoded in part)."""
    if not 0 <= start < stop <= spec.num_samples:
        raise DeployError(f"samples {start}-{stop - 1} are not within {spec.name}'s {spec.num_samples}")
    random = random_spec(spec.data)
    if random is not None:
        return _random_stimulus(random, stop - start, bundle, False, references, first=start)
    from ...models import data as data_sets

    if spec.data.partition(":")[0] in data_sets.LOADERS:
        dataset = load_data(spec.data, spec.samples)
        return _features_stimulus(dataset.name, dataset.features[start:stop], dataset.labels[start:stop], bundle,
                                  False, references, first=start)
    return _events_stimulus(event_source(spec.data, bundle, spec.options), spec.samples, bundle, spec.options, False,
                            references, part=(start, stop))


def require_labels(stimulus: Stimulus | DataSpec, why: str) -> None:
    """Accuracy needs labels: data without them are refused where it is asked for."""
    if not stimulus.labelled:
        raise DeployError(f"{why} needs labels; {stimulus.name} has none (give them in the data, or as --labels "
                          "FILE, a .npy or .npz)")


def _first(array: np.ndarray, samples: int | None, what: str) -> np.ndarray:
    return array[:_sample_count(samples, array.shape[0], what)]


def _sample_count(samples: int | None, available: int, what: str) -> int:
    """How many of the data's first samples are used: all, or ``--samples``. Every source's count passes here, so
    data without samples are refused here (a run over none would judge nothing)."""
    if samples is not None and samples < 1:
        raise DeployError(f"--samples must be at least 1, got {samples}")
    if available == 0:
        raise DeployError(f"{what} holds no samples")
    if samples is None:
        return available
    if samples > available:
        raise DeployError(f"--samples {samples} asks for more samples than {what} has ({available})")
    return samples


def reading_arguments(options: DataOptions) -> list[str]:
    """``options`` but the labels, as the command line gives them (compile's --calibrate takes these), quoted for a
    shell."""
    given = replace(options, labels=None,
                    downsample=None if options.downsample is None else "x".join(map(str, options.downsample))).given()
    return [f"{option} {shlex.quote(str(value))}" for option, value in given.items()]


def _no_data_options(options: DataOptions, what: str) -> None:
    given = list(options.given())
    if given:
        raise DeployError(f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to the user's data "
                          f"(files, arrays, tonic data sets), not to {what}")


def _random_count(samples: int | None) -> int:
    count = DEFAULT_RANDOM_SAMPLES if samples is None else samples
    if count < 1:
        raise DeployError(f"--samples must be at least 1, got {count}")
    return count


def _random_name(random: dict) -> str:
    return f"random spike trains (rate {random['rate']:g} per step, seed {random['seed']})"


def _random_stimulus(random: dict, samples: int | None, bundle, record_state: bool, references: bool,
                     first: int = 0) -> Stimulus:
    """``first``: the samples are [first, first + samples) of the seed's sequence (a worker's part)."""
    timing, size = bundle.timing, bundle.network.input.size
    count = _random_count(samples)
    expected_events = math.ceil(random["rate"] * count * timing.num_steps * size)
    memory = run_memory(bundle, count, input_events=expected_events, record_state=record_state,
                        references=references)
    # The spike trains are drawn one sample at a time: float64 draws and their comparison.
    memory["random draws per sample"] = (8 + 1) * timing.num_steps * size
    check_memory(memory)
    inputs = random_spike_trains(size, count, timing.num_steps, random["rate"], random["seed"], first)
    return Stimulus(_random_name(random), inputs,
                    selection=_selection(f"{RANDOM_DATA}:rate={random['rate']!r},seed={random['seed']}", count, first))


def _features_stimulus(name: str, features: np.ndarray, labels, bundle, record_state: bool,
                       references: bool, first: int = 0) -> Stimulus:
    # Every encoding is a latency code (``SINGLE_SPIKE_ENCODINGS``): at most one spike per channel and sample.
    count = features.shape[0]
    check_memory(run_memory(bundle, count, input_events=count * bundle.network.input.size,
                            record_state=record_state, references=references))
    times, inputs = encode(bundle, features)
    return Stimulus(name, inputs, labels, times, selection=_selection(name, count, first))


def _digest(array: np.ndarray) -> str:
    """A short content hash: what names in-memory data in a selection."""
    # Hashed in place: the bytes tobytes() would copy, as a uint8 view.
    return "sha256 " + hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()[:16]


# --- the user's data: every source gives batches of input events -------------------------------------------

@dataclass(frozen=True)
class EventSource:
    """The user's input data, read in batches of whole samples, in sample order.

    ``batches(start, stop)`` yields, for samples [start, stop), tuples (sample, bin, channel, counts): numpy
    arrays of one entry per event or group of events, ``sample`` the index in the data (not from ``start``),
    ``bin`` the 0-based step (the first step is 0; a time-stamped event was binned by ``time_mapping``),
    ``counts`` how many events each entry stands for (None: one each). ``channels``: the channels the data say
    they have (None: unstated); ``steps`` likewise their steps; ``data_root`` the folder read (a tonic data set's).
    ``labels``: one per sample of the data, or a function giving those of samples [start, stop) (where they are
    read with the samples)."""

    name: str
    description: str
    num_samples: int
    channels: int | None
    labels: np.ndarray | Callable[[int, int], np.ndarray] | None
    batches: Callable[[int, int], Iterator[tuple]]
    time_mapping: str
    time_scale: float | None = None
    time_scale_given: bool = False
    downsample: tuple[int, int] | None = None
    steps: int | None = None
    data_root: Path | None = None


def event_source(data, bundle, options: DataOptions) -> EventSource:
    """The one dispatcher over the user's data: which source reads ``data``."""
    import nir

    from ...models import data as data_sets

    if isinstance(data, (str, Path)):
        spec = str(data)
        name, _, split = spec.partition(":")
        if name in TONIC_DATA_SETS:
            return tonic_folder_source(name, split, bundle, options)
        if name in data_sets.EVENT_LOADERS:  # a shipped event data set: read as a tonic data set is
            try:
                dataset = data_sets.load_events(spec)
            except ValueError as exc:
                raise DeployError(str(exc).splitlines()[0]) from None
            return tonic_source(dataset, spec, range(len(dataset)), bundle, options, kind=name)
        path = Path(spec)
        if path.suffix == ".npz":
            return npz_source(path, bundle, options)
        if path.suffix in NIR_DATA_SUFFIXES:
            return nir_data_source(path, bundle, options)
        raise DeployError(f"unknown data set {spec!r}: give a data set split ("
                          f"{', '.join([*data_sets.LOADERS, *data_sets.EVENT_LOADERS])}:"
                          f"{'|'.join(data_sets.SPLITS)}), a tonic data set in a folder ("
                          f"{', '.join(f'{n}:test' for n in TONIC_DATA_SETS)} with --data-root DIR), a .npz file, "
                          f"NIR data ({', '.join(NIR_DATA_SUFFIXES)}), or random[:rate=0.05,seed=0]")
    if isinstance(data, np.ndarray):
        if data.ndim != 3:
            raise DeployError(f"an array of input spikes is a (samples, steps, channels) raster; got shape {data.shape}")
        return raster_source("numpy raster", data.shape, lambda start, stop: data[start:stop],
                             None, bundle, options, data_dt=None)
    if isinstance(data, SpikeEvents):
        return spike_events_source(data, bundle, options)
    if isinstance(data, (nir.NIRGraphData, nir.NIRNodeData, nir.EventData, nir.TimeGriddedData)):
        return nir_data_source(data, bundle, options)
    if all(hasattr(data, attribute) for attribute in ("sensor_size", "__getitem__", "__len__")):
        return tonic_source(data, type(data).__name__, range(len(data)), bundle, options)
    raise DeployError(f"cannot read input data from a {type(data).__name__}: give a data set name, a file, a "
                      "(samples, steps, channels) raster, a SpikeEvents, NIR data or a tonic data set")


# The options that apply to some of the user's data only: per DataOptions field, the source's field saying it used
# the option, and why it does not apply where it did not (an option is refused there, never ignored).
SOURCE_OPTIONS = {
    "time_scale": ("time_scale_given",
                   lambda source, size: f"--time-scale maps recording time to steps; {source.name} needs no time "
                                        f"scale: {source.time_mapping}"),
    "downsample": ("downsample",
                   lambda source, size: f"--downsample reduces a tonic data set's sensor; {source.name} has no "
                                        f"sensor: its channels are the network's {size} inputs"),
    "data_root": ("data_root",
                  lambda source, size: f"--data-root names the folder of a tonic data set (nmnist:test, ...); "
                                       f"{source.name} is read from where it is"),
}


def _selected(source: EventSource, samples: int | None, bundle, options: DataOptions) -> tuple[int, bool]:
    """The checks of a source that need none of its samples: the samples selected, and whether they are labelled."""
    size = bundle.network.input.size
    for option, (used, refusal) in SOURCE_OPTIONS.items():
        if getattr(options, option) is not None and not getattr(source, used):
            raise DeployError(refusal(source, size))
    if source.channels is not None and source.channels != size:
        raise DeployError(f"{source.name} has {source.channels} input channels; the network takes {size}")
    if options.labels is not None and source.labels is not None:
        raise DeployError(f"{source.name} has its own labels; --labels would replace them")
    return _sample_count(samples, source.num_samples, source.name), (
        source.labels is not None or options.labels is not None)


def _events_stimulus(source: EventSource, samples: int | None, bundle, options: DataOptions,
                     record_state: bool, references: bool, part: tuple[int, int] | None = None) -> Stimulus:
    """Read a source's events onto the bundle's input: checked, cropped to the run's input steps, counted.
    ``part``: only samples [start, stop) of the selection, numbered from 0 (a worker's; None: all)."""
    size = bundle.network.input.size
    count, _ = _selected(source, samples, bundle, options)
    first, stop = part or (0, count)
    labels, origin, labelled = source.labels, None, source.num_samples
    if callable(labels):
        labels, labelled, first_label = labels(first, stop), stop - first, 0
    else:
        first_label = first
    if options.labels is not None:
        labels, origin = _labels_option(options)
        first_label = first
    if labels is not None:
        labels = _checked_labels(labels, origin, labelled, bundle, source.name)[first_label:first_label + stop - first]
    timing = bundle.timing
    input_steps = timing.num_steps - timing.latency_steps
    collected = _Collector(source.name, stop - first, input_steps, size, first)
    for batch in source.batches(first, stop):
        collected.add(*batch)
    inputs = collected.spike_events(timing.num_steps)
    # The input is read; the run is what could exhaust memory now (its output spikes, the references).
    check_memory(run_memory(bundle, stop - first, input_events=inputs.events.shape[1], record_state=record_state,
                            references=references))
    report = DataReport(source=source.description, time_mapping=source.time_mapping, time_scale=source.time_scale,
                        time_scale_given=source.time_scale_given, input_steps=input_steps, events=collected.events,
                        cropped_events=collected.cropped, merged_events=collected.merged,
                        empty_samples=int(np.count_nonzero(np.diff(inputs.sample_bounds(np.arange(stop - first + 1))) == 0)),
                        downsample=source.downsample, data_steps=source.steps)
    return Stimulus(source.name, inputs, labels, report=report,
                    selection=_selection(f"{source.name} ({_digest(inputs.events)})", stop - first, first))


# The share of a recording's events past the run, or merged into spikes already there, above which its time mapping is
# likely wrong (a --time-scale off by powers of ten crops nearly all of them, or piles them into a few steps).
LOST_EVENTS_NOTE_FRACTION = 0.5


def time_mapping_note(report: DataReport | None) -> str | None:
    """For time-stamped data whose mapping onto steps loses most events (cropped or merged), a line saying so and
    naming --time-scale; else None. A note, not a refusal: a run may mean to see only a recording's start."""
    if report is None or report.time_scale is None or report.events == 0:
        return None
    for lost, how in ((report.cropped_events, "fall after the run's last input step"),
                      (report.merged_events, "merge into a spike already on their channel and step")):
        if lost > LOST_EVENTS_NOTE_FRACTION * report.events:
            return (f"note: {lost / report.events:.0%} of the data's {report.events} events {how}: check --time-scale "
                    f"({report.time_scale:g}{'' if report.time_scale_given else ', the default for a graph in seconds'})")
    return None


def joined_reports(reports: list[DataReport]) -> DataReport:
    """The reports of consecutive parts of one selection as the report of all of it: the counts added."""
    counted = ("events", "cropped_events", "merged_events", "empty_samples")
    return replace(reports[0], **{name: sum(getattr(report, name) for report in reports) for name in counted})


class _Collector:
    """Input events gathered batch by batch into compact chip-step events: those after the run's input steps
    cropped, repeats on a channel within a step merged, both counted."""

    def __init__(self, name: str, num_samples: int, input_steps: int, size: int, first: int = 0):
        """``first``: the data's index of the first sample collected (sample ``first`` becomes sample 0)."""
        self.name, self.num_samples, self.input_steps, self.size = name, num_samples, input_steps, size
        self.first = first
        self.events = self.cropped = self.merged = 0
        self.parts: list[np.ndarray] = []

    def add(self, sample, bins, channel, counts=None) -> None:
        sample, bins, channel = (np.asarray(a, dtype=np.int64) for a in (sample, bins, channel))
        counts = np.ones(sample.size, np.int64) if counts is None else np.asarray(counts, np.int64)
        for what, values, high in (("channel", channel, self.size), ("step", bins, None)):
            outside = (values < 0) | (values >= high) if high is not None else values < 0
            if outside.any():
                first = np.flatnonzero(outside)[0]
                allowed = f"[0, {high - 1}] (the network's {high} inputs)" if high is not None else ">= 0"
                raise DeployError(f"{self.name}: sample {sample[first]} has a spike at {what} {values[first]}, "
                                  f"outside {allowed}")
        sample = sample - self.first
        inside = bins < self.input_steps
        self.events += int(counts.sum())
        self.cropped += int(counts[~inside].sum())
        keys = (sample[inside] * self.input_steps + bins[inside]) * self.size + channel[inside]
        unique = np.unique(keys)  # sorted: by sample, then step, then channel, the order SpikeEvents keeps
        self.merged += int(counts[inside].sum()) - unique.size
        sample_step, channel = np.divmod(unique, self.size)
        sample, bins = np.divmod(sample_step, self.input_steps)
        self.parts.append(np.stack([sample, bins + 1, channel]).astype(np.int32))

    def spike_events(self, num_steps: int) -> SpikeEvents:
        # Each batch holds whole samples, later than the batch before: the parts join in SpikeEvents' order.
        return SpikeEvents.from_blocks(self.parts, self.num_samples, num_steps, self.size)


def _labels_option(options: DataOptions) -> tuple[np.ndarray, str | None]:
    """``--labels`` (given), and the file it names (None: from Python, an array or a sequence): a .npy, or a .npz
    holding one array or one named 'labels' (a data file's own labels, given to other data)."""
    labels = options.labels
    if not isinstance(labels, (str, os.PathLike)):
        try:
            return np.asarray(labels), None
        except ValueError:  # ragged
            raise DeployError("labels must be a 1-D array of integers, one per sample") from None
    path = Path(labels)
    if not path.is_file():
        raise DeployError(f"labels file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded, path.name
        with loaded:
            arrays = loaded.files
            if "labels" in arrays or len(arrays) == 1:
                return loaded["labels" if "labels" in arrays else arrays[0]], path.name
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DeployError(f"{path} is not a readable array of labels ({exc.__class__.__name__})") from None
    raise DeployError(f"{path.name} has arrays {', '.join(arrays) or 'none'}: --labels takes a .npy, or a .npz "
                      "holding one array or one named 'labels'")


def _checked_labels(labels, origin: str | None, num_samples: int, bundle, what: str) -> np.ndarray:
    """One whole-number class per sample, each one of the network's outputs. ``origin``: the file the labels were
    given in (None: they are the data's own, or an array)."""
    labels = np.asarray(labels)
    classes = bundle.network.population(bundle.network.output).size
    named = origin or f"the labels of {what}"
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DeployError(f"{named} must be a 1-D array of integers, got shape {labels.shape} {labels.dtype}")
    if labels.size != num_samples:
        raise DeployError(f"{what} has {num_samples} samples but {labels.size} labels" + (f" in {origin}" if origin
                                                                                          else ""))
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        first = np.flatnonzero(outside)[0]
        raise DeployError(f"{named}: sample {first} has label {labels[first]}, outside the network's "
                          f"{classes} classes [0, {classes - 1}]")
    return labels.astype(np.int64)


# --- time: how a recording's time stamps become chip steps --------------------------------------------------

# A time unit of time-stamped data, in seconds (exact: the bin width is computed in fractions).
TIME_UNITS_SECONDS = {"s": Fraction(1), "ms": Fraction(1, 10**3), "us": Fraction(1, 10**6)}


def _decimal(value: float) -> Fraction:
    """A float as the decimal it was written as (1e-4 is 1/10000, not its nearest binary fraction)."""
    return Fraction(repr(float(value)))


def _time_scale(bundle, options: DataOptions, name: str) -> tuple[Fraction, bool]:
    """The recording's seconds per network time unit: ``--time-scale``, else 1 for a graph in seconds; a graph in
    tau or steps has no such default, and the mapping is never guessed."""
    unit = bundle.timing.time_unit
    scale = options.time_scale
    if scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise DeployError(f"--time-scale must be a positive number of seconds per {unit}, got {scale}")
        return _decimal(scale), True
    if unit == "s":
        return Fraction(1), False
    raise DeployError(f"{name} has time stamps and the graph's time unit is {unit}: state how they map with "
                      f"--time-scale S, the recording's seconds per {unit} (e.g. --time-scale 1e-3 for 1 ms per {unit})")


def _step_length(bundle, scale: Fraction) -> Fraction:
    """One chip step in recording seconds: the time scale times dt."""
    return scale * _decimal(bundle.timing.dt)


def _time_mapping(bundle, scale: Fraction, given: bool) -> str:
    timing = bundle.timing
    origin = "" if given else f", the default for a graph in seconds"
    return (f"recording time t -> chip step floor(t / {float(_step_length(bundle, scale)):g} s) + 1: "
            f"{float(scale):g} s of recording per {timing.time_unit} (--time-scale {float(scale):g}{origin}) x dt {timing.dt:g} "
            f"{timing.time_unit}")


def _steps_mapping(bundle) -> str:
    return f"one data step = one chip step (dt {bundle.timing.dt:g} {bundle.timing.time_unit})"


def time_bins(times, width: float, limit: int, name: str, sample=None) -> np.ndarray:
    """Time stamps -> 0-based bins of ``width`` (the same unit): bin k holds [k width, (k + 1) width). Bins past
    ``limit`` are clipped to it (they are cropped anyway). NaN, infinite or negative times are refused."""
    times = np.asarray(times, dtype=np.float64)
    for bad, what in ((~np.isfinite(times), "a NaN or infinite"), (times < 0, "a negative")):
        if bad.any():
            first = np.flatnonzero(bad)[0]
            where = f"sample {np.asarray(sample)[first]} has " if sample is not None else "has "
            raise DeployError(f"{name}: {where}{what} spike time ({times[first]:g})")
    return np.minimum(np.floor(times / width), limit).astype(np.int64)


# --- sources ------------------------------------------------------------------------------------------------

# Samples per batch of a source read sample by sample, and the bytes a batch of a dense raster may take.
SAMPLES_PER_BATCH = 256
RASTER_BATCH_BYTES = 64 * 2**20


def raster_source(name: str, shape: tuple, read: Callable[[int, int], np.ndarray], labels, bundle,
                  options: DataOptions, data_dt: tuple[float, str] | None) -> EventSource:
    """A dense (samples, steps, channels) raster of spikes, 0 or 1 (bool, integers or floats),
    ``read(start, stop)`` giving samples [start, stop). The chip's input spikes are binary: a raster of counts
    (pixel intensities, event counts per frame) is refused, not merged, which would run another network's input.
    One raster step is one chip step; a raster stating its step ``data_dt`` (length, unit) must have the bundle's."""
    if len(shape) != 3:
        raise DeployError(f"{name}: a raster of input spikes has shape (samples, steps, channels), got {shape}")
    num_samples, steps, channels = shape
    mapping = _steps_mapping(bundle)
    if data_dt is None:
        scale, given = None, False
    else:
        scale, given = _time_scale(bundle, options, name)
        length, unit = data_dt
        step = _step_length(bundle, scale)
        if not math.isclose(_decimal(length) * TIME_UNITS_SECONDS[unit], step, rel_tol=1e-9):
            raise DeployError(f"{name} has steps of {length:g} {unit}; the bundle's step is {float(step):g} s "
                              f"(dt {bundle.timing.dt:g} {bundle.timing.time_unit} x time scale {float(scale):g} s)")
        mapping = f"{mapping}: the data's step of {length:g} {unit} at {float(scale):g} s per {bundle.timing.time_unit}"
    batch = max(1, RASTER_BATCH_BYTES // max(1, steps * channels * 8))

    def batches(first: int, stop: int):
        for start in range(first, stop, batch):
            end = min(start + batch, stop)
            spikes = np.asarray(read(start, end))
            if spikes.dtype.kind not in "biuf":
                raise DeployError(f"{name}: a raster holds spikes (bool or numbers 0 and 1), got {spikes.dtype}")
            other = (spikes != 0) & (spikes != 1)
            if other.any():
                raise DeployError(f"{name}: {np.count_nonzero(other)} raster entries of samples {start}-{end - 1} are "
                                  f"not 0 or 1 (the largest {spikes[other].max().item()}); the chip's input spikes "
                                  "are binary, one or none per channel and step (if these mean spikes: raster > 0)")
            sample, step, channel = np.nonzero(spikes)
            yield sample + start, step, channel, None

    return EventSource(name, f"{name}: {num_samples} samples x {steps} steps x {channels} channels (a raster)",
                       num_samples, channels, labels, batches, mapping, None if scale is None else float(scale), given,
                       steps=steps)


def spike_events_source(events: SpikeEvents, bundle, options: DataOptions) -> EventSource:
    """Input spikes already in chip steps (step 1 is the first)."""
    def batches(start: int, stop: int):
        first, last = np.searchsorted(events.events[0], [start, stop])
        sample, step, channel = events.events[:, first:last]
        yield sample, step - 1, channel, None

    return EventSource("spike events", f"SpikeEvents of {events.num_samples} samples x {events.num_steps} steps x "
                       f"{events.size} channels", events.num_samples, events.size, None, batches,
                       _steps_mapping(bundle))


NPZ_LAYOUT = ("a .npz of input spikes holds a raster 'spikes' (samples, steps, channels), or events 'sample', "
              "'channel' and 'step' (0-based) or 'time' (with 'time_unit' s, ms or us); optionally 'labels'")


def npz_source(path: Path, bundle, options: DataOptions) -> EventSource:
    """A plain .npz: a raster ``spikes`` (samples, steps, channels), streamed sample batch by batch, or events
    ``sample``, ``channel`` and ``step`` (0-based) or ``time`` (in ``time_unit``); optional ``labels``,
    ``num_samples`` (events: else the labels' count, else the last sample's), ``channels``, and for a raster
    or steps ``dt`` (in ``time_unit``), checked against the bundle's step."""
    if not path.is_file():
        raise DeployError(f"data file not found: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
        keys = set(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DeployError(f"{path} is not a readable .npz file ({exc.__class__.__name__})") from None
    name = path.name
    try:
        labels = npz["labels"] if "labels" in keys else None
        unit = str(npz["time_unit"]) if "time_unit" in keys else None
        if unit is not None and unit not in TIME_UNITS_SECONDS:
            raise DeployError(f"{name}: time_unit must be one of {', '.join(TIME_UNITS_SECONDS)}, got {unit!r}")
        data_dt = None
        if "dt" in keys:
            if unit is None:
                raise DeployError(f"{name}: dt needs its unit, time_unit (one of {', '.join(TIME_UNITS_SECONDS)})")
            data_dt = (float(npz["dt"]), unit)
        if "spikes" in keys:
            shape, read = _npz_raster(path, name)
            return raster_source(name, shape, read, labels, bundle, options, data_dt)
        if {"sample", "channel"} <= keys and ("time" in keys) != ("step" in keys):
            sample, channel = npz["sample"], npz["channel"]
            stamps = npz["time"] if "time" in keys else npz["step"]
            for key in ("sample", "channel", "step"):
                if key in keys and npz[key].dtype.kind not in "iu":
                    raise DeployError(f"{name}: {key} must be integers, got {npz[key].dtype}")
            if not sample.shape == channel.shape == stamps.shape or sample.ndim != 1:
                raise DeployError(f"{name}: sample, channel and {'time' if 'time' in keys else 'step'} must be 1-D "
                                  f"arrays of one length, got {sample.shape}, {channel.shape}, {stamps.shape}")
            count = int(npz["num_samples"]) if "num_samples" in keys else (
                labels.size if labels is not None else int(sample.max(initial=-1)) + 1)
            if sample.size and (sample.min() < 0 or sample.max() >= count):
                raise DeployError(f"{name}: a spike of sample {sample.min() if sample.min() < 0 else sample.max()} "
                                  f"is outside the data's {count} samples")
            channels = int(npz["channels"]) if "channels" in keys else None
            if "time" in keys:
                if unit is None:
                    raise DeployError(f"{name}: times need their unit, time_unit (one of "
                                      f"{', '.join(TIME_UNITS_SECONDS)})")
                return _stamped_events_source(name, sample, channel, stamps, unit, count, channels, labels, bundle,
                                              options)
            return _events_in_memory_source(name, f"{name}: {sample.size} events in steps of {count} samples", sample,
                                         stamps, channel, count, channels, labels, _steps_mapping(bundle))
    except KeyError as exc:
        raise DeployError(f"{name}: {exc}") from None
    raise DeployError(f"{name} has {', '.join(sorted(keys)) or 'no arrays'}: {NPZ_LAYOUT}")


def _stamped_events_source(name: str, sample, channel, times, unit: str, count: int, channels, labels, bundle,
                           options: DataOptions) -> EventSource:
    scale, given = _time_scale(bundle, options, name)
    width = float(_step_length(bundle, scale) / TIME_UNITS_SECONDS[unit])
    input_steps = bundle.timing.num_steps - bundle.timing.latency_steps
    bins = time_bins(times, width, input_steps, name, sample)
    return _events_in_memory_source(name, f"{name}: {sample.size} time-stamped events ({unit}) of {count} samples",
                                 sample, bins, channel, count, channels, labels,
                                 _time_mapping(bundle, scale, given), float(scale), given)


def _events_in_memory_source(name: str, description: str, sample, bins, channel, count: int, channels, labels,
                          mapping: str, scale: float | None = None, given: bool = False) -> EventSource:
    """Events held in memory (they are the file's contents): one batch."""
    def batches(start: int, stop: int):
        keep = (sample >= start) & (sample < stop)
        yield sample[keep], bins[keep], channel[keep], None

    return EventSource(name, description, count, channels, labels, batches, mapping, scale, given)


def _npz_raster(path: Path, name: str) -> tuple[tuple, Callable[[int, int], np.ndarray]]:
    """The raster 'spikes' of an .npz, read sample batch by sample batch from its zip member (np.load would
    read all of it: 10,000 N-MNIST samples of 300 steps are 7 GB as bool)."""
    archive = zipfile.ZipFile(path)
    member = archive.open("spikes.npy")
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise DeployError(f"{name}: spikes is stored in .npy format version {version}; this reads 1.0 and 2.0")
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = header(member)
    if dtype.hasobject:
        raise DeployError(f"{name}: spikes holds Python objects; it must hold spikes (bool or numbers 0 and 1)")
    if fortran_order or len(shape) != 3:  # not streamable by sample: read whole (numpy checks the shape below)
        array = np.load(path, allow_pickle=False)["spikes"]
        return array.shape, lambda start, stop: array[start:stop]
    per_sample = int(np.prod(shape[1:])) * dtype.itemsize
    position = [0]

    def read(start: int, stop: int) -> np.ndarray:
        assert start >= position[0], "the raster is read in order"
        while position[0] < start:  # a later part: the samples before it are skipped, a batch at a time
            skipped = min(start - position[0], max(1, RASTER_BATCH_BYTES // max(per_sample, 1)))
            member.read(skipped * per_sample)
            position[0] += skipped
        chunk = member.read((stop - start) * per_sample)
        if len(chunk) != (stop - start) * per_sample:
            raise DeployError(f"{name}: spikes is truncated (sample {start + len(chunk) // max(per_sample, 1)} of "
                              f"{shape[0]})")
        position[0] = stop
        return np.frombuffer(chunk, dtype).reshape(stop - start, *shape[1:])

    return shape, read


# NIR data files (nir.write_data): HDF5, whatever they are called.
NIR_DATA_SUFFIXES = (".h5", ".hdf5", ".nir")
NIR_OBSERVABLE = "spikes"


@dataclass(frozen=True)
class _NirObservable:
    """One node's spike observable in NIR data, its arrays numpy arrays or (from a file) h5py datasets, read
    by row slices."""

    kind: str  # "EventData" or "TimeGriddedData"
    n_neurons: int
    dt: float | None = None
    data: Any = None  # TimeGriddedData: (samples, steps, neurons)
    idx: Any = None  # EventData: (samples, events), -1 where none
    time: Any = None  # EventData: (samples, events), inf where none


def nir_data_source(data, bundle, options: DataOptions) -> EventSource:
    """NIR data (``nir.write_data``, a file; or from Python a NIRGraphData, NIRNodeData, EventData or
    TimeGriddedData): the input node's spikes, as EventData (times in the graph's time unit) or
    TimeGriddedData (steps of the bundle's dt). A file may hold the labels as an integer dataset ``labels``."""
    import nir

    input_name = bundle.network.input.name
    if not isinstance(data, Path):
        name = "NIR data"
        if isinstance(data, nir.NIRGraphData):
            data = _nir_node(data.nodes, input_name, name)
        if isinstance(data, nir.NIRNodeData):
            data = _nir_one(data.observables, NIR_OBSERVABLE, name, "observable")
        if isinstance(data, nir.ValuedEventData):
            raise DeployError(f"{name}: valued (graded) events cannot be the chip's input spikes")
        observable = (_NirObservable("TimeGriddedData", data.n_neurons, dt=data.dt, data=data.data)
                      if isinstance(data, nir.TimeGriddedData) else
                      _NirObservable("EventData", data.n_neurons, idx=data.idx, time=data.time))
        return _nir_observable_source(name, observable, None, bundle, options)
    path = data
    if not path.is_file():
        raise DeployError(f"data file not found: {path}")
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise DeployError(f"{path} is not NIR data (not readable as HDF5)") from None
    name = path.name
    try:
        if handle.attrs.get("__type__") != "NIRGraphData":
            raise DeployError(f"{name} is not NIR data (nir.write_data writes a NIRGraphData)")
        node = _nir_node(handle["nodes"], input_name, name)
        group = _nir_one(node["observables"], NIR_OBSERVABLE, name, "observable")
        kind = group.attrs.get("__type__")
        if kind == "ValuedEventData":
            raise DeployError(f"{name}: valued (graded) events cannot be the chip's input spikes")
        if kind == "TimeGriddedData":
            observable = _NirObservable(kind, int(group["data"].shape[2]), dt=float(group.attrs["dt"]),
                                        data=group["data"])
        elif kind == "EventData":
            observable = _NirObservable(kind, int(group.attrs["n_neurons"]), idx=group["idx"], time=group["time"])
        else:
            raise DeployError(f"{name}: unknown observable type {kind!r}")
        labels = handle["labels"][()] if "labels" in handle else None
    except KeyError as exc:
        raise DeployError(f"{name} is malformed NIR data ({exc})") from None
    return _nir_observable_source(name, observable, labels, bundle, options)


def _nir_one(table, preferred: str, name: str, what: str):
    """The entry named ``preferred``, else the only one."""
    if preferred in table:
        return table[preferred]
    if len(table) == 1:
        return next(iter(table.values()))
    raise DeployError(f"{name} has {what}s {', '.join(table) or 'none'}; the input is read from {preferred!r}")


def _nir_node(nodes, input_name: str, name: str):
    if input_name in nodes:
        return nodes[input_name]
    if len(nodes) == 1:
        return next(iter(nodes.values()))
    raise DeployError(f"{name} has no data for the graph's input node {input_name!r} (it has {', '.join(nodes)})")


def _nir_observable_source(name: str, observable: _NirObservable, labels, bundle, options) -> EventSource:
    timing = bundle.timing
    if observable.kind == "TimeGriddedData":
        if not math.isclose(observable.dt, timing.dt, rel_tol=1e-9):
            raise DeployError(f"{name}: its time grid has dt {observable.dt:g}; the bundle's is {timing.dt:g} "
                              f"{timing.time_unit}")
        grid = observable.data
        return raster_source(name, tuple(grid.shape), lambda start, stop: grid[start:stop], labels, bundle,
                             options, data_dt=None)
    idx, time = observable.idx, observable.time
    if idx.ndim != 2 or idx.shape != time.shape:
        raise DeployError(f"{name}: EventData idx and time must be (samples, events) arrays of one shape, got "
                          f"{idx.shape} and {time.shape}")
    input_steps = timing.num_steps - timing.latency_steps

    def batches(first: int, stop: int):
        for start in range(first, stop, SAMPLES_PER_BATCH):
            end = min(start + SAMPLES_PER_BATCH, stop)
            rows_idx, rows_time = np.asarray(idx[start:end]), np.asarray(time[start:end])
            sample, column = np.nonzero(rows_idx >= 0)
            bins = time_bins(rows_time[sample, column], timing.dt, input_steps, name, sample + start)
            yield sample + start, bins, rows_idx[sample, column], None

    mapping = f"NIR event time t ({timing.time_unit}, the graph's unit) -> chip step floor(t / dt {timing.dt:g}) + 1"
    return EventSource(name, f"{name}: NIR EventData of {idx.shape[0]} samples x {observable.n_neurons} neurons",
                       idx.shape[0], observable.n_neurons, labels, batches, mapping)


# tonic's event data sets: --data NAME:SPLIT --data-root DIR. Per name: tonic's class, its constructor's
# argument for each split, and (per split) the files that must be there, relative to the class's folder.
TONIC_DATA_SETS = {
    "nmnist": ("NMNIST", {"train": {"train": True}, "test": {"train": False}},
               {"train": "Train/<digit>/*.bin", "test": "Test/<digit>/*.bin"}),
    "shd": ("SHD", {"train": {"train": True}, "test": {"train": False}},
            {"train": "shd_train.h5", "test": "shd_test.h5"}),
    "ssc": ("SSC", {split: {"split": split} for split in ("train", "valid", "test")},
            {split: f"ssc_{split}.h5" for split in ("train", "valid", "test")}),
    "dvsgesture": ("DVSGesture", {"train": {"train": True}, "test": {"train": False}},
                   {"train": "ibmGestureTrain/user<NN>_<lighting>/<label>.npy",
                    "test": "ibmGestureTest/user<NN>_<lighting>/<label>.npy"}),
}


def tonic_folder_source(name: str, split: str, bundle, options: DataOptions) -> EventSource:
    """A tonic data set from a folder: as tonic downloaded it (archives present) or unpacked by hand (the
    archives' contents only). tonic's own existence check counts files and wants the archive, and would
    download otherwise; this reads the same files through tonic's readers, having checked they are there."""
    class_name, splits, layout = TONIC_DATA_SETS[name]
    if split not in splits:
        raise DeployError(f"{name} has splits {', '.join(splits)}, not {split!r}")
    if options.data_root is None:
        raise DeployError(f"{name}:{split} reads tonic's {class_name} from a folder: give it as --data-root DIR")
    root = Path(options.data_root)
    # DIR is what tonic was given as save_to (holding DIR/<class>/), or a folder holding the files themselves.
    folder = root / class_name if (root / class_name).is_dir() else root
    expected = folder / layout[split]
    pattern = layout[split].replace("<digit>", "*").replace("<NN>", "*").replace("<lighting>", "*").replace(
        "<label>", "*")
    if not any(folder.glob(pattern)):
        raise DeployError(f"no {name}:{split} in {root}: expected {expected} (as tonic downloads it, or its archive "
                          "unpacked by hand)")
    tonic = _tonic()
    stock = getattr(tonic.datasets, class_name)

    def offline(self):
        raise DeployError(f"snn-deploy never downloads: {name}:{split} must be in {root}")

    # tonic reads from <save_to>/<its class's name>: the reader class is named after the folder.
    reader = type(folder.resolve().name, (stock,), {"_check_exists": lambda self: True, "download": offline})
    try:
        dataset = reader(str(folder.resolve().parent), **splits[split])
    except (OSError, ValueError, KeyError) as exc:
        raise DeployError(f"{name}:{split} in {root} is not readable ({exc.__class__.__name__}: {exc})") from None
    # Samples in the order of their files (tonic lists some folders in the file system's order).
    paths = dataset.data if len(dataset.data) == len(dataset) else None
    order = sorted(range(len(dataset)), key=paths.__getitem__) if paths else range(len(dataset))
    return replace(tonic_source(dataset, f"{name}:{split}", order, bundle, options, kind=class_name), data_root=root)


def _tonic():
    require_extra("events", "reading an event data set")
    import tonic

    return tonic


def tonic_source(dataset, name: str, order, bundle, options: DataOptions, kind: str = "") -> EventSource:
    """A tonic data set (its samples structured event arrays with x, [y,] p and t in µs, its labels the
    targets), in ``order``: each sample's events binned onto the chip's steps by tonic's ToFrame, its sensor
    (width, height, polarities) flattened as ToFrame's frames are, channel = (p * height + y) * width + x, and
    reduced to ``options.downsample`` by tonic's Downsample where asked."""
    tonic = _tonic()
    sensor = tuple(int(s) for s in dataset.sensor_size)
    size = bundle.network.input.size
    frame_sensor, downsample = sensor, None
    if options.downsample is not None:
        if getattr(dataset, "transform", None) is not None:  # a tonic Downsample there would shrink it twice
            raise DeployError(f"--downsample reduces {name}'s sensor, and the data set has a transform of its own "
                              f"({type(dataset.transform).__name__}): reduce it in one place")
        width, height = options.downsample
        if width > sensor[0] or height > sensor[1] or width < 1 or height < 1:
            raise DeployError(f"--downsample {width}x{height} must shrink {name}'s sensor "
                              f"{sensor[0]}x{sensor[1]}x{sensor[2]}")
        frame_sensor = (width, height, sensor[2])
        downsample = tonic.transforms.Downsample(sensor_size=sensor, target_size=(width, height))
    channels = int(np.prod(frame_sensor))
    if channels > size and downsample is None:
        raise DeployError(f"{name}'s sensor {sensor[0]}x{sensor[1]}x{sensor[2]} gives {channels} channels, more than "
                          f"the network's {size} inputs: reduce it with --downsample WIDTHxHEIGHT")
    scale, given = _time_scale(bundle, options, name)
    window = float(_step_length(bundle, scale) * 10**6)  # tonic's time stamps are in µs
    input_steps = bundle.timing.num_steps - bundle.timing.latency_steps
    # end_time half a window past the last step: exactly input_steps frames, whatever the rounding of k x window.
    to_frame = tonic.transforms.ToFrame(sensor_size=frame_sensor, time_window=window, start_time=0,
                                        end_time=(input_steps + 0.5) * window)
    order = list(order)

    files = getattr(dataset, "data", None)  # tonic's folder data sets list a file per sample

    def read(index: int):
        try:
            with np.errstate(invalid="raise"):  # tonic casts times to integers: NaN or inf would become garbage
                return dataset[order[index]]
        except FloatingPointError:
            raise DeployError(f"{name}: sample {index} has a NaN or infinite spike time") from None
        except (OSError, ValueError, EOFError) as exc:  # a truncated or foreign file, as tonic's reader meets it
            where = f" ({files[order[index]]})" if files is not None and len(files) == len(dataset) else ""
            raise DeployError(f"{name}: sample {index}{where} is not readable ({exc.__class__.__name__}: "
                              f"{exc})") from None

    def batches(first: int, stop: int):
        for start in range(first, stop, SAMPLES_PER_BATCH):
            parts = [_binned(read(index)[0], index, frame_sensor, sensor, downsample, to_frame, window, input_steps,
                             name) for index in range(start, min(start + SAMPLES_PER_BATCH, stop))]
            yield tuple(np.concatenate(column) for column in zip(*parts))

    def labels_of(start: int, stop: int) -> np.ndarray:
        return np.array([int(_target(dataset, order[index], lambda: read(index))) for index in range(start, stop)],
                        np.int64)

    description = (f"{name}: tonic's {kind or type(dataset).__name__}, {len(order)} samples, sensor "
                   f"{sensor[0]}x{sensor[1]}x{sensor[2]}" + (f" downsampled to {frame_sensor[0]}x{frame_sensor[1]}"
                                                             if downsample else ""))
    return EventSource(name, description, len(order), channels, labels_of, batches,
                       _time_mapping(bundle, scale, given), float(scale), given, options.downsample)


def _target(dataset, index: int, read: Callable[[], tuple]):
    """A sample's label, without reading (``read``) its events where tonic lists the targets untransformed."""
    targets = getattr(dataset, "targets", None)
    listed = targets is not None and len(targets) == len(dataset) and not any(
        getattr(dataset, name, None) for name in ("target_transform", "transforms"))
    return targets[index] if listed else read()[1]


def _binned(events, index: int, frame_sensor, sensor, downsample, to_frame, window: float, input_steps: int,
            name: str):
    """One sample's events -> (sample, bin, channel, counts), by tonic's transforms."""
    if events.dtype.names is None or not {"x", "p", "t"} <= set(events.dtype.names):
        raise DeployError(f"{name}: a sample must be tonic's structured events (x, [y,] p, t), got "
                          f"{events.dtype}; give the data set without a transform")
    for field, high in (("x", sensor[0]), ("y", sensor[1]), ("p", sensor[2])):
        if field in events.dtype.names:
            values = events[field].astype(np.int64)
            outside = (values < 0) | (values >= max(high, 2 if field == "p" else high))
            if outside.any():
                raise DeployError(f"{name}: sample {index} has an event at {field} = {values[outside][0]}, outside "
                                  f"the sensor's {high}")
    time_bins(events["t"], window, input_steps, name)  # refuses negative (and NaN) times
    if downsample is not None:
        events = downsample(events)
    if len(events) == 0:
        return (np.empty(0, np.int64),) * 4
    events = events[np.argsort(events["t"], kind="stable")]  # ToFrame slices by searching sorted times
    frames = to_frame(events).reshape(input_steps, -1)
    step, channel = np.nonzero(frames)
    counts = frames[step, channel].astype(np.int64)
    # ToFrame's frames end with the run's input steps; the events after them go to the collector as one
    # entry past the last step (on channel 0), which it crops and counts.
    cropped = len(events) - int(counts.sum())
    return (np.full(step.size + 1, index), np.append(step, input_steps), np.append(channel, 0),
            np.append(counts, cropped))


def _selection(source: str, count: int, first: int = 0) -> str:
    return f"{source} samples {first}-{first + count - 1}"


def encode(bundle, features: np.ndarray) -> tuple[np.ndarray, SpikeEvents]:
    """Features -> (continuous input spike times, input spikes in the bundle's chip steps)."""
    times = input_times(bundle.encoding, features)
    if times.shape[1] != bundle.network.input.size:
        raise DeployError(f"the data set gives {times.shape[1]} input channels; the network takes "
                          f"{bundle.network.input.size}")
    return times, to_steps(times, bundle.timing.dt, bundle.timing.num_steps)
