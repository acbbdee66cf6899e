"""discretize: the float network -> its discrete-time form at step dt (``artifacts.discrete``).

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

With ``integration = "euler"`` (snnTorch, norse, sinabs' IAF) the same chip form holds with
    a_u = 1 - h / tau_syn,  a_v = 1 - h / tau_mem,  c = (r / tau_mem) h,
the step those simulators take; the Dense delay then is the simulator's own one-step delay
(norse), or one step of pipeline latency per layer (snnTorch steps a feed-forward chain in one step).
With ``integration = "exponential"`` (sinabs' LIF: v <- alpha v + (1 - alpha) x) the input is held over
the step: a_u = exp(-h / tau_syn), a_v = exp(-h / tau_mem), and a held input x moves u by (1 - a_v) r x
(a CubaLIF's by (1 - a_v) r (1 - a_u) w_in x); the chain is stepped within one step, as under Euler.

An Affine bias b is a constant input x = b, area b h per step. A CubaLIF filters it through I, so it
arrives as one input of b h per step from a one-neuron constant source that fires every step. LIF
and IF neurons hold one step's input in u: under exact integration the bias becomes part of the
chip's bias, which acts from step 1, as every layer samples t = n h. Under a simulator's step a layer
at depth d gets its first input in step d + 1 (the pipeline latency above), and a simulator adds its
bias together with that input, never before: the chip's bias cannot wait, so the bias comes as an
input from the constant source's relay that starts then (``discretize``), as for a CubaLIF. It then
has a weight's precision (an 8-bit mantissa in its own Dense block; about 14 bits with split
weights) instead of the 13-bit bias's.
"""

from __future__ import annotations

import math

import numpy as np

from ...targets.encoding import SINGLE_SPIKE_ENCODINGS
from ..artifacts.discrete import DiscreteNetwork, Discretization
from ..artifacts.network import FloatLayer, FloatNetwork
from ..artifacts.semantics import SIMULATOR_INTEGRATIONS, Semantics
from ..errors import DeployError
from .load import feed_forward_depths

# The constant source: one neuron that fires every step (v = bias = 1 > vth = 0, reset to 0).
CONSTANT_SOURCE = "constant"


def constant_source_name(depth: int) -> str:
    """The constant source whose spikes first reach a layer at feed-forward depth ``depth`` together with
    the first input: "constant" for depth 1, a relay "constant.<depth>" one step later per depth."""
    return CONSTANT_SOURCE if depth <= 1 else f"{CONSTANT_SOURCE}.{depth}"


def constant_source() -> Discretization:
    """The float form of the constant source: no input, u = 0, v = 1 every step, above a threshold of 1/2."""
    zero, one = np.zeros(1), np.ones(1)
    return Discretization(name=CONSTANT_SOURCE, inputs=(), alpha_u=zero, alpha_v=zero, drive=one, threshold=one / 2,
                          reset="zero", fire_once=False, bias_source=True)


def constant_relay(depth: int) -> Discretization:
    """The float form of relay ``depth``: it fires in every step after the previous source does."""
    zero, one = np.zeros(1), np.ones(1)
    return Discretization(name=constant_source_name(depth), inputs=((constant_source_name(depth - 1), one[:, None]),),
                          alpha_u=zero, alpha_v=zero, drive=zero, threshold=one / 2, reset="zero", fire_once=False,
                          bias_source=True)


# A tau this close above dt is dt: snnTorch writes tau = dt / (1 - beta) in float32, so beta = 0 gives a tau of
# 9.99999975e-05 for dt = 1e-4, one float32 rounding (2^-23 relative) short of dt.
EULER_TAU_TOLERANCE = 1 + 2 * float(np.finfo(np.float32).eps)


def _euler_decay(dt: float, tau: np.ndarray) -> np.ndarray:
    """1 - dt / tau, Euler's decay per step; 0 where tau is dt within EULER_TAU_TOLERANCE (no memory, beta = 0)."""
    return np.maximum(1 - dt / tau, 0.0)


def _decay_and_jump(layer: FloatLayer, dt: float, integration: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a_u, a_v, jump of v units of u per unit input area) of one layer."""
    if integration == "euler":
        too_long = [tau for tau in (layer.tau_syn if layer.dynamics == "CubaLIF" else None, layer.tau_mem)
                    if tau is not None and np.any(dt > tau * EULER_TAU_TOLERANCE)]
        if too_long:
            raise DeployError(f"node {layer.name}: the Euler step dt = {dt:.9g} exceeds a time constant "
                              f"({float(np.min(too_long[0])):.9g}); it would flip the decay's sign (a graph from norse "
                              "1.1's to_nir holds dt x tau: divide its taus by dt, README \"Graphs from other tools\")")
        alpha_v = _euler_decay(dt, layer.tau_mem)
        if layer.dynamics == "CubaLIF":
            return (_euler_decay(dt, layer.tau_syn), alpha_v,
                    dt * layer.r / layer.tau_mem * layer.w_in / layer.tau_syn)
        return np.zeros(layer.size), alpha_v, layer.r / (layer.tau_mem if layer.dynamics == "LIF" else 1.0)
    alpha_v = np.exp(-dt / layer.tau_mem)
    if integration == "exponential":
        # The input held over the step: u carries (1 - a_v) r I, I's step (1 - a_u) w_in x; an IF has no leak.
        if layer.dynamics == "CubaLIF":
            alpha_u = np.exp(-dt / layer.tau_syn)
            return alpha_u, alpha_v, (1 - alpha_v) * layer.r * (1 - alpha_u) * layer.w_in / dt
        return np.zeros(layer.size), alpha_v, layer.r * ((1 - alpha_v) / dt if layer.dynamics == "LIF" else 1.0)
    if layer.dynamics == "CubaLIF":
        alpha_u = np.exp(-dt / layer.tau_syn)
        equal = np.isclose(layer.tau_syn, layer.tau_mem, rtol=1e-12, atol=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            distinct = (alpha_u - alpha_v) / (1 / layer.tau_mem - 1 / layer.tau_syn)
        current_to_voltage = layer.r / layer.tau_mem * np.where(equal, dt * alpha_v, distinct)
        return alpha_u, alpha_v, current_to_voltage * layer.w_in / layer.tau_syn
    return np.zeros(layer.size), alpha_v, layer.r * alpha_v / (layer.tau_mem if layer.dynamics == "LIF" else 1.0)


def delay_steps(delay: np.ndarray, dt: float, node_name: str, round_delays: bool = False) -> tuple[np.ndarray, float]:
    """(whole steps of dt per synapse, the largest rounding error in time units) of a path's delays.

    A delay that is not a whole number of steps (within WHOLE_STEPS_TOLERANCE, float noise) is an error
    naming the node, the delay and the nearest whole steps, unless ``round_delays``: then it is rounded to the
    nearest step and the error is returned.
    """
    steps = delay / dt
    nearest = np.rint(steps)
    off = np.abs(steps - nearest) > WHOLE_STEPS_TOLERANCE * np.maximum(1, nearest)
    if off.any() and not round_delays:
        bad = float(delay[off][0])
        low = math.floor(bad / dt)
        raise DeployError(f"node {node_name}: delay {bad:g} is not a whole number of steps of dt = {dt:g} "
                          f"({bad / dt:.6g} steps; nearest {low} or {low + 1} steps: {low * dt:g} or "
                          f"{(low + 1) * dt:g}); change the delay or dt, or compile with --round-delays")
    return nearest.astype(np.int64), float(np.max(np.abs(nearest * dt - delay), initial=0.0))


def discretize_layer(layer: FloatLayer, dt: float, semantics: Semantics,
               constant_source: str = CONSTANT_SOURCE, round_delays: bool = False) -> tuple[Discretization, float]:
    """The discrete form of one layer at step dt (see the module docstring).

    A neuron without synaptic current (LIF, IF) jumps by r W / tau_mem (IF: r W) at an input spike
    and then decays until the next step: the chip's u holds one step's input (du = 4095).
    A "pulse" spike carries area dt instead of 1. Returns the layer with its delays in steps
    (``delay_steps``) and their largest rounding error.
    """
    # A readout never fires: whether it would fire once is moot, and it runs as a neuron that may fire many times.
    fire_once, reset = semantics.fire_once and not layer.readout, semantics.reset
    if reset == "zero" and np.any(layer.v_reset != 0):
        raise DeployError(f"node {layer.name}: v_reset must be 0 on Loihi (got {float(layer.v_reset.max()):g})")
    alpha_u, alpha_v, jump = _decay_and_jump(layer, dt, semantics.integration)
    area = dt if semantics.spike == "pulse" else 1.0
    inputs = [(p.source, (area * jump)[:, None] * p.weight) for p in layer.projections]
    delays, rounding = [], 0.0
    for p in layer.projections:
        if p.delay is not None:
            steps, error = delay_steps(p.delay, dt, " -> ".join(p.nodes) or layer.name, round_delays)
            rounding = max(rounding, error)
            if steps.any():
                delays.append((p.source, steps))
    bias = np.sum([p.bias for p in layer.projections], axis=0)
    drive = (1 - alpha_v) * layer.v_leak
    if np.any(bias != 0):
        if layer.dynamics == "CubaLIF" or semantics.integration in SIMULATOR_INTEGRATIONS:
            inputs.append((constant_source, (jump * dt * bias)[:, None]))
        elif layer.dynamics == "LIF":
            drive = drive + (1 - alpha_v) * layer.r * bias  # relaxes to v_leak + r b, exactly
        else:
            drive = drive + jump * dt * bias
    return Discretization(name=layer.name, inputs=tuple(inputs), alpha_u=alpha_u, alpha_v=alpha_v, drive=drive,
                          threshold=layer.v_threshold, reset="zero" if fire_once else reset, fire_once=fire_once,
                          readout=layer.readout, delays=tuple(delays)), rounding


def _most_common(taus: np.ndarray) -> float | None:
    """The most common finite positive value (the smallest of those equally common); None if there is none."""
    taus = taus[np.isfinite(taus) & (taus > 0)]  # LIF/IF have no synaptic decay, IF no leak
    if taus.size == 0:
        return None
    values, counts = np.unique(taus, return_counts=True)
    return float(values[np.argmax(counts)])


def reference_tau(net: FloatNetwork) -> float | None:
    """The network's most common membrane time constant, the tau of --steps-per-tau; None if it has none (IF
    layers only)."""
    return _most_common(np.concatenate([layer.tau_mem for layer in net.layers]))


def unsnapped_dt(net: FloatNetwork, steps_per_tau: float) -> float:
    """tau / steps_per_tau (``reference_tau``); 1 / steps_per_tau time units without a tau."""
    return (reference_tau(net) or 1.0) / steps_per_tau


def snapped_dt(net: FloatNetwork, steps_per_tau: float, decay_bits: int) -> float:
    """The dt near ``unsnapped_dt`` for which the most common time constant (synaptic or membrane) decays exactly.

    The chip decays by (D - d) / D per step with integer d, D = 2**decay_bits (the target's; 4096 on
    Loihi). For dt = -tau ln(1 - d / D) that factor is exactly exp(-dt / tau), so the decay adds no
    error at all for that tau.
    """
    tau = _most_common(np.concatenate([np.concatenate([layer.tau_syn, layer.tau_mem]) for layer in net.layers]))
    if tau is None:
        return unsnapped_dt(net, steps_per_tau)
    unity = 1 << decay_bits
    decay = round(unity * (1 - math.exp(-unsnapped_dt(net, steps_per_tau) / tau)))
    decay = min(max(decay, 1), unity - 1)
    return -tau * math.log1p(-decay / unity)


def latency_steps(net: FloatNetwork) -> int:
    """The steps by which the chip's output lags the model: under a simulator's step (euler, exponential) the
    output layer's feed-forward depth (each Dense stage delays by one step, while a simulator steps the chain
    within one), under exact integration none (every layer samples t = n dt)."""
    if net.semantics.integration not in SIMULATOR_INTEGRATIONS:
        return 0
    return feed_forward_depths(net.input_name, net.layers)[net.output]


# A horizon within this relative distance of a whole number of steps is that number: 26 * 1e-4 / 1e-4 is
# 26.000000000000004 in floating point, and a 27th step would be a step the user did not ask for.
WHOLE_STEPS_TOLERANCE = 1e-9


def horizon_steps(horizon: float, dt: float) -> int:
    """The steps that cover ``horizon``: ceil(horizon / dt), a float rounding error above a whole number not
    counted as a step of its own."""
    steps = horizon / dt
    nearest = round(steps)
    if abs(steps - nearest) <= WHOLE_STEPS_TOLERANCE * max(1, nearest):
        return int(nearest)
    return int(math.ceil(steps))


def run_steps(net: FloatNetwork, dt: float) -> int:
    """The steps a sample runs: enough to cover the horizon, then the pipeline latency (``latency_steps``)."""
    return horizon_steps(net.semantics.horizon, dt) + latency_steps(net)


def discretize(net: FloatNetwork, dt: float, round_delays: bool = False) -> DiscreteNetwork:
    """The network's discrete form at step dt: every layer's, led by the constant sources its biases need.

    Under a simulator's step (euler, exponential) a feed-forward chain advances within one time step, while the
    chip delays each stage by one: a layer at depth d sees its first input d steps late, so its bias
    comes from the relay that starts then too. Exact integration has no such latency (every layer
    samples t = n dt), and every bias comes from the first source. Delays become whole steps
    (``delay_steps``; ``round_delays`` rounds them).
    """
    tau = reference_tau(net) or 1.0
    if not (np.isfinite(dt) and 1e-5 <= dt / tau <= 1e3):
        raise DeployError(f"time step dt must be in [1e-5, 1e3] x tau = [{1e-5 * tau:g}, {1e3 * tau:g}] "
                          f"{net.semantics.time_unit} (tau {tau:g}, the graph's most common time constant), got {dt:g}")
    sem = net.semantics
    depths = feed_forward_depths(net.input_name, net.layers)
    discretized = [discretize_layer(layer, dt, sem, constant_source_name(
        depths[layer.name] if sem.integration in SIMULATOR_INTEGRATIONS else 1), round_delays) for layer in net.layers]
    layers = tuple(layer for layer, _ in discretized)
    deepest = max((depth for depth in range(1, len(net.layers) + 1)
                   if any(source == constant_source_name(depth) for layer in layers for source, _ in layer.inputs)),
                  default=0)
    sources = tuple([constant_source()] if deepest else []) + tuple(constant_relay(d) for d in range(2, deepest + 1))
    taken = {layer.name for layer in net.layers} | {net.input_name}
    for source in sources:
        if source.name in taken:
            raise DeployError(f"a node is named {source.name!r}, the name of a source this compiler adds for "
                              "Affine biases; rename the node")
    return DiscreteNetwork(
        input_name=net.input_name, input_size=net.input_size, populations=sources + layers, output=net.output, dt=dt,
        num_steps=run_steps(net, dt),
        input_fires_once=sem.encoding.get("kind") in SINGLE_SPIKE_ENCODINGS,
        synapses={layer.name: tuple(" -> ".join(p.nodes) or p.source for p in layer.projections)
                  for layer in net.layers},
        delay_rounding_error=max((error for _, error in discretized), default=0.0))
