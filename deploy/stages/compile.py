"""compile: float network -> discrete network -> quantized network -> placement -> bundle.

The bundle carries a copy of the target description it was compiled for, so that verify can
estimate energy and latency without the description file.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ...targets.bundle import (Bundle, CalibrationReport, CompileReport, DelayReport, IntNetwork, Recommendation,
                               Source, StockReport, Timing)
from ...targets.description import Target
from ..artifacts.network import FloatNetwork
from ..artifacts.semantics import SIMULATOR_INTEGRATIONS
from ..artifacts.stimulus import DataOptions
from ..artifacts.tolerances import Tolerances
from ..errors import DeployError
from .discretize import discretize, latency_steps, run_steps, snapped_dt, unsnapped_dt
from .load import feed_forward_depths
from .place import place, placement_report
from .quantize import max_delay_steps, quantize
from .stimulus import reading_arguments
from .stock import PADDING_STEPS, stock_network

# About 128 steps per tau: a spike lands within 1/128 tau of its exact time, a Yin-Yang sample
# (4 tau) runs in about 510 steps, and the weight mantissa still spans the threshold finely.
DEFAULT_STEPS_PER_TAU = 128


# Relative spread within which every tau / r (and tau_syn / w_in) name one step: snnTorch computes them in float32.
IMPLIED_DT_TOLERANCE = 1e-6


def implied_dt(net: FloatNetwork) -> float | None:
    """The step that r = tau_mem / dt (and w_in = tau_syn / dt) in every LIF and CubaLIF layer implies, as snnTorch's
    export writes them (its hard-coded 1e-4 s); None where they name no one step, or where every r is NIR's 1."""
    ratios = []
    for layer in net.layers:
        if layer.dynamics in ("LIF", "CubaLIF"):
            ratios.append(layer.tau_mem / layer.r)
        if layer.dynamics == "CubaLIF":
            ratios.append(layer.tau_syn / layer.w_in)
    if not ratios or all(np.all(layer.r == 1) for layer in net.layers):
        return None
    ratios = np.concatenate(ratios)
    step = float(np.median(ratios))
    if not (np.all(np.isfinite(ratios)) and step > 0
            and np.all(np.abs(ratios - step) <= IMPLIED_DT_TOLERANCE * step)):
        return None
    return step


def implied_dt_note(net: FloatNetwork, dt: float) -> str | None:
    """A line for a run at ``dt`` under a simulator's step where the graph implies another (``implied_dt``), else
    None."""
    step = implied_dt(net) if net.semantics.integration in SIMULATOR_INTEGRATIONS else None
    if step is None or abs(dt - step) <= IMPLIED_DT_TOLERANCE * step:
        return None
    return (f"note: this graph's r = tau / dt (as snnTorch's export writes it) holds for dt = {step:.6g}, not the "
            f"{dt:g} of this compile: at another dt its inputs are scaled otherwise; check --dt")


def model_dt(net: FloatNetwork, dt: float | None) -> float | None:
    """The step the model fixes: ``dt`` if given; else, under a simulator's step, 1 where time is counted in steps,
    and an error where it is not (the simulator's step is part of the model, and NIR does not record it); None
    where the compiler may choose."""
    semantics = net.semantics
    if dt is not None or semantics.integration not in SIMULATOR_INTEGRATIONS:
        return dt
    if semantics.time_unit != "step":
        step = implied_dt(net)
        raise DeployError(f"--integration {semantics.integration} runs the network at the step its simulator took, "
                          "which the graph does not record: give it with --dt ("
                          + (f"its r = tau / dt holds for --dt {step:.6g}, as snnTorch's export writes it)"
                             if step is not None else "snnTorch's default export: --dt 1e-4 with --time-unit s)"))
    return 1.0


def choose_timing(net: FloatNetwork, steps_per_tau: float = DEFAULT_STEPS_PER_TAU, snap_decay: bool = True,
                  dt: float | None = None, *, decay_bits: int) -> Timing:
    """The given dt (e.g. the step a discrete-time model was trained at), or dt near tau / steps_per_tau (tau the
    network's most common time constant) snapped so the target's decay (of ``decay_bits``) is exact (unless told
    not to); enough steps to cover the horizon, plus the output's pipeline latency under a simulator's step
    (``discretize.latency_steps``). Under a simulator's step dt is the simulator's, part of the model: it must be
    given, unless time is counted in steps (dt = 1)."""
    dt = model_dt(net, dt)
    if dt is not None:
        if not (np.isfinite(dt) and dt > 0):
            raise DeployError(f"--dt must be a positive time, got {dt}")
    elif not (np.isfinite(steps_per_tau) and 1e-3 <= steps_per_tau <= 1e5):
        raise DeployError(f"--steps-per-tau must be in [0.001, 100000], got {steps_per_tau}")
    else:
        dt = snapped_dt(net, steps_per_tau, decay_bits) if snap_decay else unsnapped_dt(net, steps_per_tau)
    return Timing(dt=dt, num_steps=run_steps(net, dt), time_unit=net.semantics.time_unit,
                  latency_steps=latency_steps(net))


# The most steps a sample may run. bitsim and the discrete reference (which verify always runs) take
# about 180 us per step for a small network (10^6 steps of one sample of the 5-20-3 test network:
# 179 s on a 2-core machine), so 10^7 steps are half an hour per batch; the spike record's int32
# steps end at 2^31 - 1.
MAX_STEPS_PER_SAMPLE = 10**7


def check_steps(net: FloatNetwork, timing: Timing) -> None:
    """Refuse a run too short for the output to spike at all, or too long to simulate."""
    # A layer at feed-forward depth d can spike in step d + 1 at the earliest: the input spikes in
    # step 1 and every Dense stage delivers one step later.
    depth = feed_forward_depths(net.input_name, net.layers)[net.output]
    length = (f"a sample runs {timing.num_steps} step{'s' if timing.num_steps != 1 else ''} "
              f"(horizon {net.semantics.horizon:g} / dt {timing.dt:g})")
    if timing.num_steps < depth + 1:
        raise DeployError(f"{length}: the output {net.output} is {depth} Dense stages from the input, so it "
                          f"cannot spike before step {depth + 1}; give a --duration of at least "
                          f"{(depth + 1) * timing.dt:g} {timing.time_unit}")
    if timing.num_steps > MAX_STEPS_PER_SAMPLE:
        raise DeployError(f"{length}, more than the {MAX_STEPS_PER_SAMPLE:,} steps snn-deploy simulates "
                          "per sample (about half an hour of bitsim per batch); use a shorter --duration or "
                          "a larger --dt")


# compile's calibration default: a graph that names its shipped data set (a zoo model's export) is calibrated on its
# training split. Measured (tools/bench/calibration.py, RESULTS): yinyang-multispike 95.7% -> 97.1% on chip
# (float 97.5%) at about 8 s more compile time; with no data named, nothing is calibrated.
AUTO_CALIBRATION = "auto"


def default_calibration(net: FloatNetwork) -> str | None:
    """The training split of the shipped data set ``net``'s encoding names, or None."""
    from ...models.data import LOADERS

    dataset = (net.semantics.encoding or {}).get("dataset")
    return f"{dataset}:train" if dataset in LOADERS else None


def compile_network(net: FloatNetwork, target: Target, steps_per_tau: float = DEFAULT_STEPS_PER_TAU,
                    snap_decay: bool = True, max_chips: int = 1, dt: float | None = None,
                    split_weights: bool = False, stock: bool = False,
                    threshold_spread: float | None = None, calibrate: str | None = AUTO_CALIBRATION,
                    calibrate_samples: int | None = None, calibrate_options: DataOptions = DataOptions(),
                    round_delays: bool = False) -> Bundle:
    """``stock``: a bundle of Loihi 2's stock processes only (``stages.stock``), its neurons sharing thresholds
    within ``threshold_spread`` (default ``stock.DEFAULT_THRESHOLD_SPREAD``). ``calibrate``: a data spec (any
    ``stimulus.load_stimulus`` takes) whose first ``calibrate_samples`` samples (default
    ``calibrate.DEFAULT_CALIBRATION_SAMPLES``), read as ``calibrate_options`` say (a tonic data set's ``data_root``,
    time-stamped events' ``time_scale``, ``downsample``; no ``labels``), choose the integers (``stages.calibrate``);
    ``AUTO_CALIBRATION``:
    the training split of the data set the graph names (``default_calibration``), none if it names none.
    ``round_delays``: Delay nodes rounded to whole steps of dt, the error in the report
    (``discretize.delay_steps``)."""
    from . import stock as stock_stage

    timing = choose_timing(net, steps_per_tau, snap_decay, dt, decay_bits=target.widths.decay_bits)
    check_steps(net, timing)
    if threshold_spread is not None and not stock:
        raise DeployError("--threshold-spread applies to --stock bundles only")
    spread = (stock_stage.DEFAULT_THRESHOLD_SPREAD if threshold_spread is None else threshold_spread) if stock else None
    given = list(calibrate_options.given())
    # Before the default is chosen: they say how to read the user's data, never a shipped set's.
    if given and (calibrate is None or isinstance(calibrate, str) and calibrate == AUTO_CALIBRATION):
        raise DeployError(f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --calibrate DATA")
    if calibrate == AUTO_CALIBRATION:
        calibrate = None if stock else default_calibration(net)
    if calibrate is not None and stock:
        raise DeployError("--calibrate applies to bundles of programmable neurons, not --stock ones")
    if calibrate is None and calibrate_samples is not None:
        raise DeployError("--calibrate-samples needs --calibrate DATA")
    if calibrate_options.labels is not None:  # never read: calibration compares with the float model's decisions
        raise DeployError("calibration compares decisions with the float model's, not with labels: give no labels")
    if calibrate_samples is not None and calibrate_samples < 1:
        raise DeployError(f"--calibrate-samples must be at least 1, got {calibrate_samples}")
    if spread is not None and not spread >= 1:
        raise DeployError(f"--threshold-spread must be at least 1 (1: one process per distinct threshold), got {spread}")
    discrete = discretize(net, timing.dt, round_delays)
    quantized = quantize(discrete, target, split_weights, stock_spread=spread)
    delays = delay_report(quantized.network, target, round_delays, discrete.delay_rounding_error)
    if stock and delays is not None:
        raise DeployError("--stock: this network has delayed synapses (Delay nodes); stock bundles use Lava's Dense "
                          "only; compile without --stock")
    network, stock_report = quantized.network, None
    placement = place(network, target, max_chips=max_chips)
    if stock:
        fires_once = {disc.name: disc.fire_once for disc in discrete.populations}
        fires_once[discrete.input_name] = discrete.input_fires_once
        network, layers = stock_network(network, fires_once, target.widths, timing.num_steps)
        base = placement
        placement = place(network, target, max_chips=max_chips)
        timing = dataclasses.replace(timing, padding_steps=PADDING_STEPS)
        added = [pop for pop in network.populations if pop.name not in {p.name for p in quantized.network.populations}]
        stock_report = StockReport(
            extra_neurons=sum(pop.size for pop in added),
            extra_synapses=sum(int(np.count_nonzero(c.weights)) for c in network.connections)
            - sum(int(np.count_nonzero(c.weights)) for c in quantized.network.connections),
            extra_cores=placement.cores_used - base.cores_used,
            processes=sum(layer.processes for layer in layers.values()) + len(added),
            steps_per_sample=timing.steps_per_sample, padding_steps=timing.padding_steps,
            threshold_spread=float(spread), layers=layers)
    source = Source(nir_file=net.source_file, nir_sha256=net.source_sha256,
                    semantics={**json.loads(net.semantics.to_json()), "origin": net.semantics.origin},
                    nodes={layer.name: {"neuron": layer.name,
                                        "projections": [{"source": p.source, "synapses": list(p.nodes)}
                                                        for p in layer.projections]} for layer in net.layers},
                    tuned_from=net.tuned_from)
    bundle = Bundle(target=target.name, network=network, placement=placement, timing=timing,
                    widths=target.widths, backends=target.backends,
                    encoding=net.semantics.encoding, decoding=net.semantics.decoding, source=source,
                    report=CompileReport(quantization=quantized.report, placement=placement_report(placement, target),
                                         snapped_dt=snap_decay and model_dt(net, dt) is None, split_weights=split_weights,
                                         requested_steps_per_tau=steps_per_tau, target_spec=target.spec,
                                         stock=stock_report, delays=delays))
    if calibrate is None:
        return bundle
    from .calibrate import DEFAULT_CALIBRATION_SAMPLES
    from .stimulus import load_stimulus

    stimulus = load_stimulus(calibrate, DEFAULT_CALIBRATION_SAMPLES if calibrate_samples is None else calibrate_samples,
                             bundle, options=calibrate_options)
    # The selection's digest pins the spikes; the options say how a recording became them (e.g. its time scale).
    name = " ".join([stimulus.selection or stimulus.name, *reading_arguments(calibrate_options)])
    calibrated = _calibrated(bundle, discrete, target, max_chips, stimulus, name)
    if split_weights or kept_agreement(calibrated.report.calibration) >= Tolerances().min_agreement:
        return calibrated
    return _with_recommendation(calibrated, discrete, target, max_chips, stimulus, name)


def kept_agreement(record: CalibrationReport) -> float:
    """The fraction of the calibration data the bundle ``record`` belongs to decides like the float model."""
    return record.decision_agreement_after if record.applied else record.decision_agreement_before


def _calibrated(bundle: Bundle, discrete, target: Target, max_chips: int, stimulus, name: str) -> Bundle:
    """``bundle`` calibrated on ``stimulus`` (``stimulus.Stimulus``, named ``name`` in the record), placed again,
    with the calibration's record."""
    from .calibrate import calibrate

    calibrated, record = calibrate(bundle, discrete, stimulus.inputs, name)
    placement = place(calibrated.network, target, max_chips=max_chips)
    report = dataclasses.replace(bundle.report, placement=placement_report(placement, target), calibration=record)
    return dataclasses.replace(calibrated, placement=placement, report=report)


# The option compile tries (compile_network's split_weights) when the calibrated bundle decides its calibration data
# below verify's default agreement tolerance.
SPLIT_WEIGHTS_OPTION = "--split-weights"


def _with_recommendation(bundle: Bundle, discrete, target: Target, max_chips: int, stimulus, name: str) -> Bundle:
    """``bundle`` (calibrated on ``stimulus``, below tolerance there), its report with a ``Recommendation`` of
    --split-weights if the same network quantized with split weights and calibrated the same way decides
    ``stimulus`` more often like the float model (and fits the chips); else ``bundle`` as it is."""
    quantized = quantize(discrete, target, True)
    try:
        placement = place(quantized.network, target, max_chips=max_chips)
    except DeployError:  # split weights do not fit: nothing to recommend within --max-chips
        return bundle
    report = dataclasses.replace(bundle.report, quantization=quantized.report, split_weights=True,
                                 placement=placement_report(placement, target), calibration=None)
    split = _calibrated(dataclasses.replace(bundle, network=quantized.network, placement=placement, report=report),
                        discrete, target, max_chips, stimulus, name)
    record = bundle.report.calibration
    without, with_split = kept_agreement(record), kept_agreement(split.report.calibration)
    if with_split <= without:
        return bundle
    recommendation = Recommendation(
        option=SPLIT_WEIGHTS_OPTION, data=record.data, samples=record.samples, tolerance=Tolerances().min_agreement,
        agreement_without=without, agreement_with=with_split,
        synapses_without=bundle.placement.synapses, synapses_with=split.placement.synapses,
        memory_bytes_without=bundle.placement.memory_bytes, memory_bytes_with=split.placement.memory_bytes)
    return dataclasses.replace(bundle, report=dataclasses.replace(bundle.report, recommendation=recommendation))


def delay_report(network: IntNetwork, target: Target, rounded: bool, rounding_error: float) -> DelayReport | None:
    """The delays row of the compile report (None: no synapse is delayed)."""
    delayed = [conn for conn in network.connections if conn.delays is not None]
    if not delayed:
        return None
    synapses = sum(int(np.count_nonzero(conn.weights)) for conn in delayed)
    bits = int(target.value("synapse", "delay_bits"))
    return DelayReport(delayed_synapses=synapses, max_steps=max(conn.max_delay for conn in delayed),
                       limit_steps=int(max_delay_steps(target)), rounded=rounded, rounding_error=rounding_error,
                       memory_bytes=-(-synapses * bits // 8))
