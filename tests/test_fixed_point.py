"""The Loihi 2 / Lava 0.10.0 fixed-point rules, one by one, as the spec states them (in loihi2's widths), and
the widths themselves: what they refuse."""

import dataclasses
import re

import numpy as np
import pytest

from snn_deploy.targets import bitsim, description
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bitsim import LifState
from snn_deploy.targets.bundle import (Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation, Placement,
                                       Timing)
from snn_deploy.targets.record import SpikeEvents

from helpers import edited_target

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


# --- the widths ---------------------------------------------------------------------------------

# loihi1.toml with every width of the arithmetic changed: 12-bit state (u wraps past 2048, v saturates at
# 2047), decays in 16ths with the offsets swapped, vth << 2, input << 3, 5-bit bias mantissa.
OTHER_WIDTHS = [(r"^state_bits = 24", "state_bits = 12"), (r"^decay_bits = 12", "decay_bits = 4"),
                (r"^current_decay_offset = 1", "current_decay_offset = 0"),
                (r"^voltage_decay_offset = 0", "voltage_decay_offset = 1"),
                (r"^threshold_bits = 17", "threshold_bits = 8"), (r"^threshold_shift = 6", "threshold_shift = 2"),
                (r"^activation_shift = 6", "activation_shift = 3"),
                (r"^bias_mantissa_bits = 13", "bias_mantissa_bits = 5")]


def _three_neurons(target) -> Bundle:
    """du = 4, dv = 3; weights 5, 100, 0 at weight_exp 1 from an input that spikes every step; the third
    neuron has bias -15 << 7 = -1920."""
    network = IntNetwork(InputLayer("input", 1),
                         (LifPopulation("lif", 3, du=4, dv=3, vth=[50, 255, 255], bias_mant=[0, 0, -15], bias_exp=7),),
                         (DenseConnection("dense", "input", "lif", np.array([[5], [100], [0]]), weight_exp=1),), "lif")
    return Bundle(target=target.name, network=network, placement=Placement(target.name, ()), timing=Timing(1, 5),
                  widths=target.widths, backends=target.backends)


def test_a_target_with_other_widths_runs_in_bitsim_in_those_widths_exactly_as_by_hand(tmp_path):
    target = description.load(str(edited_target(tmp_path, OTHER_WIDTHS)))
    record = bitsim.run(_three_neurons(target), SpikeEvents.from_raster(np.ones((1, 5, 1), bool)), record_state=True)
    # By hand: u decays by (16 - 4) / 16 and v by (16 - (3 + 1)) / 16, both 3/4, toward zero; input arrives one
    # step late as (w << 1) << 3: 80 and 1600. Neuron 0: v reaches 200 = 50 << 2 on step 3 (not above it),
    # 150 + 185 = 335 on step 4 (spike). Neuron 1: 1600 > 255 << 2 fires on step 2; u = 1200 + 1600 = 2800
    # wraps to 2800 - 4096 on step 3 and 471 + 1600 = 2071 to -2025 on step 5, where v = -258 - 2025
    # saturates at -2047. Neuron 2: v = -1920, then -1440 - 1920 saturates at -2047 on every later step.
    np.testing.assert_array_equal(record.traces["lif"]["u"][0].T, [[0, 80, 140, 185, 218],
                                                                   [0, 1600, -1296, 628, -2025],
                                                                   [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(record.traces["lif"]["v"][0].T, [[0, 80, 200, 0, 0],
                                                                   [0, 0, -1296, -344, -2047],
                                                                   [-1920, -2047, -2047, -2047, -2047]])
    np.testing.assert_array_equal(record.spikes["lif"].raster()[0].T, [[0, 0, 0, 1, 1], [0, 1, 0, 0, 0],
                                                                        [0, 0, 0, 0, 0]])
    assert record.counters["lif"] == {"current_wraps": 2, "voltage_saturations": 5}
    # The same integers in Loihi's widths: only the data differs, and so does the run (640 = 10 << 6).
    loihi = bitsim.run(_three_neurons(description.load("loihi1")), SpikeEvents.from_raster(np.ones((1, 5, 1), bool)),
                       record_state=True)
    assert loihi.traces["lif"]["u"][0, 1, 0] == 640


@pytest.mark.parametrize("change, message", [
    ({"state_bits": 33}, "state_bits 33 exceeds the 32-bit register"),
    ({"decay_bits": 30}, "would not be exact in float64"),
    ({"current_decay_offset": 4096}, "current_decay_offset 4096 is not below 2**decay_bits = 4096"),
    ({"weight_exp_min": 8}, "weight_exp_min 8 is above weight_exp_max 7"),
    ({"threshold_shift": -1}, "threshold_shift must not be negative"),
    ({"weight_bits": 0}, "weight_bits must be at least 1"),
    ({"state_bits": 24.0}, "state_bits must be an integer"),
    ({"graded_spikes": 1}, "graded_spikes must be a boolean"),
])
def test_widths_the_stages_cannot_compute_exactly_are_refused_by_name(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(LAVA, **change)
