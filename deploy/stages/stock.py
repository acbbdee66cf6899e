"""stock: a quantized network rebuilt from the processes Loihi 2's cores run as they are (``--stock``, issue 20).

Lava's LIF and LIFReset hold one du, dv and vth per process and have neither a fire-once latch nor a subtractive
reset. A stock bundle therefore gets, besides its layers (whose neurons take a few shared thresholds, see
``quantize``):

**Fire-once from stock parts.** Every fire-once neuron n gets an inhibitory self-synapse of weight S and a helper
neuron h (du = dv = the largest decay, vth = 0, exciting itself with weight 1) that n's spike triggers; from then
on h fires every step and sends -S_h to n. Let B be an upper bound of u + bias over the whole sample without the
construction: with Loihi's truncating decay u' = T(f u) + 64 a <= f u + 1 + 64 a (f = 1 - q / D, D = 2**decay_bits,
q = du + current_decay_offset), so u <= 64 P + D / q where P is the neuron's positive fan-in (each fire-once
source once, a source firing every step D / q times). After n's first spike at step t0, v = 0 and the inhibition
reaching u at step t0 + m is S f**(m-1) + S_h (1 - f**(m-1)) / (1 - f), a convex combination of S and S_h D / q.
If 64 S >= B and 64 S_h D / q >= B, then u + bias <= 0 at every later step, v stays <= 0, and n never fires
again: its first spike is untouched. ``check_bounds`` proves this per neuron from the integers.

**Per-sample reset.** Every population is a LIFReset (``LifPopulation.sample_reset``) that zeroes u and v on
each sample's first step and then integrates that step's input. Each sample gets one padding step
(``Timing.padding_steps``) and a clock neuron (dv = 0, bias 64, vth = N - 1) that fires on step N and inhibits
every neuron on the padding step by C (64 C >= B; a helper by 2, its trigger and itself): nothing fires then, so
the reset step receives no input and every sample starts as from rest, as bitsim runs it.

The proof also needs every step's input to a neuron within STEP_INPUT_BITS (the chip's dendritic accumulator
width is not public; Lava adds in 32 bits) and u within the state: ``quantize`` caps each neuron's scale so, and
a bound the integer formats cannot meet is a DeployError naming the neuron and the numbers.

A subtractive reset keeps v - vth << 6 at a spike; the chip's stock neurons reset to 0, and no construction from
stock parts restores the residue: it needs neuron microcode, and stock mode refuses it.
"""

from __future__ import annotations

import math

import numpy as np

from ...targets import fixed_point as fx
from ...targets.bundle import DenseConnection, IntNetwork, LifPopulation, StockLayer
from ..errors import DeployError

# The single-step input (a, before << activation_shift) the construction is proved for: issue 20's
# simulations kept every step's dendritic sum within 16 bits, the least a Loihi accumulator is assumed to hold.
STEP_INPUT_BITS = 16
# quantize caps scales with this much room below the exact limits, for the rounding up of the helpers' weights.
CAP_MARGIN = 1 / 16
CLOCK = "stock:clock"
HELPER_SUFFIX = ":helper"
SELF_SUFFIX = ":self"  # the name of a fire-once layer's inhibitory self-synapse ends so
PADDING_STEPS = 1
# A helper: trigger and self-excitation of weight 1; the clock silences it with both together.
HELPER_WEIGHT = 1
# Threshold spreads: each stock process (one vth) takes neurons whose own thresholds lie within this ratio, so a
# neuron gives up at most log2(spread) bits of weight mantissa. Measured (tools/bench/RESULTS.md, "stock"): 1
# (a process per distinct threshold) spikes as the default bundle but takes 125 (yinyang-ttfs) and 213
# (digits-ttfs) processes; 2 takes 7 and 6, with yinyang-ttfs's accuracy unchanged and digits-ttfs one test image
# lower; one shared threshold per layer (inf) 5 and 5, yinyang-ttfs 0.6 points lower.
DEFAULT_THRESHOLD_SPREAD = 2.0


def refuse_subtractive_reset(name: str) -> DeployError:
    return DeployError(f"--stock: layer {name} resets by subtraction, which needs a custom neuron model (microcode) "
                       "on Loihi 2: Lava's stock LIF and LIFReset reset v to 0; compile it without --stock, or "
                       "with --reset zero")


def decay_ratio(widths: fx.Widths, du) -> np.ndarray:
    """D / q = 1 / (1 - f): the chip's current decay f = 1 - q / D, q = du + current_decay_offset."""
    return widths.decay_unity / (np.asarray(du, np.float64) + widths.current_decay_offset)


def scale_caps(inputs, fires_once: dict[str, bool], ratio: np.ndarray, drive: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Per unit of a neuron's scale (chip u per float u): (the worst |input| of one step, the lowest u), the
    construction's weights included, for ``quantize`` to cap scales with (``STEP_INPUT_BITS``, the state)."""
    size = ratio.shape[0]
    pos_once, pos_every, neg_once, neg_every = (np.zeros(size) for _ in range(4))
    for source, gain in inputs:
        pos, neg = np.clip(gain, 0, None).sum(axis=1), np.clip(-gain, 0, None).sum(axis=1)
        if fires_once[source]:
            pos_once, neg_once = pos_once + pos, neg_once + neg
        else:
            pos_every, neg_every = pos_every + pos, neg_every + neg
    bound = pos_once + pos_every * ratio + np.abs(drive)  # B per unit of scale, in u
    step = np.maximum(pos_once + pos_every, neg_once + neg_every + bound * (2 + 1 / ratio))  # self, clock, helper
    u_low = neg_once + neg_every * ratio + 2 * bound
    return step, u_low


def threshold_groups(vth: np.ndarray, spread: float) -> np.ndarray:
    """Each neuron's shared threshold: neurons are taken in order of their own vth, and a group takes every one
    within ``spread`` times its smallest, whose vth it shares (so no neuron's scale grows)."""
    shared = np.empty_like(vth)
    order = np.argsort(vth, kind="stable")
    start = 0
    while start < order.size:
        low = vth[order[start]]
        stop = start
        while stop < order.size and vth[order[stop]] <= low * spread:
            stop += 1
        shared[order[start:stop]] = low
        start = stop
    return shared


def _positive_fan_in(network: IntNetwork, pop: LifPopulation, fires_once: dict[str, bool]) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(P once, P every step, N once, N every step) per neuron in units of a: the positive and negative sums of
    its stored weights << exponent, split by whether the source fires at most once per sample. A negative
    exponent floors each step's sum: up to one unit more negative per block."""
    pos_once, pos_every, neg_once, neg_every = (np.zeros(pop.size) for _ in range(4))
    for conn in network.connections:
        if conn.target != pop.name:
            continue
        w = conn.weights.astype(np.float64) * 2.0 ** conn.weight_exp
        pos, neg = np.clip(w, 0, None).sum(axis=1), np.clip(-w, 0, None).sum(axis=1) + (conn.weight_exp < 0)
        if fires_once[conn.source]:
            pos_once, neg_once = pos_once + pos, neg_once + neg
        else:
            pos_every, neg_every = pos_every + pos, neg_every + neg
    return pos_once, pos_every, neg_once, neg_every


def _inhibition(name: str, what: str, needed: np.ndarray, widths: fx.Widths) -> tuple[int, np.ndarray]:
    """The smallest exponent >= 0 and mantissas (magnitudes) with mantissa << exponent >= ``needed`` (a units)."""
    top = (1 << widths.weight_bits) - 1  # an inhibitory block's magnitudes
    largest = float(needed.max()) if needed.size else 0.0
    exponent = max(0, math.ceil(math.log2(largest / top))) if largest > top else 0
    if exponent > widths.weight_exp_max:
        worst = int(np.argmax(needed))
        raise DeployError(f"--stock: node {name}: neuron {worst}: its {what} must reach {largest:g} per step "
                          f"(in units of a), more than {top} << {widths.weight_exp_max}, the largest weight")
    mantissa = np.ceil(needed / 2.0 ** exponent)
    return exponent, mantissa.astype(np.int64)


def _diagonal(values: np.ndarray) -> np.ndarray:
    return np.diag(np.asarray(values, np.int64))


def stock_network(network: IntNetwork, fires_once: dict[str, bool], widths: fx.Widths, num_steps: int) -> tuple[
        IntNetwork, dict[str, StockLayer]]:
    """The network with helpers, self-synapses, the clock and LIFReset populations, and per layer its proof."""
    state_limit = widths.state_limit
    step_limit = (1 << (STEP_INPUT_BITS - 1)) - 1  # signed: within +-(2**15 - 1)
    clock_vth = num_steps - 1
    if not 1 <= clock_vth <= widths.threshold_max or (1 << widths.threshold_shift) * num_steps >= state_limit:
        raise DeployError(f"--stock: a sample of {num_steps} steps needs a clock threshold of {clock_vth}, outside "
                          f"[1, {widths.threshold_max}] (or a clock voltage beyond the state)")
    clock = LifPopulation(name=CLOCK, size=1, du=widths.decay_max, dv=0, vth=clock_vth,
                          bias_mant=1 << widths.threshold_shift, sample_reset=True)
    populations, connections, layers = [], list(network.connections), {}
    for pop in network.populations:
        if pop.reset == fx.RESET_SUBTRACT:
            raise refuse_subtractive_reset(pop.name)
        ratio = decay_ratio(widths, pop.du)
        pos_once, pos_every, neg_once, neg_every = _positive_fan_in(network, pop, fires_once)
        bias = np.maximum(fx.effective_bias(pop.bias_mant, pop.bias_exp), 0)
        # B: the bound of u + bias without the construction, in u (the +1 per step of truncation is D / q).
        bound = (1 << widths.activation_shift) * (pos_once + pos_every * ratio) + ratio + bias
        unit = 1 << widths.activation_shift
        clock_exp, clock_w = _inhibition(pop.name, "clock inhibition", bound / unit, widths)
        clock_a = clock_w * 2.0 ** clock_exp
        populations.append(LifPopulation(**{**pop.__dict__, "fire_once": False, "sample_reset": True}))
        connections.append(DenseConnection(name=f"{CLOCK}->{pop.name}", source=CLOCK, target=pop.name,
                                           weights=-clock_w[:, None], weight_exp=clock_exp,
                                           num_weight_bits=widths.weight_bits))
        self_a = helper_a = np.zeros(pop.size)
        if pop.fire_once:
            self_exp, self_w = _inhibition(pop.name, "self-inhibition", bound / unit, widths)
            helper_exp, helper_w = _inhibition(pop.name, "helper inhibition", bound / (unit * ratio), widths)
            self_a, helper_a = self_w * 2.0 ** self_exp, helper_w * 2.0 ** helper_exp
            helper = pop.name + HELPER_SUFFIX
            populations.append(LifPopulation(name=helper, size=pop.size, du=widths.decay_max, dv=widths.decay_max,
                                             vth=0, bias_mant=0, sample_reset=True))
            ones = np.full(pop.size, HELPER_WEIGHT)
            for source, target, weights, exponent in (
                    (pop.name, pop.name, -_diagonal(self_w), self_exp),
                    (pop.name, helper, _diagonal(ones), 0),
                    (helper, helper, _diagonal(ones), 0),
                    (helper, pop.name, -_diagonal(helper_w), helper_exp),
                    (CLOCK, helper, -np.full((pop.size, 1), 2 * HELPER_WEIGHT), 0)):
                suffix = SELF_SUFFIX if source == target == pop.name else ""
                connections.append(DenseConnection(name=f"{source}->{target}{suffix}", source=source, target=target,
                                                   weights=weights, weight_exp=exponent,
                                                   num_weight_bits=widths.weight_bits))
        # The proof, from the integers: u stays within the state, every step's input within STEP_INPUT_BITS, and
        # self, helper and clock each reach B.
        step_input = np.maximum(pos_once + pos_every, neg_once + neg_every + self_a + helper_a + clock_a)
        u_high = bound
        u_low = unit * (neg_once + clock_a + np.maximum(self_a, helper_a * ratio)) + (unit * neg_every + 1) * ratio
        reached = [clock_a * unit] + ([self_a * unit, helper_a * unit * ratio] if pop.fire_once else [])
        margin = np.min(reached, axis=0) / bound
        for failed, what, value, limit in (
                (step_input > step_limit, "one step's input (a)", step_input, step_limit),
                (u_high >= state_limit, "the bound of u", u_high, state_limit),
                (u_low >= state_limit, "the lowest u", u_low, state_limit),
                (margin < 1, "inhibition / bound", margin, 1)):
            if np.any(failed):
                worst = int(np.flatnonzero(failed)[0])
                raise DeployError(f"--stock: node {pop.name}: neuron {worst}: {what} is {value[worst]:g}, beyond "
                                  f"{limit:g} (positive fan-in {pos_once[worst] + pos_every[worst]:g}, negative "
                                  f"{neg_once[worst] + neg_every[worst]:g}, bound B = {bound[worst]:.0f} in u)")
        layers[pop.name] = StockLayer(
            processes=len({(int(a), int(b), int(c)) for a, b, c in zip(pop.du, pop.dv, pop.vth)}),
            thresholds=tuple(np.unique(pop.vth)), bound_max=float(bound.max()),
            self_weight_max=int(self_a.max()), helper_weight_max=int(helper_a.max()),
            clock_weight_max=int(clock_a.max()), margin=float(margin.min()), step_input=int(step_input.max()),
            u_low=-float(u_low.max()))
    stocked = IntNetwork(input=network.input, populations=(*populations, clock), connections=tuple(connections),
                         output=network.output)
    return stocked, layers


def latched(network: IntNetwork) -> IntNetwork:
    """The same integers with bitsim's fire-once latch in place of the constructions: no helpers, no clock,
    no self-inhibition. A stock bundle must spike as this network does, neuron for neuron (the tests' oracle)."""
    helpers = {pop.name[:-len(HELPER_SUFFIX)] for pop in network.populations if pop.name.endswith(HELPER_SUFFIX)}
    added = {CLOCK} | {name + HELPER_SUFFIX for name in helpers}
    populations = tuple(LifPopulation(**{**pop.__dict__, "fire_once": pop.name in helpers, "sample_reset": False})
                        for pop in network.populations if pop.name not in added)
    connections = tuple(conn for conn in network.connections if conn.source not in added and conn.target not in added
                        and conn.name != f"{conn.source}->{conn.target}{SELF_SUFFIX}")
    return IntNetwork(input=network.input, populations=populations, connections=connections, output=network.output)
