"""Loihi fixed-point arithmetic, one function per hardware stage, in the widths of a target.

The rounding rules here are read from Lava 0.10.0's bit-accurate CPU models
(``lava.proc.lif.models.PyLifModelBitAcc`` and ``lava.proc.dense.models.PyDenseModelBitAcc``),
which the NIR paper's Loihi 2 trace matches (see ``../shared/reference/README.md``). The widths
(bits, shifts, offsets, limits) are not constants here: each stage takes a ``Widths``, which a target
description states (``description.Target.widths``) and a bundle carries (``bundle.Bundle.widths``).
State arrays have a leading batch axis: ``(samples, neurons)``.

Integers are carried in float64. Every value that arises is an integer below 2**53 in magnitude
(the largest is a state times a decay factor: with Loihi's 24-bit state and 12-bit decay under 2**36;
``Widths`` refuses widths whose product could reach 2**53), so float64 holds it exactly and each
operation below is exact; numpy then runs the stages with BLAS and without int64 temporaries,
several times faster. Results are integers and compare equal to Lava's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .spikes import spike_product

# The arithmetic these stages implement: the value of a target description's ``arithmetic`` key.
ARITHMETIC = "loihi-fixed-point"

# Lava adds the synaptic input into u, an int32 array, in place: the sum wraps at 32 bits before the
# state's own wrap (lava/proc/lif/models.py, AbstractPyLifModelFixed.subthr_dynamics). A property of
# the stages' register, not of a target's widths: ``Widths`` keeps the state within it.
ACCUMULATOR_BITS = 32
# float64 holds every integer below 2**53 exactly.
EXACT_BITS = 53


@dataclass(frozen=True)
class Widths:
    """The integer formats of a target's neurons and synapses: every width, shift and offset the stages use.

    Each field is the key of the same name in the target description's ``[neuron]`` or ``[synapse]``
    section. Raises ValueError (naming the field) for widths the stages cannot compute exactly.
    """

    # [neuron]
    state_bits: int  # u and v are signed registers of this many bits: u wraps, v saturates
    decay_bits: int  # du and dv are fractions of 2**decay_bits
    current_decay_offset: int  # u is multiplied by 2**decay_bits - (du + this)
    voltage_decay_offset: int  # v is multiplied by 2**decay_bits - (dv + this)
    threshold_bits: int  # vth is an unsigned mantissa of this many bits
    threshold_shift: int  # v is compared against vth << threshold_shift
    activation_shift: int  # the synaptic input is left-aligned into u by this shift
    bias_mantissa_bits: int  # the bias mantissa is signed, of this many bits
    # [synapse]
    weight_bits: int  # weight mantissa, sign included for mixed-sign blocks
    weight_exp_min: int  # the range of a Dense block's weight exponent
    weight_exp_max: int
    graded_spikes: bool  # whether a Dense block may carry graded payloads (num_message_bits > 0)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            wanted = bool if f.type == "bool" else int
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise ValueError(f"{f.name} must be {'a boolean' if wanted is bool else 'an integer'}, got {value!r}")
        for name in ("state_bits", "decay_bits", "threshold_bits", "bias_mantissa_bits", "weight_bits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("threshold_shift", "activation_shift", "current_decay_offset", "voltage_decay_offset"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.state_bits > ACCUMULATOR_BITS:
            raise ValueError(f"state_bits {self.state_bits} exceeds the {ACCUMULATOR_BITS}-bit register the synaptic "
                             "input is added in")
        if self.state_bits - 1 + self.decay_bits >= EXACT_BITS:
            raise ValueError(f"state_bits {self.state_bits} with decay_bits {self.decay_bits}: a decayed state would "
                             f"not be exact in float64 (needs state_bits - 1 + decay_bits < {EXACT_BITS})")
        for name in ("current_decay_offset", "voltage_decay_offset"):
            if getattr(self, name) >= self.decay_unity:
                raise ValueError(f"{name} {getattr(self, name)} is not below 2**decay_bits = {self.decay_unity}")
        if self.weight_exp_min > self.weight_exp_max:
            raise ValueError(f"weight_exp_min {self.weight_exp_min} is above weight_exp_max {self.weight_exp_max}")

    @property
    def decay_unity(self) -> int:
        """2**decay_bits: the decay factor's denominator; d = 0 (plus its offset) keeps the whole value."""
        return 1 << self.decay_bits

    @property
    def decay_max(self) -> int:
        """The largest du or dv."""
        return self.decay_unity - 1

    @property
    def state_limit(self) -> int:
        """2**(state_bits - 1): u wraps past it, v saturates one below it."""
        return 1 << (self.state_bits - 1)

    @property
    def threshold_max(self) -> int:
        """The largest vth mantissa."""
        return (1 << self.threshold_bits) - 1

    @property
    def bias_mantissa_range(self) -> tuple[int, int]:
        """The smallest and largest (two's complement) bias mantissa."""
        half = 1 << (self.bias_mantissa_bits - 1)
        return -half, half - 1


# How a LIF neuron's voltage restarts after a spike: set to 0 (Loihi's fixed CUBA LIF, Lava's LIF), or
# lowered by the threshold it crossed (a Loihi 2 programmable neuron; no Lava 0.10.0 process has it).
RESET_ZERO, RESET_SUBTRACT = "zero", "subtract"
RESET_MODES = (RESET_ZERO, RESET_SUBTRACT)

# Sign modes of a Dense block. Lava's SignMode enum numbers them differently (MIXED = 1,
# EXCITATORY = 2, INHIBITORY = 3); the lava back end translates.
EXCITATORY, INHIBITORY, MIXED = 1, 2, 3


def shift(x: np.ndarray, exponent) -> np.ndarray:
    """``x << exponent`` for exponent >= 0, arithmetic ``x >> -exponent`` (a floor) otherwise."""
    scaled = np.asarray(x, dtype=np.float64) * np.exp2(exponent)
    return scaled if np.all(np.asarray(exponent) >= 0) else np.floor(scaled)


def decay(widths: Widths, x: np.ndarray, decay_const) -> np.ndarray:
    """T(x * (2**decay_bits - decay_const)) with T(y) = sign(y) * (|y| >> decay_bits): rounds toward zero.

    (2**b - d) / 2**b has at most b significant bits, so the product is exact in float64 (see ``Widths``)
    and ``trunc`` is the shift toward zero.
    """
    factor = (widths.decay_unity - np.asarray(decay_const, dtype=np.float64)) / widths.decay_unity
    return np.trunc(np.asarray(x, dtype=np.float64) * factor)


def _wrap_accumulator(x: np.ndarray) -> np.ndarray:
    """Lava adds the activation into an int32 array in place: beyond ACCUMULATOR_BITS it wraps."""
    limit = 2.0 ** (ACCUMULATOR_BITS - 1)
    if x.size and (x.max() >= limit or x.min() < -limit):
        x = np.mod(x + limit, 2 * limit) - limit
    return x


def integrate_current(widths: Widths, u: np.ndarray, du, activation: np.ndarray) -> tuple[
        np.ndarray, np.ndarray | None]:
    """u' = decay(u, du + current_decay_offset) + (a << activation_shift), wrapped to state_bits.

    Returns (u', wrapped mask or None if none). The sum is an int32 in-place add in Lava, so it wraps at
    32 bits first. The state wrap is Lava's two-sided test; its quirk is that exactly -2**(state_bits - 1)
    becomes +2**(state_bits - 1).
    """
    limit = widths.state_limit
    summed = decay(widths, u, np.asarray(du) + widths.current_decay_offset)
    summed += np.asarray(activation, dtype=np.float64) * (1 << widths.activation_shift)
    if summed.size == 0 or (summed.max() <= limit and summed.min() > -limit):
        return summed, None  # the common case (within the state, so within 32 bits), from two reductions
    summed = _wrap_accumulator(summed)
    over = summed > limit
    under = summed <= -limit
    summed = summed - over * (2.0 * limit) + under * (2.0 * limit)
    return summed, over | under


def integrate_voltage(widths: Widths, v: np.ndarray, dv, u: np.ndarray, bias) -> tuple[
        np.ndarray, np.ndarray | None]:
    """v' = clip(decay(v, dv + voltage_decay_offset) + u' + bias, +-(2**(state_bits - 1) - 1)).

    Returns (v', saturated mask or None). It adds the *new* current u'; the bias is not shifted by
    activation_shift.
    """
    summed = decay(widths, v, np.asarray(dv) + widths.voltage_decay_offset)
    summed += u
    if np.any(bias):
        summed += bias
    limit = widths.state_limit - 1
    if summed.size == 0 or (summed.max() <= limit and summed.min() >= -limit):
        return summed, None
    saturated = (summed > limit) | (summed < -limit)
    np.clip(summed, -limit, limit, out=summed)
    return summed, saturated


def count(mask: np.ndarray | None) -> int:
    """How many neurons an event mask marks (None: none)."""
    return 0 if mask is None else int(mask.sum())


def effective_threshold(widths: Widths, vth) -> np.ndarray:
    """vth << threshold_shift: what v is compared against."""
    return np.asarray(vth, dtype=np.float64) * (1 << widths.threshold_shift)


def fire(widths: Widths, v: np.ndarray, vth) -> np.ndarray:
    """Spike where v' > vth << threshold_shift (strictly)."""
    return v > effective_threshold(widths, vth)


def reset(widths: Widths, v: np.ndarray, spikes: np.ndarray, vth, mode: str) -> np.ndarray:
    """v after the spikes: 0 where a neuron spiked ("zero"), or v - (vth << threshold_shift) there ("subtract").

    A subtracted v lies in (0, v], as v > vth << shift >= 0 (vth is an unsigned mantissa): it cannot saturate.
    """
    if mode == RESET_SUBTRACT:
        return np.where(spikes, v - effective_threshold(widths, vth), v)
    return np.where(spikes, 0.0, v)


def effective_bias(bias_mant: np.ndarray, bias_exp) -> np.ndarray:
    """bias = bias_mant << bias_exp, or an arithmetic right shift for a negative exponent."""
    return shift(bias_mant, bias_exp)


def sign_mode(weights: np.ndarray) -> int:
    """EXCITATORY if all w >= 0, INHIBITORY if all w <= 0, otherwise MIXED (Lava's rule)."""
    if np.all(weights >= 0):
        return EXCITATORY
    if np.all(weights <= 0):
        return INHIBITORY
    return MIXED


def stored_weights(widths: Widths, weights: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """The weights a Dense block actually holds after Lava's clip and truncate (b = weight_bits).

    w = int(w) (toward zero), negated if INHIBITORY, clipped to [-2**b * mixed, 2**b - 1], negated
    back; then the low n = b - num_weight_bits + mixed bits are dropped: w = (w >> n) << n.
    Mixed 8-bit weights therefore become even numbers in [-256, 254].
    """
    mode = sign_mode(weights)
    mixed = int(mode == MIXED)
    sign = -1 if mode == INHIBITORY else 1
    w = np.trunc(np.asarray(weights, dtype=np.float64)).astype(np.int64) * sign
    w = np.clip(w, -(1 << widths.weight_bits) * mixed, (1 << widths.weight_bits) - 1)
    dropped_bits = widths.weight_bits - num_weight_bits + mixed
    w = np.left_shift(np.right_shift(w, dropped_bits), dropped_bits)
    return (w * sign).astype(np.int32)


def dense_activation(weights: np.ndarray, weight_exp: int, spikes: np.ndarray,
                     num_message_bits: int = 0) -> np.ndarray:
    """Dendritic sum of one Dense block for a batch: ``(samples, n_in) -> (samples, n_out)``.

    Binary spikes (num_message_bits == 0): a = sum of the weight columns whose input spiked.
    Graded spikes: a = W . s. Then a << weight_exp (or >> for a negative exponent): the shift
    applies to the sum, not to each weight. There is no saturation to 16 bits.
    Sums are exact in float64 while |sum| < 2**53: 8-bit weights times 24-bit payloads over fewer
    than 2**21 inputs.
    """
    payload = spikes if num_message_bits > 0 else spikes != 0
    return shift(spike_product(weights, payload), weight_exp)
