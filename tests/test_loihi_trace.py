"""bitsim reproduces a voltage trace recorded on a real Loihi 2 chip, step for step.

The trace and the integers come from the NIR paper (``../shared/reference/README.md``): one LIF
neuron with du = 4095, dv = 163, vth = 25, fed by a correction synapse of weight 10.
"""

import numpy as np

from snn_deploy.targets import bitsim
from snn_deploy.targets.bundle import (Bundle, DenseConnection, InputLayer, IntNetwork,
                                       LifPopulation, Placement, Timing)
from snn_deploy.targets.record import SpikeEvents

from helpers import target_fields

# On the step a neuron fires the chip reports this placeholder in v instead of the reset value 0.
CHIP_SPIKE_STEP_VOLTAGE = 128


def _paper_lif_bundle(num_steps: int) -> Bundle:
    network = IntNetwork(
        input=InputLayer("input", 1),
        populations=(LifPopulation("lif", 1, du=4095, dv=163, vth=25, bias_mant=0),),
        connections=(DenseConnection("correction", "input", "lif", np.array([[10]])),),
        output="lif")
    return Bundle(**target_fields("loihi2"), network=network, placement=Placement("loihi2", ()),
                  timing=Timing(dt=1.0, num_steps=num_steps))


def _run_trace(csv_path):
    table = np.loadtxt(csv_path, delimiter=",")
    input_spikes = table[:, 0].astype(bool)
    bundle = _paper_lif_bundle(len(table))
    record = bitsim.run(bundle, SpikeEvents.from_raster(input_spikes[None, :, None]), record_state=True)
    v = record.traces["lif"]["v"][0, :, 0]
    spikes = record.spikes["lif"].raster()[0, :, 0]
    return table, v, spikes


def test_reproduces_loihi2_hardware_trace(reference_dir):
    table, v, spikes = _run_trace(reference_dir / "nir-paper-lif" / "lif_lava_loihi_fixed.csv")
    chip_v = table[:, 1].astype(np.int64)
    chip_spikes = table[:, 2].astype(bool)

    np.testing.assert_array_equal(spikes, chip_spikes)
    assert list(np.flatnonzero(chip_spikes)) == [461, 511, 711, 761]
    assert table[:, 0].sum() == 34

    # Every voltage is equal, except on the spike steps, where the chip shows its placeholder
    # and the bit-accurate model (like Lava's CPU fixed_pt model) shows the reset value 0.
    np.testing.assert_array_equal(v[~chip_spikes], chip_v[~chip_spikes])
    assert np.all(chip_v[chip_spikes] == CHIP_SPIKE_STEP_VOLTAGE)
    assert np.all(v[chip_spikes] == 0)
    assert bitsim.run(_paper_lif_bundle(len(table)),
                      SpikeEvents.from_raster(table[None, :, :1].astype(bool))).counters["lif"] == {
        "current_wraps": 0, "voltage_saturations": 0}


def test_reproduces_lava_cpu_fixed_point_trace_exactly(reference_dir):
    table, v, spikes = _run_trace(reference_dir / "nir-paper-lif" / "lif_lava_cpu_fixed.csv")
    np.testing.assert_array_equal(v, table[:, 1].astype(np.int64))
    np.testing.assert_array_equal(spikes, table[:, 2].astype(bool))


def test_first_input_reaches_voltage_one_step_later(reference_dir):
    table, v, _ = _run_trace(reference_dir / "nir-paper-lif" / "lif_lava_loihi_fixed.csv")
    first = int(np.flatnonzero(table[:, 0])[0])
    assert v[first] == 0 and v[first + 1] == 10 << 6
