"""verify: run a bundle on a back end and compare it with the float references -> a verdict.

Three models make the same decisions on the same samples:
  float     the trained model in continuous time (exact closed form), when the neuron allows;
  discrete  the float64 simulation of the chip's dynamics and step schedule, unquantized;
  chip      the bundle on a back end (bitsim, lava, loihi2).
Spike times are compared in chip steps. The compiler's exact discretization makes chip step n
sample every layer at t = n dt: the one-step delay of each Dense stage is the integration step
itself, so there is no extra pipeline delay to remove (see ``quantize``). A spike in step n marks
a threshold crossing in ((n - 1) dt, n dt], so each layer adds on average half a step of lateness.
float -> discrete is the time-discretization error; discrete -> chip is the quantization error.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...targets import decision
from ...targets import record as record_io
from ...targets.bundle import Bundle
from ...targets.record import SpikeEvents, SpikeRecord
from ..artifacts.firing import CountTally
from ..artifacts.network import FloatNetwork
from ..artifacts.robustness import RobustnessLevel, RobustnessSpec
from ..artifacts.semantics import FIELDS, compiled_semantics, first_difference, semantic_fields
from ..artifacts.stimulus import DataOptions, DataReport, DataSpec, Stimulus
from ..artifacts.tolerances import Tolerances
from ..artifacts.verdict import (Accuracy, Activity, Comparison, DecisionFlips, DivergentSample, Divergence,
                                 ErrorBudget, HardwareEvents, MembraneError, Metrics, ReadoutMetrics, SpikeCountError,
                                 SpikeTimeErrors, StepRange, TunedGraphRecord, Verdict)
from ..errors import DeployError, require_extra
from ..references import continuous as continuous_reference
from ..references import discrete as discrete_reference
from .discretize import discretize
from .energy import decision_steps, estimate, synaptic_ops
from .firing import firing_statistics
from .latency import decision_timing
from .load import from_graph, load
from .robustness import parse_robustness, perturb
from .run import run_inputs
from .stimulus import encode, joined_reports, load_stimulus_part
from .tolerances import checks

def decide(spikes: SpikeEvents, decoding: str, membrane: np.ndarray | None = None, latency_steps: int = 0
           ) -> np.ndarray:
    """Decision per sample by the one decision rule (``targets.decision``): of the output's spikes, or, for a
    membrane decoding, of its (samples, steps, neurons) ``membrane`` after the ``latency_steps`` of the pipeline
    (``bundle.Timing.latency_steps``: the steps before the output's first input, which the model does not have)."""
    if decoding in decision.MEMBRANE_DECODINGS:
        return decision.decide_membrane(membrane[:, latency_steps:], decoding)
    return decision.decide(_steps(spikes), spikes.counts(), decoding)


def readout_metrics(comparison: Comparison, bundle: Bundle) -> ReadoutMetrics | None:
    """The readout output's membrane error, chip against the discrete reference, in chip units (None: a spiking
    output)."""
    out = bundle.network.output
    if comparison.discrete_membrane is None:
        return None
    quantization = bundle.report.quantization[out]
    chip = comparison.record.membrane(out).astype(np.float64)
    scaled = quantization.scale * comparison.discrete_membrane
    error = np.abs(chip - scaled).reshape(-1, chip.shape[2])
    stats = (np.median(error, axis=0), np.percentile(error, 95, axis=0), error.max(axis=0)) if error.size else (
        np.zeros(chip.shape[2]),) * 3
    return ReadoutMetrics(layer=out, scale=quantization.scale,
                          error=MembraneError(*(tuple(float(x) for x in values) for values in stats)),
                          float_range=float(np.abs(scaled).max(initial=0.0)),
                          readout_spikes=int(comparison.record.spikes[out].events.shape[1]),
                          headroom=quantization.v_headroom)


def spike_count_error(tally: CountTally) -> SpikeCountError:
    """Per neuron and sample of a layer's firing tally, |chip count - reference count|: its mean, its maximum,
    and the reference's mean count for scale."""
    pairs = max(tally.pairs, 1)
    return SpikeCountError(mean_abs=tally.abs_difference / pairs, max_abs=tally.max_abs_difference,
                           reference_mean=tally.reference_total / pairs,
                           samples_identical=tally.identical_samples / max(tally.samples, 1))


def first_divergence_steps(chip: SpikeEvents, reference_spikes: SpikeEvents) -> np.ndarray:
    """Per sample, the first step at which the two spike trains differ (a spike in one and not the
    other), or -1 where they are identical. In batches of samples (a sample's keys never meet another's),
    each within ``record.BATCH_BYTES``: about 32 bytes per event of both (the int64 keys, their sorted union)."""
    def keys(events: np.ndarray) -> np.ndarray:
        sample, step, neuron = events.astype(np.int64)
        return (sample * (chip.num_steps + 1) + step) * chip.size + neuron

    steps = np.full(chip.num_samples, -1, np.int64)
    events = chip.events.shape[1] + reference_spikes.events.shape[1]
    batch = record_io.samples_per_batch(32 * events // max(chip.num_samples, 1))
    for start in range(0, chip.num_samples, batch):
        stop = min(start + batch, chip.num_samples)
        differing = np.setxor1d(keys(chip.sample_range(start, stop).events),
                                keys(reference_spikes.sample_range(start, stop).events), assume_unique=True)
        sample, step = np.divmod(differing // chip.size, chip.num_steps + 1)
        # Keys sort by sample, then step: the first key of each sample holds its first differing step.
        first = np.unique(sample, return_index=True)[1]
        steps[start + sample[first]] = step[first]
    return steps


def divergence(chip: dict[str, SpikeEvents], reference_spikes: dict[str, SpikeEvents], layer_order) -> Divergence:
    """Where chip and discrete reference first part, per sample: the earliest step at which any layer's
    spikes differ, and the first layer (in ``layer_order``) that differs at that step. Summarized as
    the fraction of samples identical in every layer, the count of samples by first divergent layer,
    and the step distribution."""
    per_layer = np.stack([first_divergence_steps(chip[name], reference_spikes[name]) for name in layer_order])
    diverged = (per_layer >= 0).any(axis=0)
    step = np.where(per_layer >= 0, per_layer, np.iinfo(np.int64).max).min(axis=0)
    layer = np.argmax(per_layer == step[None, :], axis=0)
    steps = step[diverged]
    return Divergence(
        samples_identical=float(np.mean(~diverged)),
        first_layer={name: int(np.sum(diverged & (layer == index))) for index, name in enumerate(layer_order)},
        first_step=StepRange(int(steps.min()), float(np.median(steps)), int(steps.max())) if steps.size else None,
        per_sample=tuple(DivergentSample(int(i), layer_order[layer[i]], int(step[i]))
                         for i in np.flatnonzero(diverged)[:DIVERGENCE_SAMPLES_LISTED]))


# The verdict lists this many diverging samples by name (the counts cover all of them).
DIVERGENCE_SAMPLES_LISTED = 20


def _spike_time_errors(a: np.ndarray, b: np.ndarray) -> SpikeTimeErrors:
    """Compare two (samples, neurons) spike-time arrays in steps, +inf / NaN meaning silent."""
    a_fired, b_fired = np.isfinite(a), np.isfinite(b)
    both = a_fired & b_fired
    errors = (np.where(both, a, 0.0) - np.where(both, b, 0.0))[both]
    magnitude = np.abs(errors)
    stats = ((float(np.median(magnitude)), float(np.percentile(magnitude, 95)), float(magnitude.max()),
              float(errors.mean())) if errors.size else (None, None, None, None))
    return SpikeTimeErrors(int(errors.size), *stats, only_first=int((a_fired & ~b_fired).sum()),
                           only_second=int((~a_fired & b_fired).sum()))


def _steps(spikes: SpikeEvents) -> np.ndarray:
    first = spikes.first_spike_steps().astype(np.float64)
    first[first < 0] = np.inf
    return first


def _activity(bundle: Bundle, inputs: SpikeEvents, record: SpikeRecord) -> Activity:
    """Synaptic operations (spikes x fan-out) and neuron updates, per inference."""
    spikes = {bundle.network.input.name: inputs, **record.spikes}
    synops = 0
    per_connection = {}
    for conn in bundle.network.connections:
        ops = synaptic_ops(conn, spikes[conn.source])
        per_connection[conn.name] = ops / max(record.num_samples, 1)
        synops += ops
    updates = sum(pop.size for pop in bundle.network.populations) * record.num_steps
    return Activity(synaptic_ops_per_inference=synops / max(record.num_samples, 1),
                    synaptic_ops_per_connection=per_connection, neuron_updates_per_inference=updates,
                    spikes_per_inference={name: s.events.shape[1] / max(record.num_samples, 1)
                                          for name, s in record.spikes.items()})


def rounds_delays(bundle: Bundle) -> bool:
    """Whether the bundle was compiled with --round-delays: its discrete reference rounds them as it did."""
    return bundle.report is not None and bundle.report.delays is not None and bundle.report.delays.rounded


def check_pair(net: FloatNetwork, bundle: Bundle) -> None:
    """The bundle must have been compiled from this graph, or from a graph tuned from it (``Source.tuned_from``),
    with these semantics."""
    stored, tuned = bundle.source.nir_sha256, bundle.source.tuned_from
    accepted = {stored} if tuned is None else {stored, tuned.nir_sha256}
    if stored and net.source_sha256 and net.source_sha256 not in accepted:
        tuned_text = "" if tuned is None else f", tuned from {tuned.nir_file} (sha256 {tuned.nir_sha256[:12]})"
        raise DeployError(f"the bundle was compiled from {bundle.source.nir_file} (sha256 {stored[:12]}){tuned_text}, "
                          f"not from {net.source_file} (sha256 {net.source_sha256[:12]})")
    compiled = compiled_semantics(bundle.source.semantics)
    differing = first_difference(compiled, net.semantics)
    if differing:
        raise DeployError(f"the bundle was compiled with {differing} {_shown(getattr(compiled, differing))}, the float "
                          f"model has {_shown(getattr(net.semantics, differing))}; load the graph with the bundle's "
                          "semantics (reference_network)")


def tuned_graph_record(net: FloatNetwork, bundle: Bundle) -> TunedGraphRecord | None:
    """That the bundle was compiled from a fine-tuned graph, and which float model ``net`` is: the original (its
    graph's metadata does not carry the bundle's ``tuned_from``) or the tuned graph itself. None: not tuned."""
    tuned = bundle.source.tuned_from
    if tuned is None:
        return None
    return TunedGraphRecord(tuned_file=bundle.source.nir_file, tuned_sha256=bundle.source.nir_sha256,
                            original_file=tuned.nir_file, original_sha256=tuned.nir_sha256, data=tuned.data,
                            settings=tuned.settings,
                            compared_with="tuned" if net.tuned_from == tuned else "original")


def _shown(value) -> str:
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def reference_network(nir_path, bundle: Bundle, options: dict[str, Any] | None = None,
                      dt: float | None = None) -> FloatNetwork:
    """The float model a bundle is verified against: its NIR graph (a file, or a nir.NIRGraph), read with the semantics the bundle was
    compiled with (the bundle is their one source). ``options`` (semantic field -> value, None = not given)
    and ``dt`` may restate them; one that contradicts the bundle is a DeployError naming both values."""
    compiled = compiled_semantics(bundle.source.semantics)
    if dt is not None and dt != bundle.timing.dt:
        raise DeployError(f"the bundle was compiled with dt {bundle.timing.dt!r} {bundle.timing.time_unit}; "
                          f"--dt {dt!r} contradicts it")
    for name, value in (options or {}).items():
        if name not in FIELDS:
            raise DeployError(f"unknown semantic option {name!r} (known: {', '.join(FIELDS)})")
        if value is not None and value != getattr(compiled, name):
            option = FIELDS[name].option if name != "fire_once" else ("--fire-once" if value else "--multi-spike")
            shown = "" if name == "fire_once" else f" {_shown(value)}"
            raise DeployError(f"the bundle was compiled with {name} {_shown(getattr(compiled, name))}; "
                              f"{option}{shown} contradicts it")
    fields = semantic_fields(compiled)
    net = load(nir_path, fields) if isinstance(nir_path, (str, Path)) else from_graph(nir_path, fields)
    net = replace(net, semantics=compiled)
    check_pair(net, bundle)
    return net


def compare(net: FloatNetwork, bundle: Bundle, features: np.ndarray, labels: np.ndarray, *,
            backend: str = "bitsim", progress: Callable[[int], None] | None = None,
            record: SpikeRecord | None = None, engine: str | None = None, workers: int = 1,
            scheduler: str | None = None) -> Comparison:
    """Encode a data set by the graph's encoding, then ``compare_spikes``."""
    times_in, inputs = encode(bundle, features)
    return compare_spikes(net, bundle, inputs, labels=labels, times_in=times_in, backend=backend,
                          progress=progress, record=record, engine=engine, workers=workers, scheduler=scheduler)


def compare_spikes(net: FloatNetwork, bundle: Bundle, inputs: SpikeEvents, *, labels: np.ndarray | None = None,
                   times_in: np.ndarray | None = None, backend: str = "bitsim",
                   progress: Callable[[int], None] | None = None, record: SpikeRecord | None = None,
                   engine: str | None = None, workers: int = 1, scheduler: str | None = None) -> Comparison:
    """Run ``bundle`` on ``backend`` (with bitsim's ``engine``, None: its default; ``run.run_inputs``), or take an
    existing ``record``, and the float references on the same input spikes. The continuous reference needs the
    input spike times (``times_in``) too. ``workers`` > 1 or a Dask ``scheduler`` address splits the samples
    (``compare_split``): the same comparison."""
    check_pair(net, bundle)
    dt, num_steps = bundle.timing.dt, bundle.timing.num_steps
    if inputs.size != bundle.network.input.size:
        raise DeployError(f"the input has {inputs.size} channels; the network takes {bundle.network.input.size}")
    if workers != 1 or scheduler is not None:
        return compare_split(net, bundle, Stimulus("", inputs, labels, times_in), backend=backend, progress=progress,
                             record=record, engine=engine, workers=workers, scheduler=scheduler)[0]
    if record is None:
        record = run_inputs(bundle, inputs, backend=backend, engine=engine, progress=progress)
    discrete, _, discrete_traces = discrete_reference.run(discretize(net, dt, rounds_delays(bundle)), inputs,
                                                         num_steps)
    continuous = (continuous_reference.first_spike_times(net, times_in)
                  if times_in is not None and continuous_reference.supports(net) else None)

    out = bundle.network.output
    readout = bundle.network.population(out).readout
    discrete_membrane = discrete_traces[out]["v"] if readout else None
    latency = bundle.timing.latency_steps
    decisions = {"discrete": decide(discrete[out], bundle.decoding, discrete_membrane, latency),
                 "chip": decide(record.spikes[out], bundle.decoding,
                                record.membrane(out) if readout else None, latency)}
    times = {"chip": {}, "discrete": {}, "float": {}}
    for index, layer in enumerate(net.layers):
        times["chip"][layer.name] = _steps(record.spikes[layer.name])
        times["discrete"][layer.name] = _steps(discrete[layer.name])
        # A spike after the run's last step cannot be observed on the chip: the reference stops there too.
        times["float"][layer.name] = (np.where(continuous[index] / dt <= num_steps, continuous[index] / dt, np.inf)
                                      if continuous is not None else times["discrete"][layer.name])
    if continuous is not None:
        # Fire-once neurons: a finite time is one spike.
        decisions["float"] = decision.decide(continuous[-1], np.isfinite(continuous[-1]), bundle.decoding)
    else:
        decisions["float"] = decisions["discrete"]
    return Comparison(labels=None if labels is None else np.asarray(labels), decisions=decisions, times=times,
                      inputs=inputs, record=record, discrete=discrete, discrete_membrane=discrete_membrane,
                      float_reference="continuous" if continuous is not None else "discrete")


def compare_stimulus(net: FloatNetwork, bundle: Bundle, stimulus: Stimulus | DataSpec, *, backend: str = "bitsim",
                     progress: Callable[[int], None] | None = None, record: SpikeRecord | None = None,
                     engine: str | None = None, workers: int = 1,
                     scheduler: str | None = None) -> tuple[Comparison, DataReport | None]:
    """``compare_spikes`` on what ``stimulus.select_data`` gave: a loaded Stimulus, or a DataSpec whose samples
    the workers load part by part (``compare_split``). With it, how the user's data were read (the
    stimulus's report; of a DataSpec, the parts' reports added up)."""
    if isinstance(stimulus, DataSpec):
        check_pair(net, bundle)
        return compare_split(net, bundle, stimulus, backend=backend, progress=progress, record=record, engine=engine,
                             workers=workers, scheduler=scheduler)
    return compare_spikes(net, bundle, stimulus.inputs, labels=stimulus.labels, times_in=stimulus.times,
                          backend=backend, progress=progress, record=record, engine=engine, workers=workers,
                          scheduler=scheduler), stimulus.report


def partitions(num_samples: int, parts: int) -> list[tuple[int, int]]:
    """The samples [0, num_samples) as at most ``parts`` contiguous ranges [start, stop) of nearly equal size, in
    order, none empty: how ``--workers`` and ``--scheduler`` split a verification."""
    bounds = np.linspace(0, num_samples, parts + 1).round().astype(int)
    return [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]


@dataclass(frozen=True)
class Part:
    """One worker's share of a split verification: samples [start, stop) of ``data``. A DataSpec is loaded by the
    worker itself (``load_stimulus_part``); in-memory data (a Stimulus) travel as the part's own samples."""

    data: DataSpec | Stimulus
    start: int
    stop: int


def compare_part(net: FloatNetwork, bundle: Bundle, part: Part, backend: str,
                 engine: str | None) -> tuple[Comparison, DataReport | None]:
    """What a worker runs: load (or take) its samples, then ``compare_spikes`` in this process; with how its
    samples of the user's data were read."""
    stimulus = (load_stimulus_part(part.data, bundle, part.start, part.stop, references=True)
                if isinstance(part.data, DataSpec) else part.data)
    return compare_spikes(net, bundle, stimulus.inputs, labels=stimulus.labels, times_in=stimulus.times,
                          backend=backend, engine=engine), stimulus.report


def compare_split(net: FloatNetwork, bundle: Bundle, data: Stimulus | DataSpec, *, backend: str,
                  progress: Callable[[int], None] | None, record: SpikeRecord | None, engine: str | None,
                  workers: int, scheduler: str | None) -> tuple[Comparison, DataReport | None]:
    """``compare_spikes`` with the samples split into contiguous parts (``partitions``), each compared by a worker
    of its own (``compare_part``), the parts joined in sample order. Without ``scheduler`` the workers are
    ``workers`` local processes; with it, the tasks of a Dask distributed scheduler at that address, ``workers``
    of them (1: one per thread of the cluster's workers). Samples are independent in the back ends and in both
    references, so the comparison is the one a single process makes; so is the report of how the data were read
    (returned with it), the parts' counts added up."""
    if workers < 1:
        raise DeployError(f"--workers must be at least 1, not {workers}")
    if record is not None:
        raise DeployError("--workers and --scheduler split a run of the back end; a replayed record is verified in "
                          "one process")
    pool = _dask_pool(scheduler, workers) if scheduler is not None else _process_pool(workers)
    with pool as (submit, count):
        parts = [Part(data if isinstance(data, DataSpec) else _stimulus_range(data, start, stop), start, stop)
                 for start, stop in partitions(data.num_samples, count)]
        futures = [submit(compare_part, net, bundle, part, backend, engine) for part in parts]
        done = []
        for part, future in zip(parts, futures):
            done.append(future.result())
            if progress is not None:
                progress(part.stop - part.start)
    reports = [report for _, report in done]
    return _joined([comparison for comparison, _ in done]), (None if reports[0] is None else joined_reports(reports))


@contextmanager
def _process_pool(workers: int):
    """``workers`` local processes: yields (submit(function, *arguments) -> a future, the number of parts)."""
    # "spawn": a forked child would inherit the parent's threads (numba's, torch's) in whatever state they are.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.submit, workers


# Seconds to wait for a Dask scheduler to answer before --scheduler is refused as unreachable.
SCHEDULER_CONNECT_TIMEOUT = 10.0


@contextmanager
def _dask_pool(address: str, workers: int):
    """The Dask distributed scheduler at ``address`` (imported here: deploy/ imports without dask)."""
    require_extra("distributed", "--scheduler")
    import distributed

    _reach(address)
    with distributed.Client(address, timeout=SCHEDULER_CONNECT_TIMEOUT, set_as_default=False) as client:
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise DeployError(f"the Dask scheduler at {address!r} has no workers")
        # pure=False: every part is run, none taken for another with equal arguments.
        yield (lambda function, *arguments: client.submit(function, *arguments, pure=False)), \
            (threads if workers == 1 else workers)


def _reach(address: str) -> None:
    """Refuse a scheduler address that is malformed or does not answer within SCHEDULER_CONNECT_TIMEOUT, in one
    line. Probed with a bare connection: a Client that failed to connect prints tracebacks when collected."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def probe():
        comm = await connect(address, timeout=SCHEDULER_CONNECT_TIMEOUT)
        await comm.close()

    # A thread of its own: asyncio.run cannot run inside an event loop that is already running (a notebook's).
    with ThreadPoolExecutor(1) as thread:
        try:
            thread.submit(asyncio.run, probe()).result()
        except (OSError, ValueError, TypeError) as exc:  # refused or timed out (OSError), a malformed address
            raise DeployError(f"cannot reach the Dask scheduler at {address!r}: {' '.join(str(exc).split())}") \
                from None


def _stimulus_range(stimulus: Stimulus, start: int, stop: int) -> Stimulus:
    """Samples [start, stop) of an in-memory stimulus (its input spikes, labels and input times)."""
    return Stimulus(stimulus.name, stimulus.inputs.sample_range(start, stop),
                    None if stimulus.labels is None else stimulus.labels[start:stop],
                    None if stimulus.times is None else stimulus.times[start:stop])


def _joined_events(parts: list[SpikeEvents]) -> SpikeEvents:
    """Events of consecutive sample ranges as one: each part's samples shifted past the parts before it."""
    offsets = np.cumsum([0] + [part.num_samples for part in parts])
    sample, step, neuron = (np.concatenate(rows) for rows in zip(*(
        (part.events[0] + offset, part.events[1], part.events[2]) for part, offset in zip(parts, offsets))))
    return SpikeEvents.from_arrays(sample, step, neuron, num_samples=int(offsets[-1]), num_steps=parts[0].num_steps,
                                   size=parts[0].size)


def _joined(parts: list[Comparison]) -> Comparison:
    """The comparisons of consecutive sample ranges as one comparison of all of them."""
    first = parts[0]
    inputs = _joined_events([part.inputs for part in parts])
    labels = None if first.labels is None else np.concatenate([part.labels for part in parts])
    counters = {name: {key: sum(part.record.counters[name][key] for part in parts) for key in keys}
                for name, keys in first.record.counters.items()}
    record = replace(first.record, num_samples=inputs.num_samples, counters=counters,
                     spikes={name: _joined_events([part.record.spikes[name] for part in parts])
                             for name in first.record.spikes},
                     traces={name: {key: np.concatenate([part.record.traces[name][key] for part in parts])
                                    for key in per} for name, per in first.record.traces.items()})
    decisions = {key: np.concatenate([part.decisions[key] for part in parts]) for key in first.decisions}
    times = {model: {layer: np.concatenate([part.times[model][layer] for part in parts]) for layer in per_layer}
             for model, per_layer in first.times.items()}
    discrete = {name: _joined_events([part.discrete[name] for part in parts]) for name in first.discrete}
    membrane = (None if first.discrete_membrane is None
                else np.concatenate([part.discrete_membrane for part in parts]))
    return Comparison(labels=None if labels is None else np.asarray(labels), decisions=decisions, times=times,
                      inputs=inputs, record=record, float_reference=first.float_reference, discrete=discrete,
                      discrete_membrane=membrane)


def robustness_levels(net: FloatNetwork, bundle: Bundle, stimulus: Stimulus, spec: RobustnessSpec, *,
                      backend: str = "bitsim", engine: str | None = None, workers: int = 1,
                      scheduler: str | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[RobustnessLevel, ...]:
    """Chip and float decisions on each perturbed copy of the stimulus (``robustness.perturb``): one more
    comparison per level."""
    levels = []
    for perturbation in spec.perturbations:
        noisy = perturb(stimulus, bundle, perturbation, spec.seed)
        comparison = compare_spikes(net, bundle, noisy.inputs, labels=noisy.labels, times_in=noisy.times,
                                    backend=backend, engine=engine, workers=workers, scheduler=scheduler,
                                    progress=progress)
        chip, float_model = comparison.decisions["chip"], comparison.decisions["float"]
        labels = noisy.labels
        levels.append(RobustnessLevel(
            perturbation.kind, perturbation.level,
            accuracy_chip=None if labels is None else float(np.mean(chip == labels)),
            accuracy_float=None if labels is None else float(np.mean(float_model == labels)),
            agreement=float(np.mean(chip == float_model))))
    return tuple(levels)


def bundle_target(bundle: Bundle):
    """The target description a bundle was compiled for: its own copy, else the named file."""
    from ...targets import description

    spec = bundle.report.target_spec if bundle.report is not None else None
    try:
        return description.from_spec(spec, f"<bundle {bundle.checksum[:12]}>") if spec else \
            description.load(bundle.target)
    except description.TargetError as exc:
        raise DeployError(str(exc)) from None


def judge(comparison: Comparison, net: FloatNetwork, bundle: Bundle, *, dataset: str = "",
          tolerances: Tolerances = Tolerances(), data: DataReport | None = None,
          robustness: tuple[RobustnessLevel, ...] = ()) -> Verdict:
    """Summarize a comparison into metrics (energy, latency and decision timing included) and check the
    tolerances. ``data``: how the user's data were read (the stimulus's report), stated in the verdict as
    "data"; ``robustness``: the levels ``stages.robustness`` measured, stated as they are."""

    c = comparison
    target = bundle_target(bundle)
    timing = decision_timing(c, bundle, target)
    accuracy = (Accuracy(**{name: float(np.mean(d == c.labels)) for name, d in c.decisions.items()})
                if c.labels is not None else None)
    errors, budget = {}, {}
    for layer in net.layers:
        chip_t, disc_t, float_t = (c.times[m][layer.name] for m in ("chip", "discrete", "float"))
        errors[layer.name] = _spike_time_errors(chip_t, float_t)
        budget[layer.name] = ErrorBudget(discretization=_spike_time_errors(disc_t, float_t),
                                         quantization=_spike_time_errors(chip_t, disc_t))
    firing = firing_statistics(c.record.spikes, c.discrete, [layer.name for layer in net.layers])
    metrics = Metrics(
        samples=int(c.inputs.num_samples), dataset=dataset, backend=c.record.backend, target=bundle.target,
        bundle_checksum=bundle.checksum, nir_file=net.source_file,
        dt=bundle.timing.dt, time_unit=bundle.timing.time_unit, num_steps=bundle.timing.num_steps,
        accuracy=accuracy,
        agreement=float(np.mean(c.decisions["chip"] == c.decisions["float"])),
        decision_flips=DecisionFlips(
            float_to_discrete=int(np.sum(c.decisions["float"] != c.decisions["discrete"])),
            discrete_to_chip=int(np.sum(c.decisions["discrete"] != c.decisions["chip"]))),
        spike_time_error_steps=errors,
        error_budget_steps=budget,
        output_spike_count_error=spike_count_error(firing.layers[bundle.network.output].tally),
        divergence=divergence(c.record.spikes, c.discrete, [layer.name for layer in net.layers]),
        firing=firing,
        activity=_activity(bundle, c.inputs, c.record),
        hardware_events={name: HardwareEvents(**counters) for name, counters in c.record.counters.items()},
        float_reference=c.float_reference,
        energy=estimate(bundle, c.record, c.inputs, target,
                        decision_steps(c.record.spikes[bundle.network.output], bundle.decoding)),
        decision_latency_steps=timing.decision_latency_steps, accuracy_by_step=timing.accuracy_by_step,
        early_decision=timing.early_decision, difficulty=timing.difficulty, robustness=tuple(robustness),
        data=data, readout=readout_metrics(c, bundle),
        calibration=bundle.report.calibration if bundle.report is not None else None,
        tuned_graph=tuned_graph_record(net, bundle),
        recommendation=bundle.report.recommendation if bundle.report is not None else None,
        split_weights=bundle.report is not None and bundle.report.split_weights)
    failures = tuple(check.failure for check in checks(metrics, tolerances) if not check.passed)
    return Verdict(metrics=metrics, tolerances=tolerances, failures=failures)


def verify(graph, bundle, data=None, labels=None, *, samples: int | None = None, backend: str = "bitsim",
           tolerances: Tolerances | dict[str, Any] | None = None, time_scale: float | None = None,
           data_root=None, downsample: tuple[int, int] | None = None, dataset: str = "",
           progress: Callable[[int], None] | None = None, record: SpikeRecord | None = None,
           engine: str | None = None, workers: int = 1, scheduler: str | None = None,
           robustness: str | RobustnessSpec | None = None) -> Verdict:
    """Does the chip decide as the float model does, on this data? The verdict ``snn-deploy verify`` prints.

    ``graph``: the NIR file the bundle was compiled from (read with the bundle's semantics), a nir.NIRGraph,
    or a loaded FloatNetwork. ``bundle``: a bundle file or a Bundle. ``data``: whatever ``--data`` takes
    ("yinyang:test", "test.npz", "run.h5", "nmnist:test" with ``data_root``, "random:seed=1"), or a
    (samples, steps, channels) raster, a SpikeEvents, NIR data, a tonic data set object, or (samples,
    features) features for the bundle's input encoding. ``labels``: one class per sample (an array or a
    sequence of integers, or a file as ``--labels`` takes) for data without their own. ``tolerances``: a
    Tolerances, or options over the graph's tolerance file (as the command line's); ``max_accuracy_drop`` among
    the options needs labels.
    ``engine``: bitsim's engine. ``workers``: the local processes the comparison is split between; ``scheduler``:
    the address of a Dask distributed scheduler whose workers it is split between instead (``workers`` then
    sets the number of parts; 1: one per worker thread). Data named by a spec (a shipped data set split,
    random spike trains) are loaded by each worker, its own samples only; the verdict is a single process's.
    ``robustness``: input noise levels to run as well ("jitter=0.5,1;drop=0.1", as ``--robustness``); the samples
    are then loaded (and perturbed) in this process.
    """
    from ...targets import bundle as bundle_io
    from .stimulus import require_labels, select_data
    from .tolerances import load_tolerances

    if isinstance(robustness, str):
        robustness = parse_robustness(robustness)
    if robustness is not None and record is not None:
        raise DeployError("robustness runs the back end on perturbed inputs; it cannot take a replayed record")
    if not isinstance(bundle, Bundle):
        bundle = bundle_io.load(bundle)
    net = graph if isinstance(graph, FloatNetwork) else reference_network(graph, bundle)
    asked = {} if isinstance(tolerances, Tolerances) else dict(tolerances or {})
    if not isinstance(tolerances, Tolerances):
        tolerances = load_tolerances(graph if isinstance(graph, (str, Path)) else None, asked)
    options = DataOptions(labels=labels, data_root=data_root, time_scale=time_scale, downsample=downsample)
    stimulus = select_data(data, samples, bundle, options=options, references=True,
                           split=record is None and robustness is None and (workers != 1 or scheduler is not None))
    if asked.get("max_accuracy_drop") is not None:
        require_labels(stimulus, "max_accuracy_drop")
    comparison, report = compare_stimulus(net, bundle, stimulus, backend=backend, progress=progress, record=record,
                                          engine=engine, workers=workers, scheduler=scheduler)
    levels = () if robustness is None else robustness_levels(net, bundle, stimulus, robustness, backend=backend,
                                                             engine=engine, workers=workers, scheduler=scheduler)
    return judge(comparison, net, bundle, dataset=dataset or stimulus.name, tolerances=tolerances, data=report,
                 robustness=levels)
