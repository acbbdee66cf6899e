"""quantize: the discrete network -> the chip's integer network, with a report of what rounding cost.

Quantization, in the target's widths (``Target.widths``; Loihi's in brackets). One scale S per neuron
maps float v units to chip units: u_chip = S u, and
  w_int << (activation_shift + weight_exp) = S g,   vth << threshold_shift = S theta,   bias = S drive,
  du = round(D (1 - a_u)) - current_decay_offset,   dv = round(D (1 - a_v)) - voltage_decay_offset,
with D = 2**decay_bits [shifts 6, D = 4096, offsets 1 and 0: Lava's]. S is as large as the neuron's
weight mantissas [8 bits] allow, capped so that its threshold fits threshold_bits [17], u never wraps,
and v does not saturate in the worst case. Every weight exponent is within [weight_exp_min, weight_exp_max].
A negative weight exponent floors every dendritic sum (a bias against the weights), so weight_exp stays
>= 0 unless that would leave fewer than MIN_MANTISSA_LEVELS weight levels.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...targets import fixed_point as fx
from ...targets.bundle import DenseConnection, InputLayer, IntNetwork, LayerQuantization, LifPopulation
from ...targets.description import Target
from ..artifacts.discrete import DiscreteNetwork, Discretization, QuantizedNetwork
from ..errors import DeployError
from . import stock

# Fewer weight levels than this leave a layer meaningless: refuse it rather than run noise.
MIN_WEIGHT_LEVELS = 4
# Below this many levels of the largest weight, a negative weight exponent (finer weights, floored
# sums) is worth its bias; above it, weight_exp = 0 with round-to-nearest weights is unbiased.
MIN_MANTISSA_LEVELS = 64
# A split weight's low part sits this many exponent steps below its high part: the high part's
# rounding step (2 mantissa units, mixed sign) then spans at most 128 low units, within 8 bits.
SPLIT_EXPONENT_GAP = 7
SPLIT_LOW_PART = ":low"
# Thresholds keep at least this many levels (vth >= 256: within 0.2%) whatever the worst case of u and v.
MIN_THRESHOLD_LEVELS = 256


def constant_population(disc: Discretization, widths: fx.Widths) -> tuple[
        LifPopulation, tuple[DenseConnection, ...]]:
    """A constant source on the chip: u and v keep (almost) nothing (du = dv at their largest) and vth = 0. The
    first fires on its bias of 1; a relay on its input of weight 1 from the previous one."""
    relay = bool(disc.inputs)
    pop = LifPopulation(name=disc.name, size=1, du=widths.decay_max, dv=widths.decay_max, vth=0,
                        bias_mant=0 if relay else 1)
    conns = tuple(DenseConnection(name=f"{source}->{disc.name}", source=source, target=disc.name,
                                  weights=np.ones((1, 1), np.int64)) for source, _ in disc.inputs)
    return pop, conns


def _impulse_peak(alpha_u: float, alpha_v: float, horizon_steps: int) -> float:
    """max_n v[n] for a unit jump of u at n = 0: the largest v one input spike can cause."""
    n = np.arange(horizon_steps + 1)
    u = alpha_u ** n
    v = np.zeros_like(u)
    acc = 0.0
    for k in range(len(n)):
        acc = alpha_v * acc + u[k]
        v[k] = acc
    return float(v.max())


def _decays(disc: Discretization, widths: fx.Widths) -> tuple[np.ndarray, np.ndarray]:
    du = np.rint(widths.decay_unity * (1 - disc.alpha_u)).astype(np.int64) - widths.current_decay_offset
    dv = np.rint(widths.decay_unity * (1 - disc.alpha_v)).astype(np.int64) - widths.voltage_decay_offset
    return np.clip(du, 0, widths.decay_max), np.clip(dv, 0, widths.decay_max)


def _block_weights(at_unity: np.ndarray, widths: fx.Widths, exp_min: int, exp_max: int) -> tuple[
        int, np.ndarray, np.ndarray]:
    """One Dense block for weights of ``at_unity`` mantissa units at exponent 0: (exponent, rounded
    mantissas, mantissas as stored). Mixed-sign blocks hold even mantissas (Lava drops the lowest bit)."""
    mixed = fx.sign_mode(at_unity) == fx.MIXED
    w_max = (1 << widths.weight_bits) - 2 if mixed else (1 << widths.weight_bits) - 1
    exponent = weight_exponent(float(np.abs(at_unity).max()), w_max, exp_min, exp_max, fit=True)
    step = 2 if mixed else 1
    w_int = (step * np.rint(at_unity / 2.0 ** exponent / step)).astype(np.int64)
    return exponent, w_int, fx.stored_weights(widths, w_int, widths.weight_bits)


def weight_exponent(room: float, w_max: int, exp_min: int, exp_max: int, fit: bool = False) -> int:
    """The weight exponent for weights that reach ``room`` mantissa units at exponent 0: the one at which
    the largest mantissa is w_max (rounded down: the scale is then set from it), or, with ``fit``, the
    smallest at which it fits w_max. A negative exponent floors every dendritic sum (a bias against the
    weights), so it is taken only when exponent 0 would leave fewer than MIN_MANTISSA_LEVELS levels."""
    if room <= 0:
        return 0
    ratio = math.log2(room / w_max)
    exponent = math.ceil(ratio) if fit else math.floor(ratio)
    if exponent < 0 and room >= MIN_MANTISSA_LEVELS:
        exponent = 0
    return min(max(exponent, exp_min), exp_max)


def bias_fields(bias: np.ndarray, layer_name: str, widths: fx.Widths) -> tuple[np.ndarray, int]:
    """Split a chip bias into a signed mantissa of bias_mantissa_bits and one exponent."""
    limit = widths.bias_mantissa_range[1]
    largest = float(np.max(np.abs(bias))) if bias.size else 0.0
    exponent = max(0, math.ceil(math.log2(largest / limit))) if largest > limit else 0
    mant = np.rint(bias / (1 << exponent)).astype(np.int64)
    if np.any(np.abs(mant) > limit):
        raise DeployError(f"node {layer_name}: bias {largest:g} does not fit a {widths.bias_mantissa_bits}-bit "
                          "mantissa")
    return mant, exponent


def _chip_decays(disc: Discretization, widths: fx.Widths, du: np.ndarray, dv: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """The chip's current and voltage decay factors for ``du``, ``dv``, and the factor that scales a constant drive
    to them: a drive c settles v at c / (1 - a_v), so scaled to the chip's own decay the resting level (v_leak)
    stays exact even where the chip's decay is not."""
    chip_alpha_u = (widths.decay_unity - (du + widths.current_decay_offset)) / widths.decay_unity
    chip_alpha_v = (widths.decay_unity - (dv + widths.voltage_decay_offset)) / widths.decay_unity
    with np.errstate(divide="ignore", invalid="ignore"):
        settled = np.where(disc.alpha_v < 1, (1 - chip_alpha_v) / (1 - disc.alpha_v), 1.0)
    return chip_alpha_u, chip_alpha_v, settled


SIGN_MODE_NAMES = {fx.EXCITATORY: "excitatory", fx.INHIBITORY: "inhibitory", fx.MIXED: "mixed"}


def checked_delays(disc: Discretization, source: str, target: Target) -> np.ndarray | None:
    """The delay steps of the synapses from ``source`` into ``disc``, within the target's delay field."""
    delays = disc.delay_from(source)
    if delays is None:
        return None
    limit = max_delay_steps(target)
    if limit is None:
        raise DeployError(f"node {disc.name}: its synapses from {source} are delayed (up to {int(delays.max())} "
                          f"steps); {target.name} has no synaptic delays (its [synapse] states no delay_bits)")
    if delays.max() > limit:
        raise DeployError(f"node {disc.name}: its synapses from {source} are delayed by up to {int(delays.max())} "
                          f"steps, above {target.name}'s maximum of {limit} ({target.value('synapse', 'delay_bits')}"
                          "-bit delays); use a larger dt or a shorter delay")
    return delays


def max_delay_steps(target: Target) -> int | None:
    """The longest synaptic delay the target's delay field holds, in steps (None: it has no delays)."""
    bits = target.optional("synapse", "delay_bits")
    return None if bits is None else (1 << bits) - 1


def quantize_layer(disc: Discretization, target: Target, fires_once: dict[str, bool], horizon_steps: int,
                   split_weights: bool = False, synapses: tuple[str, ...] = (), stock_spread: float | None = None
                   ) -> tuple[LifPopulation, tuple[DenseConnection, ...], LayerQuantization]:
    """One scale per neuron, across all its inputs: each row of weights spans the mantissa, with its own threshold.

    The scale is set from one weight exponent for the layer, by the neuron whose range is tightest;
    every other neuron still reaches the full mantissa through its own scale.
    ``fires_once[source]`` says whether each neuron of that source spikes at most once per sample.

    ``split_weights``: each weight is stored as two synapses from the same source, a high part and a
    low part whose exponent is SPLIT_EXPONENT_GAP lower (their sum is what reaches u, exactly). The
    scale is then set by the state and threshold limits alone, not by an 8-bit mantissa: about 14
    bits of weight precision for twice the synapses.
    """
    widths = target.widths
    exp_min, exp_max = widths.weight_exp_min, widths.weight_exp_max
    vth_max = widths.threshold_max
    state_max = widths.state_limit - 1
    unit = 1 << widths.activation_shift  # chip u per unit of weight mantissa at weight_exp 0
    threshold_unit = 1 << widths.threshold_shift  # chip v per unit of vth

    gain = np.concatenate([g for _, g in disc.inputs], axis=1)
    mode = fx.sign_mode(gain)
    mixed = mode == fx.MIXED
    w_max = (1 << widths.weight_bits) - 2 if mixed else (1 << widths.weight_bits) - 1  # mixed weights are even
    row_max = np.abs(gain).max(axis=1)
    live = row_max > 0
    if not live.any() and not np.any(disc.drive):
        raise DeployError(f"node {disc.name}: all weights are zero and it has no bias or v_leak: nothing drives it")

    # Worst-case |u| and |v| per unit of scale, per neuron. Each source spikes at most once
    # (fire-once or TTFS input) or, otherwise, every step. Above threshold v spikes and resets, so
    # the positive side is bounded by theta plus one step of input; the negative side by the
    # inhibitory weights alone.
    drive = np.abs(disc.drive)
    u_peak, v_floor, v_floor_sustained = np.zeros(disc.size), np.zeros(disc.size), np.zeros(disc.size)
    for source, g in disc.inputs:
        excitation, inhibition = np.clip(g, 0, None).sum(axis=1), np.clip(-g, 0, None).sum(axis=1)
        if fires_once[source]:
            u_peak += np.maximum(excitation, inhibition)
            v_floor += inhibition * _impulse_peak(float(disc.alpha_u.max()), float(disc.alpha_v.max()),
                                                  horizon_steps)
        else:
            u_peak += np.maximum(excitation, inhibition) / (1 - disc.alpha_u)
            v_floor_sustained += (inhibition / (1 - disc.alpha_u)
                                  / np.maximum(1 - disc.alpha_v, 1.0 / horizon_steps))
    v_peak = disc.threshold + u_peak + drive
    v_low = v_floor + drive * horizon_steps
    with np.errstate(divide="ignore"):
        # u must never wrap and v never reach the rails in the worst case, except that inhibition
        # sustained every step for the whole run (v_floor_sustained) only saturates v at the negative
        # rail, which is graceful and counted. Even the bounded worst cases assume every source
        # spikes at once, which can leave a neuron too coarse to mean anything: precision wins down to
        # MIN_THRESHOLD_LEVELS threshold levels and MIN_MANTISSA_LEVELS weight levels at exponent 0,
        # and a state that then overflows is counted by the simulators (current wraps fail verify).
        worst_case = np.minimum.reduce([state_max / u_peak, state_max / v_peak, state_max / v_low])
        # (a neuron without weights, driven by its bias alone, has no weight mantissa to resolve)
        resolvable = np.maximum(MIN_THRESHOLD_LEVELS * threshold_unit / disc.threshold,
                                np.where(live, MIN_MANTISSA_LEVELS * unit / row_max, 0))
        scale_cap = np.minimum(vth_max * threshold_unit / disc.threshold,
                               np.maximum(worst_case, resolvable))
    v_low = v_low + v_floor_sustained  # reported: the headroom against sustained inhibition
    du, dv = _decays(disc, widths)
    if stock_spread is not None:
        if np.unique(du).size > 1 or np.unique(dv).size > 1:
            raise DeployError(f"--stock: node {disc.name} has {np.unique(du).size} current and {np.unique(dv).size} "
                              "voltage decays; a stock LIF population holds one of each")
        step, u_low = stock.scale_caps(disc.inputs, fires_once, stock.decay_ratio(widths, du), disc.drive)
        room = 1 - stock.CAP_MARGIN
        with np.errstate(divide="ignore"):
            scale_cap = np.minimum.reduce([scale_cap, room * unit * (1 << (stock.STEP_INPUT_BITS - 1)) / step,
                                           room * widths.state_limit / u_low])

    # The largest shared weight exponent at which every neuron's full-precision scale is within its cap.
    tightest = np.argmin(np.where(live, scale_cap * row_max, np.inf))
    weight_exp = weight_exponent(scale_cap[tightest] * row_max[tightest] / unit, w_max, exp_min, exp_max)
    if split_weights:
        weight_exp = exp_max
    with np.errstate(divide="ignore"):
        scale = np.minimum(w_max * unit * 2.0 ** weight_exp / row_max, scale_cap)
    # The threshold is exact: the scale gives up less than one threshold level so that vth is an integer.
    vth = np.floor(scale * disc.threshold / threshold_unit).astype(np.int64)
    if stock_spread is not None:
        vth = stock.threshold_groups(vth, stock_spread)
    outside = np.flatnonzero((vth < 1) | (vth > vth_max))
    if outside.size:
        bad = int(outside[0])
        raise DeployError(f"node {disc.name}: neuron {bad}: threshold {disc.threshold[bad]:g} maps to vth "
                          f"{int(vth[bad])}, outside [1, {vth_max}] (its largest weight is {row_max[bad]:g})")
    scale = vth * threshold_unit / disc.threshold

    # Each Dense block takes its own exponent: a block of small weights (a bias source, a weak
    # recurrence) keeps its full mantissa instead of the exponent of the layer's largest weight.
    blocks = []  # (source, part, exponent, w_int, stored)
    for source, g in disc.inputs:
        at_unity = scale[:, None] * g / unit
        exponent, w_int, stored = _block_weights(at_unity, widths, exp_min, exp_max)
        blocks.append((source, "", exponent, w_int, stored))
        low_exponent = max(exponent - SPLIT_EXPONENT_GAP, 0)
        if split_weights and low_exponent < exponent:
            residual = at_unity - stored * 2.0 ** exponent
            _, w_low, stored_low = _block_weights(residual, widths, low_exponent, low_exponent)
            if np.any(stored_low):
                blocks.append((source, SPLIT_LOW_PART, low_exponent, w_low, stored_low))
    # Each neuron's largest weight, in mantissa steps of the layer's coarsest block.
    coarsest = max(exponent for _, _, exponent, _, _ in blocks)
    levels = np.max([np.abs(stored).max(axis=1) * 2.0 ** (exponent - coarsest)
                     for _, _, exponent, _, stored in blocks], axis=0)
    if np.any(levels[live] < MIN_WEIGHT_LEVELS):
        worst = int(np.flatnonzero(live & (levels < MIN_WEIGHT_LEVELS))[0])
        raise DeployError(
            f"node {disc.name}: neuron {worst}: threshold {disc.threshold[worst]:g} is too large for its weights "
            f"(up to {row_max[worst]:g} per step): with vth at most {vth_max} its largest weight mantissa would be "
            f"{int(levels[worst])}, below {MIN_WEIGHT_LEVELS}")
    clipped = float(np.mean(np.concatenate([(stored != w_int).ravel() for _, _, _, w_int, stored in blocks])))
    chip_alpha_u, chip_alpha_v, settled = _chip_decays(disc, widths, du, dv)
    bias_mant, bias_exp = bias_fields(scale * disc.drive * settled, disc.name, widths)

    realized = np.concatenate([sum(stored * unit * 2.0 ** exponent for src, _, exponent, _, stored in blocks
                                   if src == source) for source, _ in disc.inputs], axis=1) / scale[:, None]
    rows = live if live.any() else np.full(disc.size, True)  # a layer driven by its bias alone: every neuron
    weight_error = (np.abs(realized - gain) / np.where(live, row_max, 1)[:, None])[rows]
    report = LayerQuantization(
        synapses=synapses, scale=float(scale[rows].min()), scale_max=float(scale[rows].max()), weight_exp=weight_exp,
        weight_exp_by_source={source + part: exponent for source, part, exponent, _, _ in blocks},
        split_weights=split_weights, sign_mode=SIGN_MODE_NAMES[mode],
        max_weight_mantissa=int(levels.max()), min_row_mantissa=int(levels[rows].min()), fraction_clipped=clipped,
        weight_error_max=float(weight_error.max()), weight_error_rms=float(np.sqrt(np.mean(weight_error ** 2))),
        du=int(du.max()), dv=int(dv.max()),
        decay_u_error=float(np.max(np.abs(chip_alpha_u - disc.alpha_u))),
        decay_v_error=float(np.max(np.abs(chip_alpha_v - disc.alpha_v))),
        vth=int(vth.max()),
        threshold_error=float(np.max(np.abs(vth * threshold_unit / scale - disc.threshold) / disc.threshold)),
        u_headroom=float(np.min(state_max / (scale * u_peak)[u_peak > 0])) if np.any(u_peak > 0) else float("inf"),
        v_headroom=float(np.min(state_max / (scale * np.maximum(v_peak, v_low)))))
    pop = LifPopulation(name=disc.name, size=disc.size, du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                        bias_exp=bias_exp, fire_once=disc.fire_once, reset=disc.reset)
    conns = tuple(DenseConnection(name=f"{source}->{disc.name}{part}", source=source, target=disc.name,
                                  weights=stored, weight_exp=exponent, num_weight_bits=widths.weight_bits,
                                  delays=checked_delays(disc, source, target))
                  for source, part, exponent, _, stored in blocks)
    return pop, conns, report


def worst_case_state(alpha_u: np.ndarray, alpha_v: np.ndarray, once: np.ndarray, sustained: np.ndarray,
                     drive: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest |u| and |v| per neuron over ``steps`` steps of u' = a_u u + a, v' = a_v v + u' + drive, when
    inputs of amplitude ``once`` (the sum of |weights| of sources that spike at most once) arrive at the worst
    moment and inputs of amplitude ``sustained`` arrive on every step. The chip's decays truncate toward zero,
    so with the chip's factors this bounds the chip's integers too."""
    impulse_u, impulse_v, impulse_peak = np.ones_like(alpha_u), np.zeros_like(alpha_v), np.zeros_like(alpha_v)
    step_u, step_v, settled = np.zeros_like(alpha_u), np.zeros_like(alpha_v), np.zeros_like(alpha_v)
    for step in range(steps):
        if step:
            impulse_u = alpha_u * impulse_u
        impulse_v = alpha_v * impulse_v + impulse_u
        impulse_peak = np.maximum(impulse_peak, impulse_v)
        step_u = alpha_u * step_u + 1
        step_v = alpha_v * step_v + step_u
        settled = alpha_v * settled + 1
    # Step responses only grow (every term is positive): their peak is the last step's.
    return once + sustained * step_u, once * impulse_peak + sustained * step_v + np.abs(drive) * settled


def _amplitudes(blocks, fires_once: dict[str, bool], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(once, sustained): per neuron, the sum over sources that spike at most once, and over the others, of
    max(excitation, inhibition), from (source, weights) pairs."""
    once, sustained = np.zeros(size), np.zeros(size)
    for source, weights in blocks:
        amplitude = np.maximum(np.clip(weights, 0, None).sum(axis=1), np.clip(-weights, 0, None).sum(axis=1))
        if fires_once[source]:
            once += amplitude
        else:
            sustained += amplitude
    return once, sustained


def quantize_readout(disc: Discretization, target: Target, fires_once: dict[str, bool], horizon_steps: int,
                     synapses: tuple[str, ...] = ()) -> tuple[LifPopulation, tuple[DenseConnection, ...],
                                                              LayerQuantization]:
    """A readout (LI, CubaLI, I) as a LIF that never fires: vth at the largest value the target's threshold field
    holds, and one scale S for the whole layer (so that its neurons' membranes compare, as a membrane decoding
    compares them), chosen so that in the worst case (``worst_case_state``: every source spiking on every step it
    can, through the realized integer weights and bias) |v| stays at or below vth << threshold_shift and within
    the state, and u never wraps. Where that leaves the layer's largest weight fewer than MIN_WEIGHT_LEVELS
    mantissa levels, S stays at that floor instead and the report's v_headroom is below 1: the readout can fire,
    and verify counts each spike of it (``Metrics.readout``)."""
    widths = target.widths
    unit = 1 << widths.activation_shift
    vth = widths.threshold_max
    v_limit = min(vth << widths.threshold_shift, widths.state_limit - 1)
    u_limit = widths.state_limit - 1
    du, dv = _decays(disc, widths)
    chip_alpha_u, chip_alpha_v, settled = _chip_decays(disc, widths, du, dv)
    gain = np.concatenate([g for _, g in disc.inputs], axis=1)
    row_max = float(np.abs(gain).max())
    if row_max == 0 and not np.any(disc.drive):
        raise DeployError(f"node {disc.name}: all weights are zero and it has no bias or v_leak: nothing drives it")
    w_max = (1 << widths.weight_bits) - (2 if fx.sign_mode(gain) == fx.MIXED else 1)
    u_unit, v_unit = worst_case_state(chip_alpha_u, chip_alpha_v, *_amplitudes(disc.inputs, fires_once, disc.size),
                                      disc.drive * settled, horizon_steps)
    with np.errstate(divide="ignore"):
        scale = float(np.min(np.minimum(v_limit / v_unit, u_limit / u_unit)))
        fits = w_max * unit * 2.0 ** widths.weight_exp_max / row_max  # the largest weight at the largest exponent
        floor = MIN_WEIGHT_LEVELS * unit / row_max
    scale = max(min(scale, fits), floor) if row_max > 0 else scale
    for _ in range(MAX_READOUT_ROUNDS):
        blocks = [(source,) + _block_weights(scale * g / unit, widths, widths.weight_exp_min, widths.weight_exp_max)
                  for source, g in disc.inputs]
        bias_mant, bias_exp = bias_fields(scale * disc.drive * settled, disc.name, widths)
        # The bound in the chip's integers: a negative exponent floors a sum, by at most one unit more.
        chip_blocks = [(source, stored * 2.0 ** exponent * unit + (exponent < 0) * unit * np.sign(stored))
                       for source, exponent, _, stored in blocks]
        u_worst, v_worst = worst_case_state(chip_alpha_u, chip_alpha_v, *_amplitudes(chip_blocks, fires_once, disc.size),
                                            fx.effective_bias(bias_mant, bias_exp), horizon_steps)
        over = float(max(np.max(v_worst) / v_limit, np.max(u_worst) / u_limit))
        if over <= 1 or scale <= floor:
            break
        scale = max(scale / over * (1 - READOUT_MARGIN), floor)  # rounding up of the weights broke the bound
    stored_all = np.concatenate([stored for _, _, _, stored in blocks], axis=1)
    realized = np.concatenate([stored * unit * 2.0 ** exponent for _, exponent, _, stored in blocks], axis=1) / scale
    live = np.abs(gain).max(axis=1) > 0
    rows = live if live.any() else np.full(disc.size, True)
    weight_error = (np.abs(realized - gain) / np.where(live, np.abs(gain).max(axis=1), 1)[:, None])[rows]
    levels = np.abs(stored_all).max(axis=1)
    exponents = {source: exponent for source, exponent, _, _ in blocks}
    report = LayerQuantization(
        synapses=synapses, scale=scale, scale_max=scale, weight_exp=max(exponents.values(), default=0),
        weight_exp_by_source=exponents, split_weights=False,
        sign_mode=SIGN_MODE_NAMES[fx.sign_mode(gain)],
        max_weight_mantissa=int(levels.max()), min_row_mantissa=int(levels[rows].min()),
        fraction_clipped=float(np.mean(np.concatenate([(stored != w_int).ravel() for _, _, w_int, stored in blocks]))),
        weight_error_max=float(weight_error.max()), weight_error_rms=float(np.sqrt(np.mean(weight_error ** 2))),
        du=int(du.max()), dv=int(dv.max()),
        decay_u_error=float(np.max(np.abs(chip_alpha_u - disc.alpha_u))),
        decay_v_error=float(np.max(np.abs(chip_alpha_v - disc.alpha_v))),
        vth=vth, threshold_error=0.0,
        u_headroom=float(u_limit / np.max(u_worst)) if np.any(u_worst > 0) else float("inf"),
        v_headroom=float(v_limit / np.max(v_worst)) if np.any(v_worst > 0) else float("inf"), readout=True)
    pop = LifPopulation(name=disc.name, size=disc.size, du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp,
                        readout=True)
    conns = tuple(DenseConnection(name=f"{source}->{disc.name}", source=source, target=disc.name, weights=stored,
                                  weight_exp=exponent, num_weight_bits=widths.weight_bits,
                                  delays=checked_delays(disc, source, target))
                  for source, exponent, _, stored in blocks)
    return pop, conns, report


# Rounds of lowering a readout's scale when its rounded weights exceed the worst-case bound, and the margin below
# the bound each takes (rounding moves a weight by at most half a mantissa step: one round settles it).
MAX_READOUT_ROUNDS = 4
READOUT_MARGIN = 1 / 256


def quantize(discrete: DiscreteNetwork, target: Target, split_weights: bool = False,
             stock_spread: float | None = None) -> QuantizedNetwork:
    """The discrete network in the target's integer formats, with a report row per layer; ``stock_spread``: for
    stock processes (see ``quantize_layer``)."""
    resets = target.reset_modes
    for disc in discrete.populations:
        if stock_spread is not None and disc.reset == fx.RESET_SUBTRACT:
            raise stock.refuse_subtractive_reset(disc.name)
        if disc.reset not in resets:
            raise DeployError(f"{target.name} neurons reset by {' or '.join(resets)}, not {disc.reset!r}; compile "
                              "for a target with programmable neurons (loihi2) or use --reset zero")
    # Each source spikes at most once if its neurons fire once, or if it is a latency-coded input.
    fires_once = {disc.name: disc.fire_once for disc in discrete.populations}
    fires_once[discrete.input_name] = discrete.input_fires_once
    populations, connections, report = [], [], {}
    for disc in discrete.populations:
        if disc.bias_source:
            pop, conns = constant_population(disc, target.widths)
        elif disc.readout:
            if stock_spread is not None:
                raise DeployError(f"--stock: node {disc.name} is a readout, which a stock bundle does not hold yet; "
                                  "compile without --stock")
            pop, conns, report[disc.name] = quantize_readout(disc, target, fires_once, discrete.num_steps,
                                                             discrete.synapses[disc.name])
        else:
            pop, conns, report[disc.name] = quantize_layer(disc, target, fires_once, discrete.num_steps,
                                                           split_weights, discrete.synapses[disc.name], stock_spread)
        populations.append(pop)
        connections.extend(conns)
    network = IntNetwork(input=InputLayer(discrete.input_name, discrete.input_size), populations=tuple(populations),
                         connections=tuple(connections), output=discrete.output)
    return QuantizedNetwork(network=network, discrete=discrete, report=report)


def dequantize(quantized: QuantizedNetwork, widths: fx.Widths) -> DiscreteNetwork:
    """The float discrete network the integers realize: per population the sum of a source's blocks (a split
    weight's two parts) as mantissa << (activation_shift + exponent) over the neuron's scale S, the chip's decay
    factors and the chip bias over S; the threshold stays theta (S is chosen so that vth << threshold_shift = S
    theta; a readout's S is the layer's one scale, ``LayerQuantization.scale``). It differs from the chip only where
    the chip truncates (its decays' products, a negative exponent's floored sums): the forward model of chip-aware
    fine-tuning (``stages.finetune``)."""
    discrete, network = quantized.discrete, quantized.network
    unit, threshold_unit = 1 << widths.activation_shift, 1 << widths.threshold_shift
    populations = {pop.name: pop for pop in network.populations}
    realized = []
    for disc in discrete.populations:
        if disc.bias_source:
            realized.append(disc)
            continue
        pop = populations[disc.name]
        scale = (np.full(disc.size, quantized.report[disc.name].scale) if disc.readout
                 else pop.vth * threshold_unit / disc.threshold)
        blocks = [conn for conn in network.connections if conn.target == disc.name]
        inputs = tuple((source, sum(conn.weights * (unit * 2.0 ** conn.weight_exp) for conn in blocks
                                    if conn.source == source) / scale[:, None]) for source, _ in disc.inputs)
        chip_alpha_u, chip_alpha_v, _ = _chip_decays(disc, widths, pop.du, pop.dv)
        realized.append(dataclasses.replace(disc, inputs=inputs, alpha_u=chip_alpha_u, alpha_v=chip_alpha_v,
                                            drive=fx.effective_bias(pop.bias_mant, pop.bias_exp) / scale))
    return dataclasses.replace(discrete, populations=tuple(realized))
