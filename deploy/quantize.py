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
from .network import FloatLayer, FloatNetwork


# Fewer weight levels than this leave a layer meaningless: refuse it rather than run noise.
MIN_WEIGHT_LEVELS = 4
# Below this many levels of the largest weight, a negative weight exponent (finer weights, floored
# sums) is worth its bias; above it, weight_exp = 0 with round-to-nearest weights is unbiased.
MIN_MANTISSA_LEVELS = 64


@dataclass(frozen=True)
class Discretization:
    """The float discrete-time form of one layer: what the integers approximate."""

    name: str
    source: str
    gain: np.ndarray  # g, (size, source size)
    alpha_u: np.ndarray
    alpha_v: np.ndarray
    drive: np.ndarray  # c
    threshold: np.ndarray
    reset: str
    fire_once: bool


@dataclass(frozen=True)
class QuantizedNetwork:
    network: IntNetwork
    discrete: tuple[Discretization, ...]
    dt: float
    report: dict


def discretize(layer: FloatLayer, dt: float, fire_once: bool, reset: str, spike: str = "dirac") -> Discretization:
    """The exact discrete form of one layer at step dt (see the module docstring).

    A neuron without synaptic current (LIF, IF) jumps by r W / tau_mem (IF: r W) at an input spike
    and then decays until the next step: the chip's u holds one step's input (du = 4095).
    A "pulse" spike carries area dt instead of 1.
    """
    if np.any(layer.bias != 0):
        raise DeployError(f"node {layer.synapse}: a non-zero Affine bias (a constant input current) is not "
                          "supported by this compiler yet; fold it into v_leak or remove it")
    if reset == "zero" and np.any(layer.v_reset != 0):
        raise DeployError(f"node {layer.name}: v_reset must be 0 on Loihi (got {float(layer.v_reset.max()):g})")
    if reset == "subtract" and not fire_once:
        raise DeployError(f"node {layer.name}: subtractive reset is not available on the Loihi LIF "
                          "(it resets v to 0); use --reset zero or a fire-once network")
    alpha_v = np.exp(-dt / layer.tau_mem)
    area = dt if spike == "pulse" else 1.0
    if layer.kind == "CubaLIF":
        alpha_u = np.exp(-dt / layer.tau_syn)
        equal = np.isclose(layer.tau_syn, layer.tau_mem, rtol=1e-12, atol=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            distinct = (alpha_u - alpha_v) / (1 / layer.tau_mem - 1 / layer.tau_syn)
        current_to_voltage = layer.r / layer.tau_mem * np.where(equal, dt * alpha_v, distinct)
        jump = current_to_voltage * layer.w_in / layer.tau_syn
    else:
        alpha_u = np.zeros(layer.size)
        jump = layer.r * alpha_v / (layer.tau_mem if layer.kind == "LIF" else 1.0)
    gain = (area * jump)[:, None] * layer.weight
    return Discretization(name=layer.name, source=layer.source, gain=gain, alpha_u=alpha_u, alpha_v=alpha_v,
                          drive=(1 - alpha_v) * layer.v_leak, threshold=layer.v_threshold,
                          reset=reset, fire_once=fire_once)


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


def _bias_fields(bias: np.ndarray, layer_name: str) -> tuple[np.ndarray, int]:
    """Split a chip bias into a 13-bit signed mantissa and one exponent."""
    limit = (1 << (fx.BIAS_MANTISSA_BITS - 1)) - 1
    largest = float(np.max(np.abs(bias))) if bias.size else 0.0
    exponent = max(0, math.ceil(math.log2(largest / limit))) if largest > limit else 0
    mant = np.rint(bias / (1 << exponent)).astype(np.int64)
    if np.any(np.abs(mant) > limit):
        raise DeployError(f"node {layer_name}: bias {largest:g} does not fit a 13-bit mantissa")
    return mant, exponent


def quantize_layer(disc: Discretization, target: Target, sources_fire_once: bool, horizon_steps: int) -> tuple[
        LifPopulation, DenseConnection, dict]:
    """One scale per neuron: each row of weights spans the mantissa, with its own threshold.

    The weight exponent is shared by the Dense block, so it is set by the neuron whose range is
    tightest; every other neuron still reaches the full mantissa through its own scale.
    """
    weight_bits = int(target.value("synapse", "weight_bits"))
    exp_min, exp_max = int(target.value("synapse", "weight_exp_min")), int(target.value("synapse", "weight_exp_max"))
    vth_max = (1 << int(target.value("neuron", "threshold_bits"))) - 1
    state_max = (1 << (int(target.value("neuron", "state_bits")) - 1)) - 1
    unit = 1 << fx.ACTIVATION_SHIFT  # chip u per unit of weight mantissa at weight_exp 0

    mode = fx.sign_mode(disc.gain)
    mixed = mode == fx.MIXED
    w_max = (1 << weight_bits) - 2 if mixed else (1 << weight_bits) - 1  # mixed 8-bit weights are even
    row_max = np.abs(disc.gain).max(axis=1)
    live = row_max > 0
    if not live.any():
        raise DeployError(f"node {disc.name}: all weights are zero")

    # Worst-case |u| and |v| per unit of scale, per neuron. Each source spikes at most once
    # (fire-once or TTFS input) or, otherwise, every step. Above threshold v spikes and resets, so
    # the positive side is bounded by theta plus one step of input; the negative side by the
    # inhibitory weights alone.
    drive = np.abs(disc.drive)
    excitation = np.clip(disc.gain, 0, None).sum(axis=1)
    inhibition = np.clip(-disc.gain, 0, None).sum(axis=1)
    if sources_fire_once:
        u_peak = np.maximum(excitation, inhibition)
        v_floor = inhibition * _impulse_peak(float(disc.alpha_u.max()), float(disc.alpha_v.max()), horizon_steps)
    else:
        u_peak = np.maximum(excitation, inhibition) / (1 - disc.alpha_u)
        v_floor = inhibition / (1 - disc.alpha_u) / np.maximum(1 - disc.alpha_v, 1.0 / horizon_steps)
    v_peak = np.maximum(disc.threshold + u_peak + drive, v_floor + drive * horizon_steps)
    with np.errstate(divide="ignore"):
        scale_cap = np.minimum.reduce([vth_max * (1 << fx.THRESHOLD_SHIFT) / disc.threshold,
                                       state_max / u_peak, state_max / v_peak])

    # The largest shared weight exponent at which every neuron's full-precision scale is within its cap.
    tightest = np.argmin(np.where(live, scale_cap * row_max, np.inf))
    room = scale_cap[tightest] * row_max[tightest] / unit
    weight_exp = math.floor(math.log2(room / w_max))
    if weight_exp < 0 and room >= MIN_MANTISSA_LEVELS:
        weight_exp = 0
    weight_exp = min(max(weight_exp, exp_min), exp_max)
    with np.errstate(divide="ignore"):
        scale = np.minimum(w_max * unit * 2.0 ** weight_exp / row_max, scale_cap)

    step = 2 if mixed else 1
    ideal = scale[:, None] * disc.gain / (unit * 2.0 ** weight_exp)
    w_int = (step * np.rint(ideal / step)).astype(np.int64)
    stored = fx.stored_weights(w_int, weight_bits)
    levels = np.abs(stored).max(axis=1)
    if np.any(levels[live] < MIN_WEIGHT_LEVELS):
        worst = int(np.flatnonzero(live & (levels < MIN_WEIGHT_LEVELS))[0])
        raise DeployError(
            f"node {disc.name}: neuron {worst}: threshold {disc.threshold[worst]:g} is too large for its weights "
            f"(up to {row_max[worst]:g} per step): with vth at most {vth_max} its largest weight mantissa would be "
            f"{int(levels[worst])}, below {MIN_WEIGHT_LEVELS}")
    clipped = float(np.mean(stored != w_int))
    vth = np.rint(scale * disc.threshold / (1 << fx.THRESHOLD_SHIFT)).astype(np.int64)
    if np.any(vth < 1) or np.any(vth > vth_max):
        raise DeployError(f"node {disc.name}: threshold maps to vth {int(vth.max())}, outside [1, {vth_max}]")
    du, dv = _decays(disc)
    chip_alpha_u = (fx.DECAY_UNITY - (du + fx.CURRENT_DECAY_OFFSET)) / fx.DECAY_UNITY
    chip_alpha_v = (fx.DECAY_UNITY - (dv + fx.VOLTAGE_DECAY_OFFSET)) / fx.DECAY_UNITY
    # A constant drive c settles v at c / (1 - a_v): scale it to the chip's own decay, so that the
    # resting level (v_leak) stays exact even where the 12-bit decay is not.
    with np.errstate(divide="ignore", invalid="ignore"):
        settled = np.where(disc.alpha_v < 1, (1 - chip_alpha_v) / (1 - disc.alpha_v), 1.0)
    bias_mant, bias_exp = _bias_fields(scale * disc.drive * settled, disc.name)

    realized = stored * unit * 2.0 ** weight_exp / scale[:, None]
    weight_error = (np.abs(realized - disc.gain) / np.where(live, row_max, 1)[:, None])[live]
    report = {
        "scale": float(scale[live].min()), "scale_max": float(scale[live].max()), "weight_exp": weight_exp,
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
        "v_headroom": float(np.min(state_max / (scale * v_peak))),
    }
    pop = LifPopulation(name=disc.name, size=disc.gain.shape[0], du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                        bias_exp=bias_exp, fire_once=disc.fire_once)
    conn = DenseConnection(name=f"{disc.source}->{disc.name}", source=disc.source, target=disc.name,
                           weights=stored, weight_exp=weight_exp, num_weight_bits=weight_bits)
    return pop, conn, report


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


def quantize(net: FloatNetwork, target: Target, dt: float) -> QuantizedNetwork:
    if not (np.isfinite(dt) and 1e-5 <= dt <= 1e3):
        raise DeployError(f"time step dt must be in [1e-5, 1e3] time units, got {dt}")
    sem = net.semantics
    horizon_steps = int(math.ceil(sem.horizon / dt))
    populations, connections, discrete, report = [], [], [], {}
    for layer in net.layers:
        disc = discretize(layer, dt, sem.fire_once, sem.reset, sem.spike)
        # Each source spikes at most once if its neurons fire once, or if it is a latency-coded input.
        sources_fire_once = sem.fire_once or (layer.source == net.input_name
                                              and sem.encoding.get("kind") in SINGLE_SPIKE_ENCODINGS)
        pop, conn, layer_report = quantize_layer(disc, target, sources_fire_once, horizon_steps)
        populations.append(pop)
        connections.append(conn)
        discrete.append(disc)
        report[layer.name] = {"synapse": layer.synapse, **layer_report}
    network = IntNetwork(input=InputLayer(net.input_name, net.input_size), populations=tuple(populations),
                         connections=tuple(connections), output=net.output)
    return QuantizedNetwork(network=network, discrete=tuple(discrete), dt=dt, report=report)
