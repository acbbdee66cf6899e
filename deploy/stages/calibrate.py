"""calibrate: choose the integers round-to-nearest fixes blindly, from calibration data (``compile --calibrate``).

The float weights stay as trained; what changes is how each is represented in the target's integer formats:

- per-block exponents by rows: a layer fed by several blocks gives each neuron one scale, set by its largest
  weight over all of them, so a block of small weights (an Affine bias through a constant source, a weak input)
  is left a few mantissa levels. Its rows are regrouped by the exponent each needs, one Dense block per group:
  the same synapses, each row with a full mantissa;
- the rounding direction of each weight (in the spirit of AdaRound): per neuron, up or down, by coordinate
  descent on the membrane error e^T P e over the calibration data, where e is the weights' error and P the
  second moment of the inputs filtered by the neuron's current and voltage decays (what a weight's error adds
  to v), with the part a bias can absorb projected out;
- a bias correction: the chip bias (added to v each step) that cancels the remaining error's least-squares part.

Readout layers (their scale comes from their worst-case bound) and layers with delayed inputs keep quantize's
integers. The calibrated network is kept only if it decides the calibration data at least as often as the default
network does like the float discrete model; the report says which was kept, and per layer the membrane error
and the spike agreement before and after. Deterministic: the same data give the same integers.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ...targets import bitsim, decision
from ...targets import fixed_point as fx
from ...targets.bundle import Bundle, CalibrationReport, DenseConnection, LayerCalibration, LifPopulation
from ...targets.record import SpikeEvents
from ..artifacts.discrete import DiscreteNetwork, Discretization
from ..references import discrete as discrete_reference
from .quantize import SPLIT_LOW_PART, bias_fields, weight_exponent
from .verify import decide

DEFAULT_CALIBRATION_SAMPLES = 200
# Coordinate-descent passes over a layer's weights: later passes change almost nothing.
ROUNDING_PASSES = 2
# Samples filtered at once when gathering a layer's input moments (bounds the memory of the filtered inputs).
MOMENT_BATCH = 16
EXPONENT_GROUP = ":exp"  # a regrouped block's name: its source, target and exponent


@dataclasses.dataclass(frozen=True)
class _Moments:
    """A layer's calibration inputs, filtered by its current and voltage decays: the second moment P (bias part
    projected out), the cross moment c with the filtered constant 1 a bias adds, its square norm hh, the
    unprojected second moment G and the number of (sample, step) rows."""

    projected: np.ndarray
    cross: np.ndarray
    bias_norm: float
    second: np.ndarray
    rows: int


def _filtered(raster: np.ndarray, alpha_u: float, alpha_v: float) -> np.ndarray:
    """(samples, steps, n) spikes -> what a unit weight on each adds to v, step by step (float32)."""
    u = np.zeros(raster.shape[::2], np.float32)
    v = np.zeros_like(u)
    out = np.empty(raster.shape, np.float32)
    for t in range(raster.shape[1]):
        u = alpha_u * u + raster[:, t]
        v = alpha_v * v + u
        out[:, t] = v
    return out


def _moments(disc: Discretization, sources: list[str], spikes: dict[str, SpikeEvents]) -> _Moments:
    # One decay per layer (the median): layers with per-neuron decays get the typical one's filter.
    alpha_u, alpha_v = float(np.median(disc.alpha_u)), float(np.median(disc.alpha_v))
    num_samples, num_steps = next(iter(spikes.values())).num_samples, next(iter(spikes.values())).num_steps
    width = sum(spikes[s].size for s in sources)
    second, cross = np.zeros((width, width)), np.zeros(width)
    bias = _filtered(np.ones((1, num_steps, 1), bool), 1.0, alpha_v)[0, :, 0]  # a v bias: v = a_v v + b
    for start in range(0, num_samples, MOMENT_BATCH):
        part = slice(start, min(start + MOMENT_BATCH, num_samples))
        raster = np.concatenate([spikes[s].raster(part) for s in sources], axis=2)
        f = _filtered(raster, alpha_u, alpha_v)
        cross += np.einsum("stn,t->n", f, bias, dtype=np.float64)
        f = f.reshape(-1, width)
        second += (f.T @ f).astype(np.float64)
    bias_norm = float(bias @ bias) * num_samples
    projected = second - np.outer(cross, cross) / bias_norm
    return _Moments(projected, cross, bias_norm, second, num_samples * num_steps)


def _regrouped(conns: list[DenseConnection], target: np.ndarray, widths: fx.Widths) -> list[tuple[
        DenseConnection, np.ndarray]]:
    """Each block of a layer fed by several blocks, split by rows into blocks of the exponent each row needs
    (``target``: the float weights in chip u units, per block); with the rows each holds."""
    unit = 1 << widths.activation_shift
    out = []
    for conn, at_chip in zip(conns, target):
        at_unity = at_chip / unit
        mixed = fx.sign_mode(at_unity) == fx.MIXED
        w_max = (1 << widths.weight_bits) - 2 if mixed else (1 << widths.weight_bits) - 1
        needed = np.array([weight_exponent(float(m), w_max, widths.weight_exp_min, conn.weight_exp, fit=True)
                           if m > 0 else conn.weight_exp for m in np.abs(at_unity).max(axis=1)])
        for exponent in sorted(set(needed.tolist()), reverse=True):
            rows = needed == exponent
            name = conn.name if exponent == conn.weight_exp else f"{conn.name}{EXPONENT_GROUP}{exponent}"
            out.append((dataclasses.replace(conn, name=name, weight_exp=exponent,
                                            weights=np.where(rows[:, None], conn.weights, 0)), rows))
    return out


def _grid(target: np.ndarray, exponent: int, mixed: bool, widths: fx.Widths) -> tuple[np.ndarray, np.ndarray]:
    """The stored mantissas just below and above ``target`` (chip u units) on a block's grid, within its range."""
    step = 2 if mixed else 1
    at = target / ((1 << widths.activation_shift) * 2.0 ** exponent) / step
    low, high = np.floor(at) * step, np.ceil(at) * step
    top = (1 << widths.weight_bits) - step
    bottom = -(1 << widths.weight_bits) if mixed else -top  # (a single-sign block's grid keeps its sign)
    return np.clip(low, bottom, top), np.clip(high, bottom, top)


def _rounded(weights: np.ndarray, low: np.ndarray, high: np.ndarray, quantum: np.ndarray, target: np.ndarray,
             projected: np.ndarray) -> np.ndarray:
    """Coordinate descent over every neuron at once, a column at a time: each weight takes the grid neighbour
    (``low`` or ``high``, mantissas; ``quantum``: chip u per mantissa unit) that lowers e^T P e."""
    weights = weights.copy()
    error_moment = ((weights * quantum - target) @ projected)  # (neurons, inputs): (E P)
    for _ in range(ROUNDING_PASSES):
        changed = 0
        for k in np.flatnonzero(np.any(low != high, axis=0)):
            rows = np.flatnonzero(low[:, k] != high[:, k])
            other = np.where(weights[rows, k] == low[rows, k], high[rows, k], low[rows, k])
            delta = (other - weights[rows, k]) * quantum[rows, k]
            gain = 2 * delta * error_moment[rows, k] + delta ** 2 * projected[k, k]
            better = gain < 0
            if not better.any():
                continue
            rows, delta = rows[better], delta[better]
            weights[rows, k] = other[better]
            error_moment[rows] += delta[:, None] * projected[k][None, :]
            changed += rows.size
        if not changed:
            break
    return weights


def _membrane_error(error: np.ndarray, bias: np.ndarray, moments: _Moments, threshold: np.ndarray) -> float:
    """RMS over neurons, samples and steps of the v error the weights' error (and a bias) add, in thresholds."""
    energy = (np.sum((error @ moments.second) * error, axis=1) + 2 * bias * (error @ moments.cross)
              + bias ** 2 * moments.bias_norm)
    return float(np.sqrt(np.mean(np.maximum(energy, 0) / moments.rows / threshold ** 2)))


def calibrate_layer(disc: Discretization, pop: LifPopulation, conns: list[DenseConnection],
                    spikes: dict[str, SpikeEvents], widths: fx.Widths) -> tuple[
        LifPopulation, list[DenseConnection], float, float, int]:
    """One layer's blocks and bias chosen on the float model's spikes ``spikes``: (population, connections,
    membrane error before, after, weights rounded the other way than to nearest)."""
    unit, threshold_unit = 1 << widths.activation_shift, 1 << widths.threshold_shift
    scale = pop.vth * threshold_unit / disc.threshold  # chip v units per float v unit, per neuron (quantize's)
    gains = dict(disc.inputs)
    sources = list(gains)
    moments = _moments(disc, sources, spikes)
    offsets = np.cumsum([0] + [gains[s].shape[1] for s in sources])
    columns = {s: slice(offsets[i], offsets[i + 1]) for i, s in enumerate(sources)}
    target = np.concatenate([scale[:, None] * gains[s] for s in sources], axis=1)

    def realized(blocks) -> np.ndarray:
        out = np.zeros_like(target)
        for conn in blocks:
            out[:, columns[conn.source]] += conn.weights * unit * 2.0 ** conn.weight_exp
        return out

    before = realized(conns) - target
    # Each source's finest block is the one chosen: with split weights its low part, the high part kept.
    finest = {}
    for conn in conns:
        if conn.source not in finest or conn.weight_exp < finest[conn.source].weight_exp:
            finest[conn.source] = conn
    fixed = [c for c in conns if finest[c.source] is not c]
    residual = target - realized(fixed)
    chosen = list(finest.values())
    split = any(c.name.endswith(SPLIT_LOW_PART) for c in conns)
    groups = (_regrouped(chosen, [residual[:, columns[c.source]] for c in chosen], widths)
              if len(chosen) > 1 and not split else [(c, np.ones(disc.size, bool)) for c in chosen])
    low, high, weights, quantum = (np.zeros_like(target) for _ in range(4))
    for conn, rows in groups:
        cols = columns[conn.source]
        lo, hi = _grid(residual[:, cols], conn.weight_exp, fx.sign_mode(conn.weights) == fx.MIXED
                       or fx.sign_mode(gains[conn.source]) == fx.MIXED, widths)
        nearest = np.where(np.abs(hi - residual[:, cols] / (unit * 2.0 ** conn.weight_exp))
                           < np.abs(residual[:, cols] / (unit * 2.0 ** conn.weight_exp) - lo), hi, lo)
        low[rows, cols], high[rows, cols] = lo[rows], hi[rows]
        weights[rows, cols], quantum[rows, cols] = nearest[rows], unit * 2.0 ** conn.weight_exp
    rounded = _rounded(weights, low, high, quantum, residual, moments.projected)
    flips = int(np.count_nonzero(rounded != weights))
    new_conns = fixed + [dataclasses.replace(conn, weights=fx.stored_weights(
        widths, np.where(rows[:, None], rounded[:, columns[conn.source]], 0), widths.weight_bits))
        for conn, rows in groups if rows.any() or EXPONENT_GROUP not in conn.name]
    after = realized(new_conns) - target
    correction = -(after @ moments.cross) / moments.bias_norm
    old_bias = fx.effective_bias(pop.bias_mant, pop.bias_exp) * np.ones(disc.size)
    bias_mant, bias_exp = bias_fields(old_bias + np.rint(correction), disc.name, widths)
    applied = fx.effective_bias(bias_mant, bias_exp) - old_bias
    new_pop = dataclasses.replace(pop, bias_mant=bias_mant, bias_exp=bias_exp)
    return (new_pop, new_conns, _membrane_error(before, np.zeros(disc.size), moments, scale * disc.threshold),
            _membrane_error(after, applied, moments, scale * disc.threshold), flips)


def _spike_agreement(chip: dict[str, SpikeEvents], reference: dict[str, SpikeEvents], name: str) -> float:
    """The fraction of (sample, neuron) whose spike counts on the chip equal the float model's."""
    return float(np.mean(chip[name].counts() == reference[name].counts()))


def inputs_digest(inputs: SpikeEvents) -> str:
    return hashlib.sha256(np.ascontiguousarray(inputs.events).tobytes()
                          + repr((inputs.num_samples, inputs.num_steps, inputs.size)).encode()).hexdigest()


def calibrate(bundle: Bundle, discrete: DiscreteNetwork, inputs: SpikeEvents, data: str) -> tuple[
        Bundle, CalibrationReport]:
    """The bundle with every layer's blocks and bias calibrated on ``inputs`` (named ``data``), or, if that
    decides the calibration data less often like the float model than the bundle does, the bundle as it was;
    with the report of both. The bundle's placement is not redone here (``compile`` places the network)."""
    num_steps = bundle.timing.num_steps
    reference, _, reference_traces = discrete_reference.run(discrete, inputs, num_steps)
    network = bundle.network
    populations = {p.name: p for p in network.populations}
    connections = list(network.connections)
    rows = {}
    for disc in discrete.populations:
        # A readout's scale is set by its worst-case bound (quantize_readout), not its threshold; a delayed
        # input's moments would need each synapse's own shift of the source's spikes. Both keep quantize's integers.
        if disc.bias_source or disc.readout or disc.delays:
            continue
        conns = [c for c in connections if c.target == disc.name]
        pop, new_conns, error_before, error_after, flips = calibrate_layer(
            disc, populations[disc.name], conns, {**reference, discrete.input_name: inputs}, bundle.widths)
        populations[disc.name] = pop
        connections = [c for c in connections if c.target != disc.name] + new_conns
        rows[disc.name] = (error_before, error_after, flips, len(new_conns) - len(conns))
    calibrated = dataclasses.replace(network, populations=tuple(populations[p.name] for p in network.populations),
                                     connections=tuple(connections))
    candidate = dataclasses.replace(bundle, network=calibrated)
    before = bitsim.run(bundle, inputs)
    runs = {"before": before, "after": bitsim.run(candidate, inputs) if rows else before}
    out, decoding, latency = network.output, bundle.decoding, bundle.timing.latency_steps
    by_membrane = decoding in decision.MEMBRANE_DECODINGS
    float_decisions = decide(reference[out], decoding, reference_traces[out]["v"] if by_membrane else None, latency)
    agreement = {k: float(np.mean(decide(r.spikes[out], decoding, r.membrane(out) if by_membrane else None, latency)
                                  == float_decisions)) for k, r in runs.items()}
    kept = bool(rows) and agreement["after"] >= agreement["before"]
    layers = {name: LayerCalibration(
        membrane_error_before=before, membrane_error_after=after,
        spike_agreement_before=_spike_agreement(runs["before"].spikes, reference, name),
        spike_agreement_after=_spike_agreement(runs["after"].spikes, reference, name),
        rounded_other_way=flips, blocks_added=added) for name, (before, after, flips, added) in rows.items()}
    report = CalibrationReport(data=data, samples=inputs.num_samples, inputs_sha256=inputs_digest(inputs),
                               decision_agreement_before=agreement["before"],
                               decision_agreement_after=agreement["after"], applied=kept, layers=layers)
    return (candidate if kept else bundle), report
