"""The chip's step schedule, independent of its arithmetic.

One step, as Lava 0.10.0 runs it (and Loihi 2 executes it):
  1. every Dense block delivers what it accumulated in the previous step
     (so each Dense stage adds one step of delay, and recurrent loops cannot deadlock);
  2. every neuron population integrates that input and fires;
  3. every Dense block accumulates this step's spikes of its source for the next step.
A synapse delayed by d steps (Lava's DelayDense) accumulates into the buffer delivered d steps later:
a spike of step n reaches u in step n + 1 + d. The schedule runs such a block as one undelayed block
per delay (``Connection.delay_groups``), each fed by its source's spikes of d steps earlier, and each
group's sum shifted by its exponent on its own, as DelayDense shifts each delay's sum.

``bitsim`` runs this schedule with the integer stages of ``fixed_point``; the float
discrete-time reference runs it with float64 stages. Sharing the schedule guarantees that the
two differ only in arithmetic, which is what splits discretization error from quantization error.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .record import SpikeEvents, sorted_events

# Steps between a source's spike and its Dense block's delivery: stage 3 of step t accumulates, stage 1 of
# step t + 1 delivers (Lava's Dense; a target description's [synapse] dense_delay_steps must say so).
DENSE_DELAY_STEPS = 1


class Population(Protocol):
    name: str
    size: int
    readout: bool  # its state is recorded on every step whether or not the run records state


def recorded(pop: Population, record_state: bool) -> bool:
    """Whether a run records ``pop``'s state traces: every population's when asked, a readout's always."""
    return record_state or pop.readout


class Connection(Protocol):
    source: str
    target: str

    def delay_groups(self) -> list[tuple[int, "Connection"]]:
        """(delay d, the undelayed part of the synapses delayed by d) for every delay d it has: a spike of step
        n reaches the target in step n + 1 + d."""
        ...


class Network(Protocol):
    @property
    def input(self) -> Any: ...
    populations: Sequence[Population]
    connections: Sequence[Connection]


@dataclass(frozen=True)
class NeuronStep:
    """What a neuron stage returns: the new state, the spikes, and counted hardware events."""

    state: Any
    spikes: np.ndarray
    events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Arithmetic:
    """The stages of one kind of arithmetic: integer (the chip) or float (the reference)."""

    init_state: Callable[[Population, int], Any]
    neuron_step: Callable[[Population, Any, np.ndarray], NeuronStep]
    synapse: Callable[[Connection, np.ndarray], np.ndarray]  # (samples, n_in) -> (samples, n_out)
    activation_dtype: Any
    trace: Callable[[Any], dict[str, np.ndarray]]  # state -> the variables recorded (asked only when recording)
    # What runs a batch with these stages: ``run_batch`` when None, else a function of the same signature and
    # the same results (a compiled form of it, such as the float reference's).
    batch: Callable[..., "BatchResult"] | None = None


@dataclass
class BatchResult:
    spikes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # (sample, step, neuron) per population
    events: dict[str, dict[str, int]]
    traces: dict[str, dict[str, np.ndarray]]


def run_batch(network: Network, arithmetic: Arithmetic, input_raster: np.ndarray, num_steps: int,
              record_state: bool = False) -> BatchResult:
    """Run one batch of samples, ``input_raster`` being (samples, steps, input channels)."""
    num_samples = input_raster.shape[0]
    pops = network.populations
    states = {p.name: arithmetic.init_state(p, num_samples) for p in pops}
    silent = {p.name: np.zeros((num_samples, p.size), bool) for p in pops}
    silent[network.input.name] = np.zeros((num_samples, network.input.size), bool)
    groups = [group for conn in network.connections for group in conn.delay_groups()]
    # history[d]: the spikes of d + 1 steps ago, what a group of delay d delivers now (silence before step 1).
    history = [silent] * (1 + max((delay for delay, _ in groups), default=0))
    # Spikes are collected as events step by step: activity is sparse, a dense raster is not.
    spike_parts: dict[str, list] = {p.name: [] for p in pops}
    events: dict[str, dict[str, int]] = {p.name: {} for p in pops}
    traces: dict[str, dict[str, np.ndarray]] = {p.name: {} for p in pops}

    for t in range(num_steps):
        # Stage 1: Dense blocks deliver last step's accumulation.
        activation = {p.name: np.zeros((num_samples, p.size), arithmetic.activation_dtype) for p in pops}
        for delay, part in groups:
            activation[part.target] += arithmetic.synapse(part, history[delay][part.source])
        # Stage 2: neurons integrate and fire.
        spikes_now = {network.input.name: input_raster[:, t]}
        for p in pops:
            step = arithmetic.neuron_step(p, states[p.name], activation[p.name])
            states[p.name] = step.state
            spikes_now[p.name] = step.spikes
            fired = np.flatnonzero(step.spikes)
            if fired.size:
                sample, neuron = np.divmod(fired, p.size)
                spike_parts[p.name].append((sample, np.full(fired.size, t + 1), neuron))
            for key, count in step.events.items():
                events[p.name][key] = events[p.name].get(key, 0) + count
            if recorded(p, record_state):
                for key, value in arithmetic.trace(step.state).items():
                    traces[p.name].setdefault(key, np.zeros((num_samples, num_steps, p.size), value.dtype))
                    traces[p.name][key][:, t] = value
        # Stage 3: this step's spikes are what the Dense blocks accumulate for the next step (delay 0), or later.
        history = [spikes_now] + history[:-1]
    empty = (np.empty(0, np.int64),) * 3
    spikes = {name: tuple(np.concatenate(a) for a in zip(*parts)) if parts else empty
              for name, parts in spike_parts.items()}
    return BatchResult(spikes, events, traces)


MIN_SAMPLES_PER_THREAD = 256
DEFAULT_BATCH_SIZE = 1024


# The bytes one batch's dense input raster may take: wide inputs over many steps get smaller batches (an
# N-MNIST-sized sample, 2312 channels x 300 steps, is 0.7 MB: 1024 of them per thread would be 1.4 GB).
BATCH_RASTER_BYTES = 64 * 2**20


def batch_plan(num_samples: int, batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None,
               raster_bytes_per_sample: int = 1) -> tuple[int, int]:
    """(threads, samples per batch) of a run: each thread holds one batch at a time, its input raster within
    BATCH_RASTER_BYTES (``raster_bytes_per_sample``: one bool per step and input channel)."""
    batch_size = max(1, min(batch_size, BATCH_RASTER_BYTES // max(1, raster_bytes_per_sample)))
    # A thread pays off only with large batches: below that the per-step Python work (which holds
    # the GIL) dominates and the threads just take turns.
    workers = workers or max(1, min(os.cpu_count() or 1, num_samples // MIN_SAMPLES_PER_THREAD))
    # Enough batches to keep every worker busy, none larger than batch_size.
    return workers, max(1, min(batch_size, -(-num_samples // workers)))


# Bytes per spike event while a run collects it: sorted int32 rows per batch (12), joined into one array
# (12) (``record.SpikeEvents.from_blocks``); a batch's int64 columns and sort order are transient.
EVENT_BYTES = 12 + 12
# Bytes per neuron and sample of a batch: during a step the old and the new state coexist (u and v
# in float64, the fire-once latch a bool: 2 x 17), with the activation (float64) and the spikes (bool).
NEURON_BYTES = 2 * (8 + 8 + 1) + 8 + 1


def run_memory(input_size: int, population_sizes: Sequence[int], num_samples: int, num_steps: int, *,
               spike_events: int, record_state: bool = False,
               batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, int]:
    """The bytes ``run`` allocates at its peak, estimated before it runs, by what holds them;
    ``spike_events`` is the number of spike events (input and output) it is to hold."""
    workers, batch = batch_plan(num_samples, batch_size, raster_bytes_per_sample=num_steps * input_size)
    neurons = sum(population_sizes)
    memory = {"input raster per batch": workers * batch * num_steps * input_size,  # one bool per step and channel
              "neuron state per batch": workers * batch * neurons * NEURON_BYTES,
              "spike events": spike_events * EVENT_BYTES}
    if record_state:
        # u and v in int32 for every sample, step and neuron; the batches' traces and their concatenation coexist.
        memory["state traces"] = 2 * 2 * 4 * num_samples * num_steps * neurons
    return memory


def check_inputs(network: Network, inputs: SpikeEvents, num_steps: int) -> None:
    """Raise ValueError unless ``inputs`` has the network's input channels and the run's steps."""
    if inputs.size != network.input.size:
        raise ValueError(f"input has {inputs.size} channels; the network's input "
                         f"{network.input.name!r} has {network.input.size}")
    if inputs.num_steps != num_steps:
        raise ValueError(f"input spikes span {inputs.num_steps} steps; the run has {num_steps}")


def run(network: Network, arithmetic: Arithmetic, inputs: SpikeEvents, num_steps: int, *,
        record_state: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None,
        progress: Callable[[int], None] | None = None) -> tuple[dict, dict, dict]:
    """Run all samples in batches. Returns (spike events, event counters, traces) per population.

    Batches run on ``workers`` threads (default: one per core, given at least MIN_SAMPLES_PER_THREAD
    samples each). Samples are independent and numpy releases the GIL inside array operations, so
    the cores share the work without copying it.
    """
    check_inputs(network, inputs, num_steps)
    workers, batch_size = batch_plan(inputs.num_samples, batch_size, workers,
                                     raster_bytes_per_sample=num_steps * inputs.size)
    starts = range(0, inputs.num_samples, batch_size)

    def one_batch(start: int) -> BatchResult:
        stop = min(start + batch_size, inputs.num_samples)
        batch = (arithmetic.batch or run_batch)(network, arithmetic, inputs.raster(slice(start, stop)), num_steps,
                                                record_state)
        if progress is not None:
            progress(stop - start)
        return batch

    parts: dict[str, list] = {p.name: [] for p in network.populations}
    counters: dict[str, dict[str, int]] = {p.name: {} for p in network.populations}
    trace_parts: dict[str, dict[str, list]] = {p.name: {} for p in network.populations}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start, batch in zip(starts, pool.map(one_batch, starts)):
            for name, (sample, step, neuron) in batch.spikes.items():
                # Sorted int32 per batch: the batches then join in order (a run's events can be gigabytes).
                parts[name].append(sorted_events(sample + start, step, neuron))
                for key, count in batch.events[name].items():
                    counters[name][key] = counters[name].get(key, 0) + count
                for key, trace in batch.traces[name].items():
                    trace_parts[name].setdefault(key, []).append(trace)
    spikes = {}
    for p in network.populations:
        spikes[p.name] = SpikeEvents.from_blocks(parts.pop(p.name), num_samples=inputs.num_samples,
                                                 num_steps=num_steps, size=p.size)
    traces = {name: {key: np.concatenate(chunks) for key, chunks in per.items()}
              for name, per in trace_parts.items() if per}
    return spikes, counters, traces
