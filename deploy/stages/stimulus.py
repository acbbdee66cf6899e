"""stimulus: a data selection -> the input spikes a run is fed (``artifacts.stimulus.Stimulus``).

A labelled data set is encoded by the bundle's input encoding into continuous spike times, then
chip steps; random spike trains are drawn directly in chip steps.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ...targets import schedule
from ...targets.encoding import encoding_description
from ...targets.record import SpikeEvents
from ..artifacts.semantics import input_encoding
from ..artifacts.stimulus import Stimulus
from ..errors import DeployError


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


def random_spike_trains(size: int, num_samples: int, num_steps: int, rate: float, seed: int) -> SpikeEvents:
    """Seeded Bernoulli spike trains: each channel spikes in each step with probability ``rate``."""
    rng = np.random.default_rng(seed)
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
        if samples < 1:
            raise DeployError(f"--samples must be at least 1, got {samples}")
        if samples > dataset.labels.size:
            raise DeployError(f"--samples {samples} asks for more samples than {dataset.name} has "
                              f"({dataset.labels.size})")
        dataset = type(dataset)(name=dataset.name, features=dataset.features[:samples],
                                labels=dataset.labels[:samples], n_classes=dataset.n_classes)
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


def load_stimulus(spec: str, samples: int | None, bundle, *, record_state: bool = False,
                  references: bool = False) -> Stimulus:
    """A data set encoded by the bundle's input encoding, or seeded random spike trains ("random:rate=,seed=").

    A run over it that would not fit in memory (``run_memory``: ``record_state`` traces, the float
    ``references`` of verify) is refused before any spike is made.
    """
    timing, size = bundle.timing, bundle.network.input.size
    options = random_spec(spec)
    if options is not None:
        count = DEFAULT_RANDOM_SAMPLES if samples is None else samples
        if count < 1:
            raise DeployError(f"--samples must be at least 1, got {count}")
        expected_events = math.ceil(options["rate"] * count * timing.num_steps * size)
        memory = run_memory(bundle, count, input_events=expected_events, record_state=record_state,
                            references=references)
        # The spike trains are drawn one sample at a time: float64 draws and their comparison.
        memory["random draws per sample"] = (8 + 1) * timing.num_steps * size
        check_memory(memory)
        inputs = random_spike_trains(size, count, timing.num_steps, options["rate"], options["seed"])
        return Stimulus(f"random spike trains (rate {options['rate']:g} per step, seed {options['seed']})", inputs,
                        selection=_selection(f"{RANDOM_DATA}:rate={options['rate']!r},seed={options['seed']}", count))
    dataset = load_data(spec, samples)
    # Every encoding is a latency code (``SINGLE_SPIKE_ENCODINGS``): at most one spike per channel and sample.
    check_memory(run_memory(bundle, dataset.labels.size, input_events=dataset.labels.size * size,
                            record_state=record_state, references=references))
    times, inputs = encode(bundle, dataset.features)
    return Stimulus(dataset.name, inputs, dataset.labels, times, selection=_selection(dataset.name, len(dataset.labels)))


def _selection(source: str, count: int) -> str:
    return f"{source} samples 0-{count - 1}"


def encode(bundle, features: np.ndarray) -> tuple[np.ndarray, SpikeEvents]:
    """Features -> (continuous input spike times, input spikes in the bundle's chip steps)."""
    times = input_times(bundle.encoding, features)
    if times.shape[1] != bundle.network.input.size:
        raise DeployError(f"the data set gives {times.shape[1]} input channels; the network takes "
                          f"{bundle.network.input.size}")
    return times, to_steps(times, bundle.timing.dt, bundle.timing.num_steps)
