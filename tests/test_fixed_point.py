"""The Loihi 2 / Lava 0.10.0 fixed-point rules, one by one, as the spec states them (in loihi2's widths), and
the widths themselves: what they refuse."""

import dataclasses

import numpy as np
import pytest

from snn_deploy.targets import bitsim, description
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bitsim import LifState
from snn_deploy.targets.bundle import LifPopulation

LAVA = description.load("loihi2").widths


def test_decay_rounds_toward_zero_for_both_signs():
    x = np.array([[4097, -4097, 1, -1]], np.int32)
    # (x * 4095) >> 12 with the sign taken off first
    np.testing.assert_array_equal(fx.decay(LAVA, x, 1), [[4095, -4095, 0, 0]])


def test_current_decays_even_with_du_zero_but_voltage_does_not_with_dv_zero():
    u, _ = fx.integrate_current(LAVA, np.array([[4096]], np.int32), 0, np.zeros((1, 1), np.int64))
    assert u[0, 0] == 4095
    v, _ = fx.integrate_voltage(LAVA, np.array([[4096]], np.int32), 0, np.zeros((1, 1), np.int32), 0)
    assert v[0, 0] == 4096


def test_activation_is_left_shifted_by_six():
    u, wrapped = fx.integrate_current(LAVA, np.zeros((1, 1), np.int32), 4095, np.array([[10]]))
    assert u[0, 0] == 640 and wrapped is None


def test_current_wraps_at_24_bits_with_lavas_quirk_at_minus_two_to_the_23():
    limit = 1 << 23
    # u = 2**23 - 64 plus one activation of 2 (<< 6 = 128) overshoots by 64 and wraps.
    u, wrapped = fx.integrate_current(LAVA, np.array([[limit - 64]], np.int32), -1, np.array([[2]]))
    assert u[0, 0] == limit + 64 - 2 * limit and wrapped.all()
    u, wrapped = fx.integrate_current(LAVA, np.array([[-limit + 64]], np.int32), -1, np.array([[-1]]))
    assert u[0, 0] == limit and wrapped.all()  # exactly -2**23 becomes +2**23


def test_voltage_saturates_one_below_two_to_the_23():
    limit = (1 << 23) - 1
    v, saturated = fx.integrate_voltage(LAVA, np.array([[limit]], np.int32), 0, np.array([[100]], np.int32), 0)
    assert v[0, 0] == limit and saturated.all()
    v, saturated = fx.integrate_voltage(LAVA, np.array([[-limit]], np.int32), 0, np.array([[-100]], np.int32), 0)
    assert v[0, 0] == -limit and saturated.all()


def test_spike_is_strictly_above_vth_shifted_by_six():
    assert not fx.fire(LAVA, np.array([25 << 6]), 25)[0]
    assert fx.fire(LAVA, np.array([(25 << 6) + 1]), 25)[0]


def test_bias_exponent_shifts_both_ways_arithmetically():
    np.testing.assert_array_equal(fx.effective_bias(np.array([-5, 5]), 2), [-20, 20])
    np.testing.assert_array_equal(fx.effective_bias(np.array([-5, 5]), -1), [-3, 2])


def test_stored_weights_follow_lavas_clip_and_truncate():
    mixed = np.array([-300, -255, -3, 3, 255, 300])
    np.testing.assert_array_equal(fx.stored_weights(LAVA, mixed, 8), [-256, -256, -4, 2, 254, 254])
    excitatory = np.array([0, 3, 255, 300])
    np.testing.assert_array_equal(fx.stored_weights(LAVA, excitatory, 8), [0, 3, 255, 255])
    inhibitory = np.array([0, -3, -255, -300])
    np.testing.assert_array_equal(fx.stored_weights(LAVA, inhibitory, 8), [0, -3, -255, -255])
    np.testing.assert_array_equal(fx.stored_weights(LAVA, np.array([7.9, 12.0]), 6), [4, 12])  # int() truncates first
    np.testing.assert_array_equal(fx.stored_weights(LAVA, np.array([-7.9, 12.0]), 6), [-8, 8])  # mixed: n = 3


def test_dense_shift_applies_to_the_sum_not_to_each_weight():
    weights = np.array([[1, 1, 1]])
    spikes = np.array([[1, 1, 1]])
    assert fx.dense_activation(weights, -1, spikes)[0, 0] == 1  # (1+1+1) >> 1, not 0+0+0
    assert fx.dense_activation(weights, 2, spikes)[0, 0] == 12
    graded = np.array([[3, 0, 2]])
    assert fx.dense_activation(weights, 0, graded, num_message_bits=8)[0, 0] == 5
    assert fx.dense_activation(weights, 0, graded, num_message_bits=0)[0, 0] == 2


def test_sparse_and_dense_accumulation_agree_exactly():
    rng = np.random.default_rng(7)
    weights = fx.stored_weights(LAVA, rng.integers(-300, 300, (40, 200)), 8)
    for density in (0.001, 0.01, 0.05, 0.5):
        for graded in (False, True):
            payload = (rng.random((64, 200)) < density) * (rng.integers(1, 1 << 20, (64, 200)) if graded else 1)
            bits = 24 if graded else 0
            expected = payload.astype(np.int64) @ weights.astype(np.int64).T
            for exp in (-3, 0, 2):
                want = expected << exp if exp >= 0 else expected >> -exp
                got = fx.dense_activation(weights, exp, payload, num_message_bits=bits)
                np.testing.assert_array_equal(got, want)


def test_subtract_reset_lowers_v_by_the_shifted_threshold_and_fire_once_still_holds_zero():
    # du = 4095: u = 4 << 6 = 256 every step; dv = 0: no leak; the threshold is 10 << 6 = 640.
    def run(reset: str, fire_once: bool = False) -> list[tuple[bool, int]]:
        pop = LifPopulation("lif", 1, du=4095, dv=0, vth=10, bias_mant=0, fire_once=fire_once, reset=reset)
        state, trace = LifState.zeros(1, 1), []
        for _ in range(6):
            step = bitsim.lif_step(LAVA, pop, state, np.array([[4]]))
            state = step.state
            trace.append((bool(step.spikes[0, 0]), int(state.v[0, 0])))
        return trace

    # 768 > 640 fires and keeps 128; 640 is not above 640; 896 fires and keeps 256.
    assert run("subtract") == [(False, 256), (False, 512), (True, 128), (False, 384), (False, 640), (True, 256)]
    assert run("zero") == [(False, 256), (False, 512), (True, 0), (False, 256), (False, 512), (True, 0)]
    assert run("subtract", fire_once=True) == [(False, 256), (False, 512), (True, 128), (False, 0), (False, 0),
                                               (False, 0)]


def test_reset_stage_touches_only_spiking_neurons():
    v = np.array([[700.0, 700.0, 400.0]])
    spikes = np.array([[True, False, True]])
    np.testing.assert_array_equal(fx.reset(LAVA, v, spikes, [10, 10, 5], fx.RESET_SUBTRACT), [[60, 700, 80]])
    np.testing.assert_array_equal(fx.reset(LAVA, v, spikes, [10, 10, 5], fx.RESET_ZERO), [[0, 700, 0]])
