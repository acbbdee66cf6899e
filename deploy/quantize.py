"""quantize: a float network -> the chip's integer network, with a report of what rounding cost.

Discretization (exact, not Euler), with a step of dt time units. Between input spikes a CubaLIF
layer is linear:
I decays with tau_syn and v relaxes to v_leak + r I with tau_mem. Integrating exactly over one
step h = dt gives
    v(t + h) = a_v v(t) + c I(t) + (1 - a_v) v_leak,     a_v = exp(-h / tau_mem), a_u = exp(-h / tau_syn)
    c = (r / tau_mem) h a_v                                   if tau_syn == tau_mem
    c = (r / tau_mem) (a_u - a_v) / (1 / tau_mem - 1 / tau_syn)  otherwise.
The chip's LIF computes v[n] = a_v v[n-1] + u[n] + bias with u[n] = a_u u[n-1] + (Dense input),
and a Dense block delivers in step n the spikes of step n-1. So u[n] = c I((n-1) h) exactly when
    g_ij = c_i w_in_i W_ij / tau_syn_i       (the jump of u per input spike, in v units)
    drive_i = (1 - a_v) v_leak_i             (the chip's bias).
Chip step n then samples the continuous membrane at t = n h in every layer, for input spikes on
the step grid: the Dense stage's one-step delay is the integration step, not an added latency.
``reference.discrete`` simulates exactly this in float64.

With ``integration = "euler"`` (snnTorch, norse, sinabs) the same chip form holds with
    a_u = 1 - h / tau_syn,  a_v = 1 - h / tau_mem,  c = (r / tau_mem) h,
the step those simulators take; the Dense delay then is the simulator's own one-step delay
(norse), or one step of pipeline latency per layer (snnTorch steps a feed-forward chain in one step).

An Affine bias b is a constant input x = b, area b h per step. LIF and IF neurons hold one step's
input in u, so it becomes part of the chip's bias. A CubaLIF filters it through I, so it arrives
as one input of b h per step from a one-neuron constant source that fires every step.

Quantization. One scale S per neuron maps float v units to chip units: u_chip = S u, and
  w_int << (6 + weight_exp) = S g,   vth << 6 = S theta,   bias = S drive,
  du = round(4096 (1 - a_u)) - 1,   dv = round(4096 (1 - a_v))      (Lava's decay offsets)
S is as large as the neuron's 8-bit weight mantissas allow, capped so that its threshold fits 17
bits, u never wraps, and v does not saturate in the worst case. A negative weight exponent floors
every dendritic sum (a bias against the weights), so weight_exp stays >= 0 unless that would leave
fewer than MIN_MANTISSA_LEVELS weight levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..targets import fixed_point as fx
from ..targets.bundle import DenseConnection, InputLayer, IntNetwork, LifPopulation
from ..targets.description import Target
from .encoding import SINGLE_SPIKE_ENCODINGS
from .errors import DeployError
from .network import FloatLayer, FloatNetwork, Semantics, feed_forward_depths


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


# The constant source: one neuron that fires every step (v = bias = 1 > vth = 0, reset to 0).
CONSTANT_SOURCE = "constant"


def constant_source_name(depth: int) -> str:
    """The constant source whose spikes first reach a layer at feed-forward depth ``depth`` together with
    the first input: "constant" for depth 1, a relay "constant.<depth>" one step later per depth."""
    return CONSTANT_SOURCE if depth <= 1 else f"{CONSTANT_SOURCE}.{depth}"


@dataclass(frozen=True)
class Discretization:
    """The float discrete-time form of one layer: what the integers approximate.

    ``inputs`` holds, per source, the jump g of u per source spike, (size, source size).
    """

    name: str
    inputs: tuple[tuple[str, np.ndarray], ...]
    alpha_u: np.ndarray
    alpha_v: np.ndarray
    drive: np.ndarray  # c
    threshold: np.ndarray
    reset: str
    fire_once: bool

    @property
    def size(self) -> int:
        return self.threshold.shape[0]


@dataclass(frozen=True)
class QuantizedNetwork:
    network: IntNetwork
    discrete: tuple[Discretization, ...]
    dt: float
    report: dict


def constant_source() -> Discretization:
    """The float form of the constant source: no input, u = 0, v = 1 every step, above a threshold of 1/2."""
    zero, one = np.zeros(1), np.ones(1)
    return Discretization(name=CONSTANT_SOURCE, inputs=(), alpha_u=zero, alpha_v=zero, drive=one, threshold=one / 2,
                          reset="zero", fire_once=False)


def constant_relay(depth: int) -> Discretization:
    """The float form of relay ``depth``: it fires in every step after the previous source does."""
    zero, one = np.zeros(1), np.ones(1)
    return Discretization(name=constant_source_name(depth), inputs=((constant_source_name(depth - 1), one[:, None]),),
                          alpha_u=zero, alpha_v=zero, drive=zero, threshold=one / 2, reset="zero", fire_once=False)


def constant_population(disc: Discretization) -> tuple[LifPopulation, tuple[DenseConnection, ...]]:
    """A constant source on the chip: u and v keep nothing (du = dv = 4095) and vth << 6 = 0. The first
    fires on its bias of 1; a relay on its input of weight 1 from the previous one."""
    relay = bool(disc.inputs)
    pop = LifPopulation(name=disc.name, size=1, du=fx.DECAY_UNITY - 1, dv=fx.DECAY_UNITY - 1, vth=0,
                        bias_mant=0 if relay else 1)
    conns = tuple(DenseConnection(name=f"{source}->{disc.name}", source=source, target=disc.name,
                                  weights=np.ones((1, 1), np.int64)) for source, _ in disc.inputs)
    return pop, conns


def _decay_and_jump(layer: FloatLayer, dt: float, integration: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a_u, a_v, jump of v units of u per unit input area) of one layer."""
    if integration == "euler":
        too_long = [tau for tau in (layer.tau_syn if layer.kind == "CubaLIF" else None, layer.tau_mem)
                    if tau is not None and np.any(dt > tau)]
        if too_long:
            raise DeployError(f"node {layer.name}: the Euler step dt = {dt:g} exceeds a time constant "
                              f"({float(np.min(too_long[0])):g}); it would flip the decay's sign")
        alpha_v = 1 - dt / layer.tau_mem
        if layer.kind == "CubaLIF":
            return 1 - dt / layer.tau_syn, alpha_v, dt * layer.r / layer.tau_mem * layer.w_in / layer.tau_syn
        return np.zeros(layer.size), alpha_v, layer.r / (layer.tau_mem if layer.kind == "LIF" else 1.0)
    alpha_v = np.exp(-dt / layer.tau_mem)
    if layer.kind == "CubaLIF":
        alpha_u = np.exp(-dt / layer.tau_syn)
        equal = np.isclose(layer.tau_syn, layer.tau_mem, rtol=1e-12, atol=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            distinct = (alpha_u - alpha_v) / (1 / layer.tau_mem - 1 / layer.tau_syn)
        current_to_voltage = layer.r / layer.tau_mem * np.where(equal, dt * alpha_v, distinct)
        return alpha_u, alpha_v, current_to_voltage * layer.w_in / layer.tau_syn
    return np.zeros(layer.size), alpha_v, layer.r * alpha_v / (layer.tau_mem if layer.kind == "LIF" else 1.0)


def discretize(layer: FloatLayer, dt: float, semantics: Semantics,
               constant_source: str = CONSTANT_SOURCE) -> Discretization:
    """The discrete form of one layer at step dt (see the module docstring).

    A neuron without synaptic current (LIF, IF) jumps by r W / tau_mem (IF: r W) at an input spike
    and then decays until the next step: the chip's u holds one step's input (du = 4095).
    A "pulse" spike carries area dt instead of 1.
    """
    fire_once, reset = semantics.fire_once, semantics.reset
    if reset == "zero" and np.any(layer.v_reset != 0):
        raise DeployError(f"node {layer.name}: v_reset must be 0 on Loihi (got {float(layer.v_reset.max()):g})")
    alpha_u, alpha_v, jump = _decay_and_jump(layer, dt, semantics.integration)
    area = dt if semantics.spike == "pulse" else 1.0
    inputs = [(p.source, (area * jump)[:, None] * p.weight) for p in layer.projections]
    bias = np.sum([p.bias for p in layer.projections], axis=0)
    drive = (1 - alpha_v) * layer.v_leak
    if np.any(bias != 0):
        if layer.kind == "CubaLIF":
            inputs.append((constant_source, (jump * dt * bias)[:, None]))
        elif layer.kind == "LIF" and semantics.integration == "exact":
            drive = drive + (1 - alpha_v) * layer.r * bias  # relaxes to v_leak + r b, exactly
        else:
            drive = drive + jump * dt * bias
    return Discretization(name=layer.name, inputs=tuple(inputs), alpha_u=alpha_u, alpha_v=alpha_v, drive=drive,
                          threshold=layer.v_threshold, reset="zero" if fire_once else reset, fire_once=fire_once)


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


def _decays(disc: Discretization) -> tuple[np.ndarray, np.ndarray]:
    du = np.rint(fx.DECAY_UNITY * (1 - disc.alpha_u)).astype(np.int64) - fx.CURRENT_DECAY_OFFSET
    dv = np.rint(fx.DECAY_UNITY * (1 - disc.alpha_v)).astype(np.int64) - fx.VOLTAGE_DECAY_OFFSET
    max_decay = fx.DECAY_UNITY - 1
    return np.clip(du, 0, max_decay), np.clip(dv, 0, max_decay)


def _block_weights(at_unity: np.ndarray, weight_bits: int, exp_min: int, exp_max: int) -> tuple[
        int, np.ndarray, np.ndarray]:
    """One Dense block for weights of ``at_unity`` mantissa units at exponent 0: (exponent, rounded
    mantissas, mantissas as stored). Mixed-sign blocks hold even mantissas (Lava drops the lowest bit)."""
    mixed = fx.sign_mode(at_unity) == fx.MIXED
    w_max = (1 << weight_bits) - 2 if mixed else (1 << weight_bits) - 1
    exponent = _weight_exponent(float(np.abs(at_unity).max()), w_max, exp_min, exp_max, fit=True)
    step = 2 if mixed else 1
    w_int = (step * np.rint(at_unity / 2.0 ** exponent / step)).astype(np.int64)
    return exponent, w_int, fx.stored_weights(w_int, weight_bits)


def _weight_exponent(room: float, w_max: int, exp_min: int, exp_max: int, fit: bool = False) -> int:
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


def _bias_fields(bias: np.ndarray, layer_name: str) -> tuple[np.ndarray, int]:
    """Split a chip bias into a 13-bit signed mantissa and one exponent."""
    limit = (1 << (fx.BIAS_MANTISSA_BITS - 1)) - 1
    largest = float(np.max(np.abs(bias))) if bias.size else 0.0
    exponent = max(0, math.ceil(math.log2(largest / limit))) if largest > limit else 0
    mant = np.rint(bias / (1 << exponent)).astype(np.int64)
    if np.any(np.abs(mant) > limit):
        raise DeployError(f"node {layer_name}: bias {largest:g} does not fit a 13-bit mantissa")
    return mant, exponent


def quantize_layer(disc: Discretization, target: Target, fires_once: dict[str, bool], horizon_steps: int,
                   split_weights: bool = False) -> tuple[LifPopulation, tuple[DenseConnection, ...], dict]:
    """One scale per neuron, across all its inputs: each row of weights spans the mantissa, with its own threshold.

    The scale is set from one weight exponent for the layer, by the neuron whose range is tightest;
    every other neuron still reaches the full mantissa through its own scale.
    ``fires_once[source]`` says whether each neuron of that source spikes at most once per sample.

    ``split_weights``: each weight is stored as two synapses from the same source, a high part and a
    low part whose exponent is SPLIT_EXPONENT_GAP lower (their sum is what reaches u, exactly). The
    scale is then set by the state and threshold limits alone, not by an 8-bit mantissa: about 14
    bits of weight precision for twice the synapses.
    """
    weight_bits = int(target.value("synapse", "weight_bits"))
    exp_min, exp_max = int(target.value("synapse", "weight_exp_min")), int(target.value("synapse", "weight_exp_max"))
    vth_max = (1 << int(target.value("neuron", "threshold_bits"))) - 1
    state_max = (1 << (int(target.value("neuron", "state_bits")) - 1)) - 1
    unit = 1 << fx.ACTIVATION_SHIFT  # chip u per unit of weight mantissa at weight_exp 0

    gain = np.concatenate([g for _, g in disc.inputs], axis=1)
    mode = fx.sign_mode(gain)
    mixed = mode == fx.MIXED
    w_max = (1 << weight_bits) - 2 if mixed else (1 << weight_bits) - 1  # mixed 8-bit weights are even
    row_max = np.abs(gain).max(axis=1)
    live = row_max > 0
    if not live.any():
        raise DeployError(f"node {disc.name}: all weights are zero")

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
        resolvable = np.maximum(MIN_THRESHOLD_LEVELS * (1 << fx.THRESHOLD_SHIFT) / disc.threshold,
                                MIN_MANTISSA_LEVELS * unit / row_max)
        scale_cap = np.minimum(vth_max * (1 << fx.THRESHOLD_SHIFT) / disc.threshold,
                               np.maximum(worst_case, resolvable))
    v_low = v_low + v_floor_sustained  # reported: the headroom against sustained inhibition

    # The largest shared weight exponent at which every neuron's full-precision scale is within its cap.
    tightest = np.argmin(np.where(live, scale_cap * row_max, np.inf))
    weight_exp = _weight_exponent(scale_cap[tightest] * row_max[tightest] / unit, w_max, exp_min, exp_max)
    if split_weights:
        weight_exp = exp_max
    with np.errstate(divide="ignore"):
        scale = np.minimum(w_max * unit * 2.0 ** weight_exp / row_max, scale_cap)
    # The threshold is exact: the scale gives up less than one threshold level so that vth is an integer.
    vth = np.floor(scale * disc.threshold / (1 << fx.THRESHOLD_SHIFT)).astype(np.int64)
    if np.any(vth < 1) or np.any(vth > vth_max):
        raise DeployError(f"node {disc.name}: threshold maps to vth {int(vth.max())}, outside [1, {vth_max}]")
    scale = vth * (1 << fx.THRESHOLD_SHIFT) / disc.threshold

    # Each Dense block takes its own exponent: a block of small weights (a bias source, a weak
    # recurrence) keeps its full mantissa instead of the exponent of the layer's largest weight.
    blocks = []  # (source, part, exponent, w_int, stored)
    for source, g in disc.inputs:
        at_unity = scale[:, None] * g / unit
        exponent, w_int, stored = _block_weights(at_unity, weight_bits, exp_min, exp_max)
        blocks.append((source, "", exponent, w_int, stored))
        low_exponent = max(exponent - SPLIT_EXPONENT_GAP, 0)
        if split_weights and low_exponent < exponent:
            residual = at_unity - stored * 2.0 ** exponent
            _, w_low, stored_low = _block_weights(residual, weight_bits, low_exponent, low_exponent)
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
    du, dv = _decays(disc)
    chip_alpha_u = (fx.DECAY_UNITY - (du + fx.CURRENT_DECAY_OFFSET)) / fx.DECAY_UNITY
    chip_alpha_v = (fx.DECAY_UNITY - (dv + fx.VOLTAGE_DECAY_OFFSET)) / fx.DECAY_UNITY
    # A constant drive c settles v at c / (1 - a_v): scale it to the chip's own decay, so that the
    # resting level (v_leak) stays exact even where the 12-bit decay is not.
    with np.errstate(divide="ignore", invalid="ignore"):
        settled = np.where(disc.alpha_v < 1, (1 - chip_alpha_v) / (1 - disc.alpha_v), 1.0)
    bias_mant, bias_exp = _bias_fields(scale * disc.drive * settled, disc.name)

    realized = np.concatenate([sum(stored * unit * 2.0 ** exponent for src, _, exponent, _, stored in blocks
                                   if src == source) for source, _ in disc.inputs], axis=1) / scale[:, None]
    weight_error = (np.abs(realized - gain) / np.where(live, row_max, 1)[:, None])[live]
    report = {
        "scale": float(scale[live].min()), "scale_max": float(scale[live].max()), "weight_exp": weight_exp,
        "weight_exp_by_source": {source + part: exponent for source, part, exponent, _, _ in blocks},
        "split_weights": split_weights,
        "sign_mode": {1: "excitatory", 2: "inhibitory", 3: "mixed"}[mode],
        "max_weight_mantissa": int(levels.max()), "min_row_mantissa": int(levels[live].min()),
        "fraction_clipped": clipped,
        "weight_error_max": float(weight_error.max()), "weight_error_rms": float(np.sqrt(np.mean(weight_error ** 2))),
        "du": int(du.max()), "dv": int(dv.max()),
        "decay_u_error": float(np.max(np.abs(chip_alpha_u - disc.alpha_u))),
        "decay_v_error": float(np.max(np.abs(chip_alpha_v - disc.alpha_v))),
        "vth": int(vth.max()),
        "threshold_error": float(np.max(np.abs(vth * (1 << fx.THRESHOLD_SHIFT) / scale - disc.threshold)
                                        / disc.threshold)),
        "u_headroom": float(np.min(state_max / (scale * u_peak))[()]) if np.any(u_peak > 0) else float("inf"),
        "v_headroom": float(np.min(state_max / (scale * np.maximum(v_peak, v_low)))),
    }
    pop = LifPopulation(name=disc.name, size=disc.size, du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                        bias_exp=bias_exp, fire_once=disc.fire_once, reset=disc.reset)
    conns = tuple(DenseConnection(name=f"{source}->{disc.name}{part}", source=source, target=disc.name,
                                  weights=stored, weight_exp=exponent, num_weight_bits=weight_bits)
                  for source, part, exponent, _, stored in blocks)
    return pop, conns, report


def snapped_dt(net: FloatNetwork, steps_per_tau: float) -> float:
    """The dt near 1 / steps_per_tau for which the most common time constant decays exactly.

    The chip decays by (4096 - d) / 4096 per step with integer d. For dt = -tau ln(1 - d / 4096)
    that factor is exactly exp(-dt / tau), so the decay adds no error at all for that tau.
    """
    taus = np.concatenate([np.concatenate([layer.tau_syn, layer.tau_mem]) for layer in net.layers])
    taus = taus[np.isfinite(taus) & (taus > 0)]  # LIF/IF have no synaptic decay, IF no leak
    if taus.size == 0:
        return 1.0 / steps_per_tau
    values, counts = np.unique(taus, return_counts=True)
    tau = float(values[np.argmax(counts)])
    decay = round(fx.DECAY_UNITY * (1 - math.exp(-1.0 / (steps_per_tau * tau))))
    decay = min(max(decay, 1), fx.DECAY_UNITY - 1)
    return -tau * math.log1p(-decay / fx.DECAY_UNITY)


def discrete_layers(net: FloatNetwork, dt: float) -> tuple[Discretization, ...]:
    """Every layer's discrete form, led by the constant sources the layers' biases need.

    With Euler integration a simulator steps a feed-forward chain within one time step, while the
    chip delays each stage by one: a layer at depth d sees its first input d steps late, so its bias
    comes from the relay that starts then too. Exact integration has no such latency (every layer
    samples t = n dt), and every bias comes from the first source.
    """
    depths = feed_forward_depths(net.input_name, net.layers)
    layers = tuple(discretize(layer, dt, net.semantics, constant_source_name(
        depths[layer.name] if net.semantics.integration == "euler" else 1)) for layer in net.layers)
    deepest = max((depth for depth in range(1, len(net.layers) + 1)
                   if any(source == constant_source_name(depth) for layer in layers for source, _ in layer.inputs)),
                  default=0)
    sources = tuple([constant_source()] if deepest else []) + tuple(constant_relay(d) for d in range(2, deepest + 1))
    taken = {layer.name for layer in net.layers} | {net.input_name}
    for source in sources:
        if source.name in taken:
            raise DeployError(f"a node is named {source.name!r}, the name of a source this compiler adds for "
                              "Affine biases; rename the node")
    return sources + layers


def quantize(net: FloatNetwork, target: Target, dt: float, split_weights: bool = False) -> QuantizedNetwork:
    if not (np.isfinite(dt) and 1e-5 <= dt <= 1e3):
        raise DeployError(f"time step dt must be in [1e-5, 1e3] time units, got {dt}")
    sem = net.semantics
    resets = target.reset_modes
    if not sem.fire_once and sem.reset not in resets:
        raise DeployError(f"{target.name} neurons reset by {' or '.join(resets)}, not {sem.reset!r}; compile for a "
                          "target with programmable neurons (loihi2) or use --reset zero")
    horizon_steps = int(math.ceil(sem.horizon / dt))
    # Each source spikes at most once if its neurons fire once, or if it is a latency-coded input.
    fires_once = {layer.name: sem.fire_once for layer in net.layers}
    fires_once[net.input_name] = sem.encoding.get("kind") in SINGLE_SPIKE_ENCODINGS
    populations, connections, report = [], [], {}
    discrete = discrete_layers(net, dt)
    layer_names = {layer.name for layer in net.layers}
    for disc in discrete:
        if disc.name not in layer_names:  # a constant source
            fires_once[disc.name] = False
            pop, conns = constant_population(disc)
            populations.append(pop)
            connections.extend(conns)
            continue
        pop, conns, layer_report = quantize_layer(disc, target, fires_once, horizon_steps, split_weights)
        populations.append(pop)
        connections.extend(conns)
        report[disc.name] = {"synapses": [" -> ".join(p.nodes) or p.source for p in net.layer(disc.name).projections],
                             **layer_report}
    network = IntNetwork(input=InputLayer(net.input_name, net.input_size), populations=tuple(populations),
                         connections=tuple(connections), output=net.output)
    return QuantizedNetwork(network=network, discrete=discrete, dt=dt, report=report)
