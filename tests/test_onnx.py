"""ONNX export of the discrete float reference: onnxruntime reproduces torch and numpy exactly."""

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from snn_deploy.deploy.references import discrete as reference
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.stimulus import input_times, to_steps
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.stages.export import to_nir
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.references.onnx import export_onnx, output_names, reference_module
from snn_deploy.deploy.stages.discretize import snapped_dt
from snn_deploy.models.data import load as load_data
from snn_deploy.targets import description, schedule

from helpers import random_ttfs_model

DECAY_BITS = description.load("loihi2").widths.decay_bits

# A coarse step keeps the unrolled graph short (T = 32 for the 4 tau horizon) while every layer
# still spikes; export_onnx traces with a batch of 2, so 9 samples test the dynamic batch axis.
STEPS_PER_TAU = 8
SAMPLES = 9

# torch 2.13 deprecates the TorchScript exporter that export_onnx uses on purpose (see its module),
# and the exporter warns about its own internals.
pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
              pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning:torch")]


def _network(fire_once: bool, reset: str):
    return from_graph(to_nir(random_ttfs_model()), {"fire_once": fire_once, "reset": reset})


def _inputs(net, dt, num_steps):
    features = load_data("yinyang:test").features[:SAMPLES]
    return to_steps(input_times(net.semantics.encoding, features), dt, num_steps)


@pytest.mark.parametrize("fire_once, reset", [(True, "zero"), (True, "subtract"), (False, "zero")])
def test_onnxruntime_matches_torch_and_numpy_reference(tmp_path, fire_once, reset):
    net = _network(fire_once, reset)
    dt = snapped_dt(net, STEPS_PER_TAU, DECAY_BITS)
    num_steps = math.ceil(net.semantics.horizon / dt)
    path = tmp_path / "reference.onnx"
    export_onnx(net, discretize(net, dt), num_steps, path)

    inputs = _inputs(net, dt, num_steps)
    raster = inputs.raster().astype(np.float64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ran = dict(zip(output_names(net), session.run(None, {"input_spikes": raster})))
    with torch.no_grad():
        torch_out = dict(zip(output_names(net), (t.numpy() for t in reference_module(discretize(net, dt), num_steps)(
            torch.from_numpy(raster)))))
    spikes, _, traces = schedule.run(reference.chip_network(discretize(net, dt)), reference.FLOAT_ARITHMETIC, inputs,
                                     num_steps, record_state=True)

    hidden = net.layers[0].name
    assert ran["spikes"].shape == (SAMPLES, num_steps, net.layers[-1].size)
    assert ran["spikes"].any() and ran[f"spikes_{hidden}"].any(), "a test without spikes proves nothing"
    for name in output_names(net):
        if name != "v":
            np.testing.assert_array_equal(ran[name], torch_out[name])
    np.testing.assert_array_equal(ran["spikes"], spikes[net.output].raster())
    np.testing.assert_array_equal(ran[f"spikes_{hidden}"], spikes[hidden].raster())
    np.testing.assert_allclose(ran["v"], traces[net.output]["v"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ran["v"], torch_out["v"], rtol=0, atol=1e-6)


def test_the_number_of_steps_is_fixed_and_recorded(tmp_path):
    net = _network(True, "zero")
    dt, num_steps = snapped_dt(net, STEPS_PER_TAU, DECAY_BITS), 12
    path = tmp_path / "short.onnx"
    export_onnx(net, discretize(net, dt), num_steps, path)
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata["snn_deploy.num_steps"] == "12" and float(metadata["snn_deploy.dt"]) == dt
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    longer = np.zeros((3, num_steps + 5, net.input_size))
    # The trap this guards against: a graph that quietly returns only the traced number of steps.
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"input_spikes": longer})


def test_bad_step_count_writes_nothing(tmp_path):
    net = _network(True, "zero")
    path = tmp_path / "bad.onnx"
    with pytest.raises(DeployError, match="steps"):
        export_onnx(net, discretize(net, 0.1), 0, path)
    assert list(tmp_path.iterdir()) == []
