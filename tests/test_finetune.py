"""Chip-aware fine-tuning (``snn-deploy finetune``): the torch chip model against the float reference, the network
the integers realize against bitsim, the map from NIR parameters to the chip's gains, and the command: what it
writes, its determinism and its refusals. Long trainings are benchmarks (tools/bench/finetune.py), not tests."""

from __future__ import annotations

import hashlib
import json
import re
import shlex

import nir
import numpy as np
import pytest
import torch

from snn_deploy.deploy.artifacts.discrete import DiscreteNetwork, Discretization
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.references import discrete as discrete_reference
from snn_deploy.deploy.references import trainable
from snn_deploy.deploy.stages import finetune as finetune_stage
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.finetune import parameter_maps
from snn_deploy.deploy.stages.load import from_graph
from snn_deploy.deploy.stages.quantize import dequantize, quantize
from snn_deploy.targets import bitsim, description
from snn_deploy.targets.bundle import TUNED_FROM_KEY
from snn_deploy.targets.record import SpikeEvents

from helpers import discrete_time_semantics
from test_calibrate import biased_graph, readout_graph
from test_recommendation import CLI_SEMANTICS, close_outputs_graph

LOIHI2 = description.load("loihi2")
SEMANTICS = discrete_time_semantics("s", 0.02)
DT = 1e-4


def random_discrete(seed: int, *, readout: bool, fire_once: bool, reset: str, delayed: bool,
                    num_steps: int = 40) -> DiscreteNetwork:
    """Input(6) -> hidden(8, self-recurrent, input synapses delayed 0-3 steps if ``delayed``) -> output(3, a
    readout if ``readout``), with random decays, drives and thresholds."""
    rng = np.random.default_rng(seed)

    def layer(name, size, inputs, is_readout=False, delays=()):
        return Discretization(name=name, inputs=inputs, alpha_u=rng.uniform(0, 0.9, size),
                              alpha_v=rng.uniform(0.5, 0.99, size), drive=rng.normal(0, 0.02, size),
                              threshold=np.full(size, np.inf) if is_readout else rng.uniform(0.5, 1.5, size),
                              reset=reset, fire_once=fire_once and not is_readout, readout=is_readout, delays=delays)

    hidden = layer("hidden", 8, (("in", rng.normal(0.25, 0.35, (8, 6))), ("hidden", rng.normal(0, 0.15, (8, 8)))),
                   delays=(("in", rng.integers(0, 4, (8, 6))),) if delayed else ())
    out = layer("out", 3, (("hidden", rng.normal(0.3, 0.4, (3, 8))),), readout)
    return DiscreteNetwork(input_name="in", input_size=6, populations=(hidden, out), output="out", dt=1.0,
                           num_steps=num_steps, input_fires_once=False, synapses={"hidden": ("a",), "out": ("b",)})


CASES = [dict(readout=readout, fire_once=fire_once, reset=reset, delayed=delayed)
         for readout in (False, True) for fire_once in (False, True) for reset in ("zero", "subtract")
         for delayed in (False, True) if not (fire_once and reset == "subtract")]


def _torch_gains(discrete: DiscreteNetwork) -> dict:
    return {(p.name, source): torch.tensor(gain, requires_grad=True) for p in discrete.populations
            for source, gain in p.inputs}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_the_torch_chip_model_spikes_as_the_float_reference_does(case, seed):
    discrete = random_discrete(seed, **case)
    inputs = SpikeEvents.from_raster(np.random.default_rng(seed + 10).random((12, discrete.num_steps, 6)) < 0.2)
    spikes, _, traces = discrete_reference.run(discrete, inputs, discrete.num_steps, engine="reference")
    raster = torch.as_tensor(inputs.raster(slice(0, 12)), dtype=torch.float64)
    result = trainable.run(discrete, _torch_gains(discrete), raster)
    if case["readout"]:
        assert result.membrane.shape == traces["out"]["v"].shape
        # The same operations in the same order but for the order of the synaptic sums (the reference adds only the
        # inputs that spiked): equal up to float64 rounding.
        np.testing.assert_allclose(result.membrane.detach().numpy(), traces["out"]["v"], rtol=1e-12, atol=1e-12)
    else:
        assert spikes["out"].counts().sum() > 0
        np.testing.assert_array_equal(result.counts.detach().numpy(), spikes["out"].counts())


def test_the_surrogate_gradient_reaches_every_gain_of_a_spiking_network():
    discrete = random_discrete(0, readout=False, fire_once=False, reset="zero", delayed=True)
    gains = _torch_gains(discrete)
    raster = torch.as_tensor(np.random.default_rng(1).random((8, discrete.num_steps, 6)) < 0.2, dtype=torch.float64)
    trainable.run(discrete, gains, raster).counts.sum().backward()
    for key, gain in gains.items():
        assert torch.count_nonzero(gain.grad) > 0, key


def test_the_network_the_integers_realize_spikes_like_bitsim_more_often_than_the_float_model():
    from snn_deploy.deploy import compile_network

    net = from_graph(close_outputs_graph(), SEMANTICS)  # outputs that 8-bit weights move
    bundle = compile_network(net, LOIHI2, dt=DT, calibrate=None)
    discrete = discretize(net, DT)
    realized = dequantize(quantize(discrete, LOIHI2), LOIHI2.widths)
    assert [p.name for p in realized.populations] == [p.name for p in discrete.populations]
    inputs = SpikeEvents.from_raster(np.random.default_rng(2).random((100, bundle.timing.num_steps, 20)) < 0.1)
    chip = bitsim.run(bundle, inputs).spikes
    like = {name: {pop: float(np.mean(spikes[pop].counts() == chip[pop].counts())) for pop in spikes}
            for name, spikes in (("float", discrete_reference.simulate(discrete, inputs, bundle.timing.num_steps)),
                                 ("realized", discrete_reference.simulate(realized, inputs, bundle.timing.num_steps)))}
    for pop in like["float"]:
        assert like["realized"][pop] >= like["float"][pop], like
    assert like["realized"][net.output] >= 0.99 > like["float"][net.output], like


def _gain_values(graph) -> dict:
    """The gains of the graph's own layers (not of the compiler's constant sources)."""
    return {(p.name, s): g for p in discretize(from_graph(graph, SEMANTICS), DT).populations if not p.bias_source
            for s, g in p.inputs}


def conv_graph(seed: int = 5):
    """Input(1x5x5) -> Conv2d(2 channels, 3x3, a bias) -> IF -> Flatten -> Affine -> IF(3): one kernel entry reaches
    many gains, each times its own factor."""
    rng = np.random.default_rng(seed)

    def if_neurons(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))

    return nir.NIRGraph.from_list(
        nir.Input(np.array([1, 5, 5])),
        nir.Conv2d(input_shape=(5, 5), weight=rng.normal(0.3, 0.5, (2, 1, 3, 3)), stride=1, padding=0, dilation=1,
                   groups=1, bias=rng.uniform(0.01, 0.05, 2)),
        if_neurons((2, 3, 3)), nir.Flatten(start_dim=0, input_type={"input": np.array([2, 3, 3])}),
        nir.Affine(weight=rng.normal(0.2, 0.5, (3, 18)), bias=rng.uniform(0.01, 0.05, 3)), if_neurons((3,)),
        nir.Output(np.array([3])))


@pytest.mark.parametrize("make_graph, trained", [
    (biased_graph, ["affine.weight", "affine.bias", "affine_1.weight", "affine_1.bias"]),
    (conv_graph, ["conv2d.weight", "conv2d.bias", "affine.weight", "affine.bias"])])
def test_parameter_maps_give_the_gains_of_the_graph_with_the_parameters_changed(make_graph, trained):
    graph = make_graph()
    net = from_graph(graph, SEMANTICS)
    original, maps, frozen = parameter_maps(graph, net, discretize(net, DT))
    assert [m.name for m in maps] == trained and frozen == ()
    rng = np.random.default_rng(4)
    changed = [torch.as_tensor(m.original * rng.uniform(0.5, 1.5, m.original.size)) for m in maps]
    gains = finetune_stage._torch_gains(original, maps, changed)
    edited = graph
    for m, values in zip(maps, changed):
        edited = finetune_stage._with_field(edited, m.node, m.field, values.numpy())
    expected = _gain_values(edited)
    assert set(gains) == set(expected)
    for key, gain in gains.items():
        np.testing.assert_allclose(gain.numpy(), expected[key], rtol=1e-12, atol=1e-15)


def test_a_parameter_reaching_the_gains_through_another_is_kept_with_the_reason():
    rng = np.random.default_rng(0)
    lif = nir.LIF(tau=np.full(4, 2e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))
    graph = nir.NIRGraph.from_list(nir.Input(np.array([5])), nir.Linear(weight=rng.normal(0, 1, (6, 5))),
                                   nir.Linear(weight=rng.normal(0, 1, (4, 6))), lif, nir.Output(np.array([4])))
    net = from_graph(graph, SEMANTICS)
    _, maps, frozen = parameter_maps(graph, net, discretize(net, DT))
    assert maps == ()
    assert [name for name, _ in frozen] == ["linear.weight", "linear_1.weight"]
    assert all("product with another parameter" in why for _, why in frozen)


def test_a_bias_the_chip_holds_as_its_own_is_kept():
    graph = biased_graph()
    exact = {**SEMANTICS, "integration": "exact"}  # a LIF's bias under exact integration is the chip's bias
    net = from_graph(graph, exact)
    _, maps, frozen = parameter_maps(graph, net, discretize(net, DT))
    assert [m.name for m in maps] == ["affine.weight", "affine_1.weight"]
    assert [name for name, _ in frozen] == ["affine.bias", "affine_1.bias"]


TUNING_DATA = "random:rate=0.1,seed=1"


def _chip_agreement(net, original_net, inputs) -> float:
    """How often ``net`` compiled (``_compiled``) decides ``inputs`` on bitsim as ``original_net``'s float model."""
    from snn_deploy.deploy.stages.verify import decide

    bundle = _compiled(net)
    float_spikes = discrete_reference.simulate(discretize(original_net, DT), inputs, bundle.timing.num_steps)
    chip = bitsim.run(bundle, inputs).spikes
    return float(np.mean(decide(chip[net.output], bundle.decoding) == decide(float_spikes[net.output],
                                                                               bundle.decoding)))


def test_each_epoch_is_measured_as_compile_deploys_the_graph_it_writes():
    from snn_deploy.deploy.artifacts.tuning import TuningSettings
    from snn_deploy.deploy.stages.stimulus import load_stimulus

    graph = close_outputs_graph()
    net = from_graph(graph, SEMANTICS)
    tuned = finetune_stage.finetune(graph, net, LOIHI2, TUNING_DATA, TuningSettings(epochs=3, batch_size=8),
                                    samples=40, dt=DT)
    report = tuned.report
    assert [r.epoch for r in report.epochs] == [0, 1, 2, 3]
    assert report.kept.chip_agreement == max(r.chip_agreement for r in report.epochs)
    # Measured: 87.5% -> 92.5% of these 40 samples by epoch 3 (the tuned weights are written).
    assert report.kept_epoch > 0 and report.kept.chip_agreement > report.epochs[0].chip_agreement
    inputs = load_stimulus(TUNING_DATA, 40, _compiled(net)).inputs
    assert _chip_agreement(net, net, inputs) == report.epochs[0].chip_agreement
    tuned_net = from_graph(tuned.graph)
    assert _chip_agreement(tuned_net, net, inputs) == report.kept.chip_agreement
    changed = any(not np.array_equal(np.asarray(getattr(tuned.graph.nodes[m], f)), np.asarray(getattr(node, f)))
                  for m, node in graph.nodes.items() for f in finetune_stage.TRAINABLE_FIELDS.get(type(node).__name__, ()))
    assert changed == (report.kept_epoch != 0)


@pytest.mark.parametrize("decoding", ["max_membrane", "final_membrane", "mean_membrane"])
def test_a_readout_is_tuned_on_its_membrane(decoding):
    from snn_deploy.deploy.artifacts.tuning import TuningSettings

    graph = readout_graph()
    net = from_graph(graph, {**SEMANTICS, "decoding": decoding})
    tuned = finetune_stage.finetune(graph, net, LOIHI2, TUNING_DATA, TuningSettings(epochs=1, batch_size=8,
                                                                                    learning_rate=1e-3),
                                    samples=16, dt=DT)
    first, last = tuned.report.epochs
    assert first.loss > 0 and np.isfinite(last.loss)
    assert tuned.report.trained == ("linear.weight", "linear_1.weight")
    assert from_graph(tuned.graph).semantics.decoding == decoding


def _compiled(net):
    """``net`` compiled as the tuning measured it: calibrated on the tuning data."""
    from snn_deploy.deploy import compile_network

    return compile_network(net, LOIHI2, dt=DT, calibrate=TUNING_DATA, calibrate_samples=40)


# --- the command ---------------------------------------------------------------------------------

TUNING = ["--data", "random:rate=0.1,seed=1", "--samples", "24", "--epochs", "2", "--batch-size", "8"]
GRAPH_NODES = ("linear.weight", "linear_1.weight")


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("finetune") / "g.nir"
    nir.write(path, close_outputs_graph())
    return path


@pytest.fixture(scope="module")
def tuned(graph_file, tmp_path_factory):
    paths = [tmp_path_factory.mktemp("tuned") / "g.tuned.nir" for _ in range(2)]
    for path in paths:
        assert main(["finetune", str(graph_file), *TUNING, "-o", str(path), *CLI_SEMANTICS]) == 0
    return paths


def test_the_tuned_graph_records_what_it_was_tuned_from(graph_file, tuned):
    graph = nir.read(tuned[0])
    record = json.loads(graph.metadata[TUNED_FROM_KEY])
    assert record["nir_sha256"] == hashlib.sha256(graph_file.read_bytes()).hexdigest()
    assert record["nir_file"] == graph_file.name
    assert record["data"].startswith("random:rate=0.1,seed=1")
    assert record["settings"]["epochs"] == 2 and record["settings"]["samples"] == 24
    # The semantics it was tuned with are in the graph: it loads with no option.
    net = from_graph(graph)
    assert net.semantics.decoding == "spike_count" and net.semantics.integration == "euler"
    assert set(graph.nodes) == set(nir.read(graph_file).nodes)


def test_finetune_is_deterministic(tuned, tmp_path):
    assert tuned[0].read_bytes() == tuned[1].read_bytes()
    bundles = [tmp_path / f"b{i}.npz" for i in range(2)]
    for path, bundle in zip(tuned, bundles):
        assert main(["compile", str(path), "--dt", "1e-4", "--calibrate", "none", "-o", str(bundle)]) == 0
    from snn_deploy.targets.bundle import load

    assert load(bundles[0]).checksum == load(bundles[1]).checksum


def test_verify_compares_the_tuned_deployment_with_the_original_graph(graph_file, tuned, tmp_path):
    bundle, verdict = tmp_path / "b.npz", tmp_path / "v.json"
    assert main(["compile", str(tuned[0]), "--dt", "1e-4", "--calibrate", "none", "-o", str(bundle)]) == 0
    assert main(["verify", str(graph_file), str(bundle), "--data", "random:rate=0.1,seed=0", "--samples", "20",
                 "--json", str(verdict)]) in (0, 1)
    record = json.loads(verdict.read_text())["tuned_graph"]
    assert record["compared_with"] == "original"
    assert record["original_sha256"] == hashlib.sha256(graph_file.read_bytes()).hexdigest()


def test_finetune_prints_each_epoch_and_what_it_kept(graph_file, tmp_path, capsys):
    assert main(["finetune", str(graph_file), *TUNING, "-o", str(tmp_path / "t.nir"), *CLI_SEMANTICS]) == 0
    out = capsys.readouterr().out
    for epoch in range(3):
        assert f"epoch {epoch}: loss " in out
    assert "kept epoch" in out and f"trained: {', '.join(GRAPH_NODES)}" in out


def test_finetune_prints_a_compile_line_that_runs_with_its_data_options(graph_file, tmp_path, capsys):
    """Time-stamped events need --time-scale to be read: the printed compile line carries it, and runs as printed."""
    rng = np.random.default_rng(5)
    events = 400
    np.savez(tmp_path / "events.npz", sample=np.sort(rng.integers(0, 24, events)), channel=rng.integers(0, 20, events),
             time=rng.uniform(0, 0.02, events), time_unit="s")
    tuned = tmp_path / "t.nir"
    assert main(["finetune", str(graph_file), "--data", str(tmp_path / "events.npz"), "--time-scale", "1",
                 *TUNING[2:], "-o", str(tuned), *CLI_SEMANTICS]) == 0
    out = capsys.readouterr().out
    line = re.search(r"compile it as it was measured \((.*?)\), then", out).group(1)
    assert line == f"--calibrate {tmp_path / 'events.npz'} --calibrate-samples 24 --time-scale 1.0 --dt 0.0001"
    assert main(["compile", str(tuned), *shlex.split(line), "-o", str(tmp_path / "t.bundle"), "-q"]) == 0


def _refused(args, tmp_path, capsys) -> str:
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["finetune", *args, "-o", str(tmp_path / "t.nir")]) == 2
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, no input touched
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_data_that_do_not_fit_the_graph_are_refused(graph_file, tmp_path, capsys):
    data = tmp_path / "wrong.npz"
    np.savez(data, spikes=np.zeros((4, 200, 7), bool))
    err = _refused([str(graph_file), "--data", str(data), *CLI_SEMANTICS], tmp_path, capsys)
    assert "7" in err and "20" in err


def test_a_diverging_tuning_is_refused(graph_file, tmp_path, capsys, monkeypatch):
    real = trainable.run

    def diverging(discrete, gains, raster):
        result = real(discrete, gains, raster)
        return trainable.TrainableOutput(result.counts * float("nan"), None)

    monkeypatch.setattr(trainable, "run", diverging)
    err = _refused([str(graph_file), *TUNING, *CLI_SEMANTICS], tmp_path, capsys)
    assert "diverged" in err and "--learning-rate" in err


def test_a_first_spike_decision_is_refused(graph_file, tmp_path, capsys):
    semantics = [a if a != "spike_count" else "first_spike" for a in CLI_SEMANTICS]
    assert "first_spike" in _refused([str(graph_file), *TUNING, *semantics], tmp_path, capsys)


@pytest.mark.parametrize("option, value", [("--epochs", "-1"), ("--batch-size", "0"), ("--learning-rate", "0"),
                                           ("--label-weight", "-1"), ("--decision-weight", "nan")])
def test_bad_settings_are_refused(graph_file, tmp_path, capsys, option, value):
    assert option in _refused([str(graph_file), *TUNING, option, value, *CLI_SEMANTICS], tmp_path, capsys)
