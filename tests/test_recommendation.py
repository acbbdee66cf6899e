"""compile's recommendation: when the calibrated bundle decides its calibration data below verify's default
agreement tolerance, compile measures --split-weights on the same data and says so, with the figures; the
bundle written stays the one asked for."""

import dataclasses
import html
import json

import nir
import numpy as np
import pytest

from snn_deploy.deploy import compile_network
from snn_deploy.deploy.artifacts.tolerances import Tolerances
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.stages.place import readable_bytes
from snn_deploy.deploy.stages.quantize import SPLIT_LOW_PART
from snn_deploy.deploy.stages.stimulus import load_stimulus
from snn_deploy.deploy.stages.verify import compare_spikes
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description

from helpers import discrete_time_semantics
from test_calibrate import biased_graph

CALIBRATION, SAMPLES = "random:rate=0.1,seed=1", 40
SEMANTICS = discrete_time_semantics("s", 0.02)
CLI_SEMANTICS = ["--dt", "1e-4", "--time-unit", "s", "--multi-spike", "--reset", "zero", "--decoding", "spike_count",
                 "--spike", "pulse", "--integration", "euler", "--duration", "0.02"]


def close_outputs_graph(seed: int = 1, spread: float = 0.01, gain: float = 10.0):
    """Input(20) -> Linear -> LIF(24) -> Linear -> LIF(4) whose four output rows differ by ``spread`` of one
    shared row: their spike counts part by a few spikes, which 8-bit weights move (measured: 87.5% of the 40
    calibration samples decide like the float model after calibration) and split weights do not (100%)."""
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))

    hidden = gain * rng.normal(0.3, 0.4, (24, 20))
    out = gain * (rng.normal(0.15, 0.3, 24)[None, :] + spread * rng.normal(0, 1, (4, 24)))
    return nir.NIRGraph.from_list(nir.Input(np.array([20])), nir.Linear(weight=hidden), lif(24),
                                  nir.Linear(weight=out), lif(4), nir.Output(np.array([4])))


LOIHI2 = description.load("loihi2")


def compiled(graph, **options):
    net = from_graph(graph, SEMANTICS)
    return net, compile_network(net, LOIHI2, dt=1e-4, calibrate=CALIBRATION, calibrate_samples=SAMPLES, **options)


def agreement(net, bundle, inputs) -> float:
    decisions = compare_spikes(net, bundle, inputs).decisions
    return float(np.mean(decisions["chip"] == decisions["discrete"]))


@pytest.fixture(scope="module")
def below():
    """The close-outputs network, compiled with defaults and with --split-weights, on the same calibration data."""
    net, plain = compiled(close_outputs_graph())
    _, split = compiled(close_outputs_graph(), split_weights=True)
    return net, plain, split


def test_below_tolerance_split_weights_are_measured_on_the_same_samples(below):
    net, plain, split = below
    r = plain.report.recommendation
    assert r is not None and r.option == "--split-weights"
    inputs = load_stimulus(CALIBRATION, SAMPLES, plain).inputs
    assert r.data == plain.report.calibration.data and r.samples == SAMPLES
    assert r.tolerance == Tolerances().min_agreement
    # The figures are the two bundles' own agreement on the calibration samples, measured directly.
    assert r.agreement_without == agreement(net, plain, inputs) < r.tolerance
    assert r.agreement_with == agreement(net, split, inputs) > r.agreement_without
    assert (r.synapses_without, r.memory_bytes_without) == (sum(c.synapses for c in plain.placement.cores),
                                                            sum(c.memory_bytes for c in plain.placement.cores))
    assert (r.synapses_with, r.memory_bytes_with) == (sum(c.synapses for c in split.placement.cores),
                                                      sum(c.memory_bytes for c in split.placement.cores))
    assert r.synapses_with > r.synapses_without and r.memory_bytes_with > r.memory_bytes_without


def test_the_bundle_written_is_the_one_asked_for(below):
    _, plain, _ = below
    assert not plain.report.split_weights
    _, again = compiled(close_outputs_graph())
    assert again.checksum == plain.checksum  # deterministic, recommendation included
    assert not any(conn.name.endswith(SPLIT_LOW_PART) for conn in plain.network.connections)


def test_no_recommendation_at_or_above_tolerance_with_split_weights_or_without_data(below):
    _, _, split = below
    assert split.report.recommendation is None  # --split-weights given: nothing to recommend
    _, fine = compiled(biased_graph())
    record = fine.report.calibration
    kept = record.decision_agreement_after if record.applied else record.decision_agreement_before
    assert kept >= Tolerances().min_agreement and fine.report.recommendation is None
    # No calibration data (an imported graph names no data set, no --calibrate): nothing measured, nothing said.
    uncalibrated = compile_network(from_graph(close_outputs_graph(), SEMANTICS), LOIHI2, dt=1e-4)
    assert uncalibrated.report.calibration is None and uncalibrated.report.recommendation is None


def test_the_recommendation_is_saved_with_the_bundle(below, tmp_path):
    _, plain, split = below
    bundle_io.save(plain, tmp_path / "b.bundle")
    loaded = bundle_io.load(tmp_path / "b.bundle")
    assert loaded.report.recommendation == plain.report.recommendation
    with np.load(tmp_path / "b.bundle") as data:
        manifest = json.loads(str(data["manifest"]))
    assert manifest["report"]["recommendation"]["agreement_with"] == plain.report.recommendation.agreement_with
    bundle_io.save(split, tmp_path / "s.bundle")  # none: left out of the manifest, as older bundles have it
    with np.load(tmp_path / "s.bundle") as data:
        assert "recommendation" not in json.loads(str(data["manifest"]))["report"]
    assert bundle_io.load(tmp_path / "s.bundle").report.recommendation is None


def test_compile_prints_the_recommendation_as_one_line(below, tmp_path, capsys):
    _, plain, _ = below
    graph = tmp_path / "g.nir"
    nir.write(graph, close_outputs_graph())
    assert main(["compile", str(graph), "-o", str(tmp_path / "b.bundle"), *CLI_SEMANTICS, "--calibrate", CALIBRATION,
                 "--calibrate-samples", str(SAMPLES)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("compile: ")]
    r = plain.report.recommendation
    assert lines == [
        f"compile: {r.agreement_without:.1%} of {SAMPLES} calibration samples decide like the float model (below the "
        f"{100 * Tolerances().min_agreement:g}% tolerance); --split-weights measured {r.agreement_with:.1%} on the "
        f"same samples, at {r.memory_bytes_with / r.memory_bytes_without:.1f}x the synapse memory "
        f"({readable_bytes(r.memory_bytes_with)} for {r.synapses_with:,} synapses, against "
        f"{readable_bytes(r.memory_bytes_without)} for "
        f"{r.synapses_without:,}); the bundle written is without it"]
    assert bundle_io.load(tmp_path / "b.bundle").report.recommendation == r
    assert main(["compile", str(graph), "-o", str(tmp_path / "s.bundle"), *CLI_SEMANTICS, "--calibrate", CALIBRATION,
                 "--calibrate-samples", str(SAMPLES), "--split-weights"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("compile: ")]


def test_verify_reports_the_recommendation_in_its_json_and_html(below, tmp_path):
    from snn_deploy.deploy.reporting.text import format_recommendation

    _, plain, _ = below
    graph, bundle, verdict, report = (tmp_path / name for name in ("g.nir", "b.bundle", "v.json", "r.html"))
    nir.write(graph, close_outputs_graph())
    bundle_io.save(plain, bundle)
    assert main(["verify", str(graph), str(bundle), "--data", "random:rate=0.1,seed=0", "--samples", "20",
                 "--json", str(verdict), "--report", str(report), *CLI_SEMANTICS[2:]]) in (0, 1)
    recorded = json.loads(verdict.read_text())["recommendation"]
    assert recorded == dataclasses.asdict(plain.report.recommendation)
    assert html.escape(format_recommendation(plain.report.recommendation)[0]) in report.read_text()
