"""export -> NIR -> compile -> bundle -> bitsim -> verify, on a small untrained model."""

import json
import re

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, export, load_graph, to_nir, verify
from snn_deploy.deploy.artifacts.semantics import INTEGRATIONS
from snn_deploy.deploy.errors import DeployError
from snn_deploy.targets import bitsim, description
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bundle import BundleError

from helpers import random_ttfs_model


@pytest.fixture(scope="module")
def graph_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "model.nir"
    export(random_ttfs_model(), path)
    return path


@pytest.fixture(scope="module")
def compiled(graph_path):
    return compile_network(load_graph(graph_path), description.load("loihi2"))


def test_export_passes_nirs_type_check_with_vector_parameters(graph_path):
    graph = nir.read(graph_path)  # type_check=True
    assert sorted(graph.nodes) == ["fc1", "fc2", "input", "lif1", "lif2", "output"]
    assert ("input", "fc1") in graph.edges and ("lif2", "output") in graph.edges
    lif = graph.nodes["lif1"]
    assert isinstance(lif, nir.CubaLIF)
    for key in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
        assert np.asarray(getattr(lif, key)).shape == (20,), key
    semantics = json.loads(graph.metadata["snn_deploy"])
    assert semantics["fire_once"] is True and semantics["decoding"] == "first_spike"
    assert semantics["time_unit"] == "tau" and semantics["reset"] == "zero"
    assert semantics["encoding"]["t_early"] == 0.15 and semantics["encoding"]["bias_times"] == [0.9]


def test_bundle_is_integer_self_describing_and_round_trips(compiled, tmp_path):
    path = tmp_path / "m.bundle"
    bundle_io.save(compiled, path)
    loaded = bundle_io.load(path)
    assert loaded.checksum == compiled.checksum
    assert loaded.format_version == bundle_io.FORMAT_VERSION
    assert loaded.source.nodes["lif1"] == {"neuron": "lif1", "projections": [{"source": "input", "synapses": ["fc1"]}]}
    for conn in loaded.network.connections:
        assert conn.weights.dtype == np.int32
        np.testing.assert_array_equal(fx.stored_weights(loaded.widths, conn.weights, conn.num_weight_bits),
                                      conn.weights)
    for pop in loaded.network.populations:
        assert 1 <= pop.vth.max() <= loaded.widths.threshold_max
        assert pop.fire_once


def test_corrupt_bundle_is_refused(compiled, tmp_path):
    path = tmp_path / "m.bundle"
    bundle_io.save(compiled, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        bundle_io.load(path)
    (tmp_path / "junk.bundle").write_bytes(b"not a bundle")
    with pytest.raises(BundleError, match="not a readable"):
        bundle_io.load(tmp_path / "junk.bundle")


def test_quantized_weights_are_close_to_the_float_gain(compiled):
    for name, layer in compiled.report.quantization.items():
        assert layer.fraction_clipped == 0
        # Half a step of the even mixed mantissa, relative to each neuron's largest weight.
        assert layer.weight_error_max <= 1 / layer.min_row_mantissa + 1e-12
        assert layer.max_weight_mantissa == 254
        assert layer.u_headroom >= 1 and layer.v_headroom >= 1


def test_verify_on_an_untrained_model_reports_every_part(graph_path, compiled):
    from snn_deploy.models import data

    ds = data.load("yinyang:test")
    verdict = verify(load_graph(graph_path), compiled, ds.features[:64], ds.labels[:64])
    result = verdict.to_dict()
    for key in ("samples", "accuracy", "agreement", "spike_time_error_steps", "passed", "schema_version"):
        assert key in result
    assert set(result["accuracy"]) == {"float", "discrete", "chip"}
    assert set(result["spike_time_error_steps"]) == {"lif1", "lif2"}
    hidden = result["spike_time_error_steps"]["lif1"]
    # Quantization moves a 1/64-tau step grid by at most a few steps on a neuron that fires well.
    assert hidden["count"] > 0 and hidden["median"] <= 2
    assert result["activity"]["synaptic_ops_per_inference"] > 0


def test_bitsim_matches_the_float_discrete_model_when_quantization_is_fine(graph_path):
    """The chip and the float discrete model share the step schedule and differ only in rounding
    (12-bit decays: exp(-1/64) = 0.98450 becomes 4032/4096 = 0.98438; 8-bit weights), which can
    move a threshold crossing across a step boundary but not further."""
    from snn_deploy.deploy.references import discrete as reference
    from snn_deploy.deploy.stages.discretize import discretize
    from snn_deploy.deploy.stages.stimulus import input_times, to_steps
    from snn_deploy.models import data

    net = load_graph(graph_path)
    bundle = compile_network(net, description.load("loihi2"), steps_per_tau=64, snap_decay=False)
    ds = data.load("yinyang:test")
    dt = bundle.timing.dt
    inputs = to_steps(input_times(bundle.encoding, ds.features[:100]), dt, bundle.timing.num_steps)
    chip = bitsim.run(bundle, inputs).spikes["lif1"].first_spike_steps()
    disc = reference.simulate(discretize(net, dt), inputs, bundle.timing.num_steps)["lif1"].first_spike_steps()
    assert np.all((chip < 0) == (disc < 0))
    difference = np.abs(chip - disc)[chip > 0]
    assert np.mean(difference == 0) >= 0.85
    assert np.mean(difference <= 1) >= 0.99


def test_nan_weight_and_negative_tau_are_named(tmp_path):
    model = random_ttfs_model()
    graph = to_nir(model)
    graph.nodes["fc2"].weight[0, 3] = np.nan
    nir.write(tmp_path / "nan.nir", graph)
    with pytest.raises(DeployError, match="fc2: weight contains NaN"):
        load_graph(tmp_path / "nan.nir")
    graph = to_nir(model)
    graph.nodes["lif1"].tau_mem[2] = -0.5
    nir.write(tmp_path / "tau.nir", graph)
    with pytest.raises(DeployError, match="lif1: tau_mem must be > 0, got -0.5"):
        load_graph(tmp_path / "tau.nir")


def test_missing_semantics_are_an_error_listing_options(tmp_path):
    graph = to_nir(random_ttfs_model())
    graph.metadata = {}
    nir.write(tmp_path / "bare.nir", graph)
    with pytest.raises(DeployError, match="does not state.*--reset"):
        load_graph(tmp_path / "bare.nir")
    overrides = {"time_unit": "tau", "fire_once": True, "reset": "zero", "decoding": "first_spike",
                 "horizon": 4.0, "spike": "dirac"}
    listed = re.escape("|".join(INTEGRATIONS))
    with pytest.raises(DeployError, match=rf"does not state integration \(--integration {listed}\)"):
        load_graph(tmp_path / "bare.nir", overrides)
    net = load_graph(tmp_path / "bare.nir", {**overrides, "integration": "exact"})
    assert net.semantics.origin["reset"] == "option"
    assert net.semantics.encoding == {} and net.semantics.origin["encoding"].startswith("absent")


def test_unrepresentable_threshold_names_node_value_and_limit(tmp_path):
    model = random_ttfs_model()
    graph = to_nir(model)
    graph.nodes["lif2"].v_threshold[:] = 1e9
    nir.write(tmp_path / "big.nir", graph)
    with pytest.raises(DeployError, match=r"node lif2: neuron 0: threshold 1e\+09 is too large .* vth at most 131071"):
        compile_network(load_graph(tmp_path / "big.nir"), description.load("loihi2"))


def test_an_encoding_with_a_field_the_coding_does_not_take_is_a_deploy_error():
    from snn_deploy.deploy.stages.stimulus import input_times

    encoding = {"kind": "pixel_latency", "t_early": 0.15, "t_late": 2.0, "bias_times": [0.9], "gamma": 1.0}
    with pytest.raises(DeployError, match="'pixel_latency' has fields it does not take"):
        input_times(encoding, np.zeros((1, 4)))


def test_a_horizon_of_whole_steps_is_that_many_steps_despite_float_rounding():
    from snn_deploy.deploy.stages.discretize import horizon_steps

    for steps in range(1, 400):
        for dt in (1e-4, 0.1, 1e-3, 0.00784, 1.0):
            assert horizon_steps(steps * dt, dt) == steps  # 26 * 1e-4 / 1e-4 == 26.000000000000004
    assert horizon_steps(2.5e-3 + 1e-7, 1e-4) == 26  # a real fraction of a step is a step more
    assert horizon_steps(0.3, 0.1) == 3
