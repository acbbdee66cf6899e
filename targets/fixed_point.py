"""Loihi 2 fixed-point arithmetic, one function per hardware stage.

Every constant and every rounding rule here is read from Lava 0.10.0's bit-accurate CPU models
(``lava.proc.lif.models.PyLifModelBitAcc`` and ``lava.proc.dense.models.PyDenseModelBitAcc``),
which the NIR paper's Loihi 2 trace matches (see ``../shared/reference/README.md``).
State arrays have a leading batch axis: ``(samples, neurons)``.

Integers are carried in float64. Every value that arises is an integer below 2**53 in magnitude
(the largest is a 24-bit state times a 12-bit decay factor, under 2**36), so float64 holds it
exactly and each operation below is exact; numpy then runs the stages with BLAS and without
int64 temporaries, several times faster. Results are integers and compare equal to Lava's.
"""

from __future__ import annotations

import numpy as np

from .spikes import spike_product

# --- bit widths -------------------------------------------------------------------------------
DECAY_BITS = 12  # du and dv are 12-bit fractions of DECAY_UNITY
DECAY_UNITY = 1 << DECAY_BITS  # 4096: a decay of 0 keeps the whole value
STATE_BITS = 24  # u and v are 24-bit signed registers
STATE_LIMIT = 1 << (STATE_BITS - 1)  # 2**23: u wraps past it, v saturates one below it
THRESHOLD_BITS = 17  # vth mantissa
WEIGHT_BITS = 8  # synaptic weight mantissa, sign included for mixed-sign layers
BIAS_MANTISSA_BITS = 13  # signed bias mantissa

# --- named shifts -----------------------------------------------------------------------------
ACTIVATION_SHIFT = 6  # synaptic input is left-aligned into the 24-bit current ("act_shift")
THRESHOLD_SHIFT = 6  # v is compared against vth << 6 ("vth_shift")

# --- decay offsets ----------------------------------------------------------------------------
# Lava's bit-accurate LIF multiplies u by 4096 - (du + 1) and v by 4096 - dv: du = 0 still leaks
# u by 1/4096 per step, while dv = 0 means no voltage leak at all.
CURRENT_DECAY_OFFSET = 1  # "ds_offset"
VOLTAGE_DECAY_OFFSET = 0  # "dm_offset"

# --- weight exponent range --------------------------------------------------------------------
# The chip's weight exponent is 4-bit signed (Davies et al., IEEE Micro 2018, for Loihi); Lava's
# CPU model itself accepts any integer, so this is a hardware limit, checked by the compiler.
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7

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


def decay(x: np.ndarray, decay_const) -> np.ndarray:
    """T(x * (4096 - decay_const)) with T(y) = sign(y) * (|y| >> 12): rounds toward zero.

    (4096 - d) / 4096 has at most 12 significant bits, so the product is exact in float64 and
    ``trunc`` is the shift toward zero.
    """
    factor = (DECAY_UNITY - np.asarray(decay_const, dtype=np.float64)) / DECAY_UNITY
    return np.trunc(np.asarray(x, dtype=np.float64) * factor)


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    """Lava adds the activation into an int32 array in place: beyond 32 bits it wraps."""
    limit = 2.0 ** 31
    if x.size and (x.max() >= limit or x.min() < -limit):
        x = np.mod(x + limit, 2 * limit) - limit
    return x


def integrate_current(u: np.ndarray, du, activation: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """u' = decay(u, du + 1) + (a << 6), wrapped to 24 bits. Returns (u', wrapped mask or None if none).

    The sum is an int32 in-place add in Lava, so it wraps at 32 bits first. The 24-bit wrap
    is Lava's two-sided test; its quirk is that exactly -2**23 becomes +2**23.
    """
    summed = decay(u, np.asarray(du) + CURRENT_DECAY_OFFSET)
    summed += np.asarray(activation, dtype=np.float64) * (1 << ACTIVATION_SHIFT)
    if summed.size == 0 or (summed.max() <= STATE_LIMIT and summed.min() > -STATE_LIMIT):
        return summed, None  # the common case (within 24 bits, so within 32), from two reductions
    summed = _wrap_int32(summed)
    over = summed > STATE_LIMIT
    under = summed <= -STATE_LIMIT
    summed = summed - over * (2.0 * STATE_LIMIT) + under * (2.0 * STATE_LIMIT)
    return summed, over | under


def integrate_voltage(v: np.ndarray, dv, u: np.ndarray, bias) -> tuple[np.ndarray, np.ndarray | None]:
    """v' = clip(decay(v, dv) + u' + bias, -(2**23 - 1), 2**23 - 1). Returns (v', saturated mask or None).

    It adds the *new* current u'; the bias is not shifted by ACTIVATION_SHIFT.
    """
    summed = decay(v, np.asarray(dv) + VOLTAGE_DECAY_OFFSET)
    summed += u
    if np.any(bias):
        summed += bias
    limit = STATE_LIMIT - 1
    if summed.size == 0 or (summed.max() <= limit and summed.min() >= -limit):
        return summed, None
    saturated = (summed > limit) | (summed < -limit)
    np.clip(summed, -limit, limit, out=summed)
    return summed, saturated


def count(mask: np.ndarray | None) -> int:
    """How many neurons an event mask marks (None: none)."""
    return 0 if mask is None else int(mask.sum())


def fire(v: np.ndarray, vth) -> np.ndarray:
    """Spike where v' > vth << 6 (strictly)."""
    return v > np.asarray(vth, dtype=np.float64) * (1 << THRESHOLD_SHIFT)


def reset(v: np.ndarray, spikes: np.ndarray, vth, mode: str) -> np.ndarray:
    """v after the spikes: 0 where a neuron spiked ("zero"), or v - (vth << 6) there ("subtract").

    A subtracted v lies in (0, v], as v > vth << 6 >= 0 (vth is an unsigned mantissa): it cannot saturate.
    """
    if mode == RESET_SUBTRACT:
        return np.where(spikes, v - np.asarray(vth, dtype=np.float64) * (1 << THRESHOLD_SHIFT), v)
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


def stored_weights(weights: np.ndarray, num_weight_bits: int = WEIGHT_BITS) -> np.ndarray:
    """The weights a Dense block actually holds after Lava's clip and truncate.

    w = int(w) (toward zero), negated if INHIBITORY, clipped to [-256 * mixed, 255], negated
    back; then the low n = 8 - num_weight_bits + mixed bits are dropped: w = (w >> n) << n.
    Mixed 8-bit weights therefore become even numbers in [-256, 254].
    """
    mode = sign_mode(weights)
    mixed = int(mode == MIXED)
    sign = -1 if mode == INHIBITORY else 1
    w = np.trunc(np.asarray(weights, dtype=np.float64)).astype(np.int64) * sign
    w = np.clip(w, -(1 << WEIGHT_BITS) * mixed, (1 << WEIGHT_BITS) - 1)
    dropped_bits = WEIGHT_BITS - num_weight_bits + mixed
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
