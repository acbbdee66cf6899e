"""stimulus: a data selection -> the input spikes a run is fed (``artifacts.stimulus.Stimulus``).

A labelled data set is encoded by the bundle's input encoding into continuous spike times, then
chip steps; random spike trains are drawn directly in chip steps.
"""

from __future__ import annotations

import numpy as np

from ...targets.encoding import encoding_description, encoding_from_description
from ...targets.record import SpikeEvents
from ..artifacts.stimulus import Stimulus
from ..errors import DeployError

# The graph's encoding entry holds a model encoding's fields, with its bias spike as "bias_times", and the data set.
GRAPH_ONLY_FIELDS = ("bias_times", "dataset")


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
    (t_bias,) = encoding["bias_times"]
    features = np.asarray(features, dtype=np.float64)
    if not np.all(np.isfinite(features)):
        raise DeployError("input features contain NaN or infinity")
    fields = {name: value for name, value in encoding.items() if name not in GRAPH_ONLY_FIELDS}
    try:
        model_encoding = encoding_from_description({**fields, "t_bias": t_bias})
    except ValueError as error:
        raise DeployError(str(error)) from None
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
            raise DeployError(f"random data: {key}={text!r} is not a number") from None
    if not 0 < values["rate"] <= 1:
        raise DeployError(f"random data: rate must be in (0, 1] spikes per step, got {values['rate']}")
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
        dataset = type(dataset)(name=dataset.name, features=dataset.features[:samples],
                                labels=dataset.labels[:samples], n_classes=dataset.n_classes)
    return dataset


def load_stimulus(spec: str, samples: int | None, bundle) -> Stimulus:
    """A data set encoded by the bundle's input encoding, or seeded random spike trains ("random:rate=,seed=")."""
    timing = bundle.timing
    options = random_spec(spec)
    if options is not None:
        count = DEFAULT_RANDOM_SAMPLES if samples is None else samples
        if count < 1:
            raise DeployError(f"--samples must be at least 1, got {count}")
        inputs = random_spike_trains(bundle.network.input.size, count, timing.num_steps, options["rate"],
                                     options["seed"])
        return Stimulus(f"random spike trains (rate {options['rate']:g} per step, seed {options['seed']})", inputs,
                        selection=_selection(f"{RANDOM_DATA}:rate={options['rate']!r},seed={options['seed']}", count))
    dataset = load_data(spec, samples)
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
