"""Loihi 2 fixed-point arithmetic, one function per hardware stage.

Every constant and every rounding rule here is read from Lava 0.10.0's bit-accurate CPU models
(``lava.proc.lif.models.PyLifModelBitAcc`` and ``lava.proc.dense.models.PyDenseModelBitAcc``),
which the NIR paper's Loihi 2 trace matches (see ``../shared/reference/README.md``).
State arrays are int32 with a leading batch axis: ``(samples, neurons)``.
"""

from __future__ import annotations

import numpy as np

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
# Loihi weight exponents are 4-bit signed (Davies et al., IEEE Micro 2018; Lava Dense docs).
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7

# Sign modes of a Dense block, as in Lava's SignMode.
EXCITATORY, INHIBITORY, MIXED = 1, 2, 3


def shift(x: np.ndarray, exponent) -> np.ndarray:
    """``x << exponent`` for exponent >= 0, arithmetic ``x >> -exponent`` otherwise."""
    exponent = np.asarray(exponent)
    return np.where(exponent >= 0, np.left_shift(x, np.maximum(exponent, 0)),
                    np.right_shift(x, np.maximum(-exponent, 0)))


def decay(x: np.ndarray, decay_const) -> np.ndarray:
    """T(x * (4096 - decay_const)) with T(y) = sign(y) * (|y| >> 12): rounds toward zero.

    The product is taken in int64 (it exceeds 32 bits), the result cast back to int32.
    """
    product = x.astype(np.int64) * (DECAY_UNITY - np.asarray(decay_const, dtype=np.int64))
    return (np.sign(product) * (np.abs(product) >> DECAY_BITS)).astype(np.int32)


def integrate_current(u: np.ndarray, du, activation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u' = decay(u, du + 1) + (a << 6), wrapped to 24 bits. Returns (u', wrapped mask).

    The sum is an int32 in-place add in Lava, so it wraps at 32 bits first. The 24-bit wrap
    is Lava's two-sided test; its quirk is that exactly -2**23 becomes +2**23.
    """
    aligned = np.left_shift(activation.astype(np.int64), ACTIVATION_SHIFT)
    summed = (decay(u, np.asarray(du) + CURRENT_DECAY_OFFSET).astype(np.int64) + aligned)
    summed = summed.astype(np.int32).astype(np.int64)  # int32 accumulator
    over = summed > STATE_LIMIT
    under = summed <= -STATE_LIMIT
    wrapped = np.where(over, summed - 2 * STATE_LIMIT, np.where(under, summed + 2 * STATE_LIMIT, summed))
    return wrapped.astype(np.int32), over | under


def integrate_voltage(v: np.ndarray, dv, u: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v' = clip(decay(v, dv) + u' + bias, -(2**23 - 1), 2**23 - 1). Returns (v', saturated mask).

    It adds the *new* current u'; the bias is not shifted by ACTIVATION_SHIFT.
    """
    summed = (decay(v, np.asarray(dv) + VOLTAGE_DECAY_OFFSET).astype(np.int64)
              + u.astype(np.int64) + bias)
    limit = STATE_LIMIT - 1
    saturated = (summed > limit) | (summed < -limit)
    return np.clip(summed, -limit, limit).astype(np.int32), saturated


def fire(v: np.ndarray, vth) -> np.ndarray:
    """Spike where v' > vth << 6 (strictly)."""
    return v > np.left_shift(np.asarray(vth, dtype=np.int64), THRESHOLD_SHIFT)


def effective_bias(bias_mant: np.ndarray, bias_exp) -> np.ndarray:
    """bias = bias_mant << bias_exp, or an arithmetic right shift for a negative exponent."""
    return shift(np.asarray(bias_mant, dtype=np.int64), bias_exp)


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
    """
    if num_message_bits > 0:
        payload = spikes.astype(np.int64)
    else:
        payload = (spikes != 0).astype(np.int64)
    accumulated = payload @ weights.astype(np.int64).T
    return shift(accumulated, weight_exp)
