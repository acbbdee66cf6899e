"""verify reads what was compiled from the bundle: its semantics and timing are the one source of the float
model it compares the chip with. An option may restate them; one that contradicts the bundle is refused."""

import json

import pytest

from snn_deploy.deploy import load_graph
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.stimulus import random_spike_trains
from snn_deploy.deploy.stages.verify import compare_spikes, reference_network
from snn_deploy.targets import bundle as bundle_io

BRAILLE = "braille_noDelay_noBias_subtract.nir"
# The semantics the Braille network was trained with (snnTorch: Euler steps of 1e-4 s, subtractive reset).
BRAILLE_SEMANTICS = ["--time-unit", "s", "--multi-spike", "--reset", "subtract", "--decoding", "spike_count",
                     "--duration", "0.03", "--spike", "pulse", "--integration", "euler"]
RANDOM = ["--data", "random:rate=0.05,seed=1", "--samples", "30"]


@pytest.fixture(scope="module")
def braille(reference_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    graph = reference_dir / "nir-paper-graphs" / BRAILLE
    bundle = root / "braille.npz"
    assert main(["compile", str(graph), "--dt", "1e-4", "--split-weights", "-o", str(bundle), "-q",
                 *BRAILLE_SEMANTICS]) == 0
    return graph, bundle


def _json(path):
    return json.loads(path.read_text())


def test_verify_needs_no_semantic_options_and_equals_a_run_that_restates_them(braille, tmp_path, capsys):
    graph, bundle = braille
    bare, restated = tmp_path / "bare.json", tmp_path / "restated.json"
    assert main(["verify", str(graph), str(bundle), *RANDOM, "--min-agreement", "0", "--json", str(bare), "-q"]) == 0
    assert main(["verify", str(graph), str(bundle), *RANDOM, "--min-agreement", "0", "--json", str(restated), "-q",
                 "--dt", "1e-4", *BRAILLE_SEMANTICS]) == 0
    assert _json(bare) == _json(restated)
    assert _json(bare)["agreement"] > 0.9  # with the bundle's own subtractive reset, chip and float agree


@pytest.mark.parametrize("option, message", [
    (["--reset", "zero"], "the bundle was compiled with reset subtract; --reset zero contradicts it"),
    (["--duration", "0.01"], "the bundle was compiled with horizon 0.03; --duration 0.01 contradicts it"),
    (["--decoding", "first_spike"], "compiled with decoding spike_count; --decoding first_spike contradicts it"),
    (["--fire-once"], "the bundle was compiled with fire_once false; --fire-once contradicts it"),
    (["--integration", "exact"], "compiled with integration euler; --integration exact contradicts it"),
    (["--spike", "dirac"], "compiled with spike pulse; --spike dirac contradicts it"),
    (["--time-unit", "tau"], "compiled with time_unit s; --time-unit tau contradicts it"),
    (["--dt", "2e-4"], "the bundle was compiled with dt 0.0001 s; --dt 0.0002 contradicts it"),
])
def test_an_option_that_contradicts_the_bundle_is_bad_input_naming_both_values(braille, tmp_path, capsys, option,
                                                                               message):
    graph, bundle = braille
    out = tmp_path / "v.json"
    assert main(["verify", str(graph), str(bundle), *RANDOM, "--json", str(out), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_the_float_model_takes_the_bundles_semantics_not_the_graphs_metadata(braille):
    """The Braille graph states no semantics at all: only the bundle can supply them."""
    graph, bundle_path = braille
    with pytest.raises(DeployError, match="does not state"):
        load_graph(graph)
    bundle = bundle_io.load(bundle_path)
    net = reference_network(graph, bundle)
    assert (net.semantics.reset, net.semantics.horizon, net.semantics.integration) == ("subtract", 0.03, "euler")


def test_the_api_refuses_a_float_model_loaded_with_other_semantics(braille):
    graph, bundle_path = braille
    bundle = bundle_io.load(bundle_path)
    other = load_graph(graph, {"time_unit": "s", "fire_once": False, "reset": "zero", "decoding": "spike_count",
                               "horizon": 0.03, "spike": "pulse", "integration": "euler"})
    inputs = random_spike_trains(bundle.network.input.size, 2, bundle.timing.num_steps, 0.05, 0)
    with pytest.raises(DeployError, match="the bundle was compiled with reset subtract, the float model has zero"):
        compare_spikes(other, bundle, inputs)


def test_a_bundle_without_recorded_semantics_is_refused(braille):
    import dataclasses

    graph, bundle_path = braille
    bundle = bundle_io.load(bundle_path)
    old = dataclasses.replace(bundle, source=dataclasses.replace(bundle.source, semantics={}))
    with pytest.raises(DeployError, match="records no semantics"):
        reference_network(graph, old)


def test_a_failed_decision_tolerance_names_the_stage_the_flips_come_from(braille, tmp_path, capsys):
    """The split Braille bundle verified at a tolerance it does not meet (agreement 1); its figures then restated as the chip's
    8-bit weights or the time step would leave them: the advice follows the flips, and says nothing where every
    tolerance holds or the bundle already has split weights."""
    import dataclasses

    from snn_deploy.deploy.artifacts.verdict import DecisionFlips
    from snn_deploy.deploy.reporting.text import format_advice

    graph, bundle = braille
    argv = ["verify", str(graph), str(bundle), "--data", "random:rate=0.05,seed=0", "--samples", "40"]
    assert main([*argv, "--min-agreement", "1", "-q"]) == 1
    assert main([*argv, "--json", str(tmp_path / "v.json")]) in (0, 1)
    out = capsys.readouterr().out
    assert _json(tmp_path / "v.json")["split_weights"] is True
    assert "decisions flip at" not in out  # split already, or nothing failed

    from snn_deploy.deploy.stages.verify import verify
    verdict = verify(str(graph), str(bundle), data="random:rate=0.05,seed=0", samples=40,
                     tolerances={"min_agreement": 1.0})
    assert not verdict.passed and verdict.metrics.split_weights

    def advice(flips: DecisionFlips, split: bool) -> list[str]:
        metrics = dataclasses.replace(verdict.metrics, decision_flips=flips, split_weights=split)
        return format_advice(dataclasses.replace(verdict, metrics=metrics))

    assert advice(DecisionFlips(0, 3), split=False) == [
        "  3 decisions flip at the chip's 8-bit weights (discrete -> chip): compile with --split-weights (about "
        "14-bit weights, twice the synapse memory), or with --calibrate DATA, which measures on DATA whether it helps"]
    assert advice(DecisionFlips(0, 3), split=True) == []
    assert advice(DecisionFlips(4, 1), split=False) == [
        "  4 decisions flip at the time step (float -> discrete): compile with a finer one (a larger --steps-per-tau, "
        "or a smaller --dt where the model allows it)"]
    passing = dataclasses.replace(verdict, tolerances=dataclasses.replace(verdict.tolerances, min_agreement=0.0))
    assert format_advice(dataclasses.replace(passing, metrics=dataclasses.replace(
        verdict.metrics, decision_flips=DecisionFlips(0, 3), split_weights=False))) == []
