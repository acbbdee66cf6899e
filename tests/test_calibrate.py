"""compile --calibrate: deterministic, recorded in the bundle, never worse than the default on its own data,
bad calibration data refused (exit 2, nothing written)."""

import dataclasses
import json
import math

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network, load_graph
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.calibrate import inputs_digest
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.stages.stimulus import load_stimulus
from snn_deploy.deploy.stages.verify import compare_spikes
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description

from helpers import discrete_time_semantics, snapshot

CALIBRATION = "random:rate=0.1,seed=1"
SAMPLES = 40


def biased_graph(seed: int = 3):
    """Input(10) -> Affine (mixed weights, a small bias: a second, weaker block) -> LIF(8) -> Affine -> LIF(4)."""
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))

    return nir.NIRGraph.from_list(
        nir.Input(np.array([10])),
        nir.Affine(weight=rng.normal(0.3, 0.5, (8, 10)), bias=rng.uniform(0.005, 0.03, 8)), lif(8),
        nir.Affine(weight=rng.normal(0.2, 0.6, (4, 8)), bias=rng.uniform(0.005, 0.03, 4)), lif(4),
        nir.Output(np.array([4])))


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibrate") / "g.nir"
    nir.write(path, biased_graph())
    return path


SEMANTICS = discrete_time_semantics("s", 0.02)


def compiled(graph_file, **options):
    net = load_graph(graph_file, SEMANTICS)
    return net, compile_network(net, description.load("loihi2"), dt=1e-4, **options)


@pytest.fixture(scope="module")
def default_and_calibrated(graph_file):
    net, default = compiled(graph_file)
    _, calibrated = compiled(graph_file, calibrate=CALIBRATION, calibrate_samples=SAMPLES)
    return net, default, calibrated


def test_calibration_is_deterministic(graph_file, default_and_calibrated):
    _, _, calibrated = default_and_calibrated
    _, again = compiled(graph_file, calibrate=CALIBRATION, calibrate_samples=SAMPLES)
    assert again.checksum == calibrated.checksum


def test_the_bundle_records_its_calibration_data(default_and_calibrated, tmp_path):
    _, default, calibrated = default_and_calibrated
    record = calibrated.report.calibration
    stimulus = load_stimulus(CALIBRATION, SAMPLES, default)
    assert record.data == stimulus.selection
    assert record.samples == SAMPLES
    assert record.inputs_sha256 == inputs_digest(stimulus.inputs)
    bundle_io.save(calibrated, tmp_path / "b.bundle")
    assert bundle_io.load(tmp_path / "b.bundle").report.calibration == record
    assert default.report.calibration is None


def test_every_layer_has_its_before_and_after_row(default_and_calibrated):
    net, _, calibrated = default_and_calibrated
    layers = calibrated.report.calibration.layers
    assert list(layers) == [layer.name for layer in net.layers]
    for row in layers.values():
        values = [row.membrane_error_before, row.membrane_error_after, row.spike_agreement_before,
                  row.spike_agreement_after]
        assert all(math.isfinite(v) for v in values)
        assert 0 <= row.spike_agreement_before <= 1 and 0 <= row.spike_agreement_after <= 1
        # Rounding descends the membrane error from round-to-nearest, then the bias takes its least-squares part.
        assert row.membrane_error_after <= row.membrane_error_before


def test_calibration_is_never_worse_than_the_default_on_its_own_data(default_and_calibrated):
    net, default, calibrated = default_and_calibrated
    inputs = load_stimulus(CALIBRATION, SAMPLES, default).inputs

    def agreement(bundle):
        decisions = compare_spikes(net, bundle, inputs).decisions
        return np.mean(decisions["chip"] == decisions["discrete"])

    record = calibrated.report.calibration
    assert agreement(calibrated) >= agreement(default)
    assert agreement(calibrated) == (record.decision_agreement_after if record.applied
                                     else record.decision_agreement_before)
    assert agreement(default) == record.decision_agreement_before


def test_calibration_data_that_do_not_fit_the_graph_exit_2_and_write_nothing(graph_file, tmp_path, capsys):
    data = tmp_path / "wrong.npz"
    np.savez(data, spikes=np.zeros((3, 200, 7), bool))  # 7 channels; the graph takes 10
    out = tmp_path / "out.bundle"
    before = snapshot(tmp_path)
    code = main(["compile", str(graph_file), "-o", str(out), "--dt", "1e-4", "--time-unit", "s", "--multi-spike",
                 "--reset", "zero", "--decoding", "spike_count", "--spike", "pulse", "--integration", "euler",
                 "--duration", "0.02", "--calibrate", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before


def test_the_verdict_json_and_the_html_report_carry_the_calibration(graph_file, default_and_calibrated, tmp_path):
    _, _, calibrated = default_and_calibrated
    bundle_io.save(calibrated, tmp_path / "b.bundle")
    assert main(["verify", str(graph_file), str(tmp_path / "b.bundle"), "--data", "random:rate=0.1,seed=0",
                 "--samples", "20", "--json", str(tmp_path / "v.json"), "--report", str(tmp_path / "r.html"),
                 "-q"]) in (0, 1)
    record = json.loads((tmp_path / "v.json").read_text())["calibration"]
    assert record == dataclasses.asdict(calibrated.report.calibration)
    page = (tmp_path / "r.html").read_text()
    section = page[page.index("Calibration at compile time"):]
    assert calibrated.report.calibration.inputs_sha256 in section
    for name, row in calibrated.report.calibration.layers.items():
        assert f"{row.membrane_error_before:.3g} -&gt; {row.membrane_error_after:.3g}" in section, name


def readout_graph(seed: int = 4):
    """Input(10) -> Linear -> LIF(8) -> Linear -> LI(3): the hidden layer calibrates, the readout keeps its bound."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Input(np.array([10])), nir.Linear(weight=rng.normal(0.3, 0.5, (8, 10))),
        nir.LIF(tau=np.full(8, 2e-3), r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.ones(8)),
        nir.Linear(weight=rng.normal(0.1, 0.6, (3, 8))), nir.LI(tau=np.full(3, 4e-3), r=np.ones(3), v_leak=np.zeros(3)),
        nir.Output(np.array([3])))


def test_a_membrane_decoded_network_is_calibrated_and_judged_by_its_membrane():
    net = from_graph(readout_graph(), {**SEMANTICS, "decoding": "max_membrane"})
    bundle = compile_network(net, description.load("loihi2"), dt=1e-4, calibrate=CALIBRATION, calibrate_samples=SAMPLES)
    record = bundle.report.calibration
    readout = net.output
    assert [layer for layer in record.layers] == [layer.name for layer in net.layers if layer.name != readout]
    default = compile_network(net, description.load("loihi2"), dt=1e-4, calibrate=None)
    decisions = compare_spikes(net, default, load_stimulus(CALIBRATION, SAMPLES, default).inputs).decisions
    assert record.decision_agreement_before == np.mean(decisions["chip"] == decisions["discrete"])
