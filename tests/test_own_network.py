"""The main path, as a user walks it: a snnTorch network, trained here on rate-coded digits, exported with
snnTorch's own exporter, compiled, and verified on its own labelled test split written as a .npz, from the
command line, from Python (a numpy raster) and from the pytest plugin.

The float reference fires snnTorch's spikes (the Leaky nets of test_interop), so its accuracy is
snnTorch's own on that split, exactly: snnTorch's output spikes decided by the bundle's decoding
(spike_count: the most spikes, ties to the earliest first spike; no spike, no decision), and, compiled with
spike_count_argmax, the accuracy the training script scores (torch's argmax of the counts).
"""

import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

try:
    import nir
    import snntorch
    import snntorch.utils
    import torch
    from snntorch.export_nir import export_to_nir
except ImportError as exc:
    if os.environ.get("CI") == "true":
        raise  # CI must run these tests: tools/env.sh installs snnTorch
    pytest.skip(f"snnTorch not installed (tools/env.sh installs it; under CI this fails): {exc}",
                allow_module_level=True)

from snn_deploy.deploy import verify
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.models import data
from snn_deploy.targets import decision

# Both exporters still call nirtorch's deprecated extract_nir_graph.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
pytest_plugins = ["pytester"]

SNNTORCH_DT = 1e-4  # hard-coded in snnTorch's exporter
STEPS = 20  # rate-coded input steps per sample
SIZES = (64, 32, 10)
# The command line a user runs: snnTorch's semantics, which NIR does not record (see the README).
SEMANTICS = ["--time-unit", "s", "--multi-spike", "--reset", "zero", "--decoding", "spike_count", "--spike", "pulse",
             "--integration", "euler", "--duration", str(STEPS * SNNTORCH_DT), "--dt", str(SNNTORCH_DT)]


def rate_coded(features: np.ndarray, seed: int) -> np.ndarray:
    """(samples, 64) pixel intensities in [0, 1] -> (samples, STEPS, 64) Bernoulli spikes, seeded."""
    return np.random.default_rng(seed).random((features.shape[0], STEPS, features.shape[1])) < features[:, None, :]


def leaky_net():
    """64-32-10 Linear -> Leaky, per-neuron beta and threshold (the exporter writes 0-d arrays for scalars),
    zero reset without delay (NIR's reset)."""
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out),
                   snntorch.Leaky(beta=torch.full((n_out,), 0.85), threshold=torch.ones(n_out), init_hidden=True,
                                  reset_mechanism="zero", reset_delay=False, learn_beta=False)]
    return torch.nn.Sequential(*layers)


def output_spikes(net, raster: np.ndarray) -> np.ndarray:
    """snnTorch's own run: the output layer's (samples, steps, 10) spikes."""
    snntorch.utils.reset(net)
    steps = []
    with torch.no_grad():
        for step in range(raster.shape[1]):
            steps.append(net(torch.from_numpy(raster[:, step]).float()).numpy() > 0)
    return np.stack(steps, axis=1)


def train(net, raster: np.ndarray, labels: np.ndarray, epochs: int = 15) -> None:
    """Cross-entropy on the spike counts, Adam, seeded mini-batches: a few seconds."""
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(labels)), len(labels) // 64):
            snntorch.utils.reset(net)
            counts = sum(net(torch.from_numpy(raster[batch, step]).float()) for step in range(STEPS))
            loss = torch.nn.functional.cross_entropy(counts, torch.from_numpy(labels[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def decided(spikes: np.ndarray) -> np.ndarray:
    """The bundle's decoding applied to (samples, steps, outputs) spikes."""
    fired = spikes.any(axis=1)
    first = np.where(fired, spikes.argmax(axis=1), np.inf)
    return decision.decide(first, spikes.sum(axis=1), decision.SPIKE_COUNT)


class User(NamedTuple):
    folder: Path  # net.nir (snnTorch's export), net.bundle, test_spikes.npz (the test split)
    accuracy: float  # snnTorch's own, by the bundle's decoding
    raster: np.ndarray
    labels: np.ndarray
    argmax_accuracy: float  # snnTorch's own, by torch's argmax of the counts
    rules_differ: int  # the samples the two count decodings decide differently on snnTorch's output


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> User:
    """The user's folder and snnTorch's own figures on the test split."""
    folder = tmp_path_factory.mktemp("user")
    torch.manual_seed(0)
    train_split, test_split = data.load("digits:train"), data.load("digits:test")
    net = leaky_net()
    train(net, rate_coded(train_split.features, seed=1), train_split.labels)
    test_raster = rate_coded(test_split.features, seed=2)
    spikes = output_spikes(net, test_raster)
    accuracy = float(np.mean(decided(spikes) == test_split.labels))
    argmax_decisions = spikes.sum(axis=1).argmax(axis=1)
    argmax_accuracy = float(np.mean(argmax_decisions == test_split.labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, torch.zeros(1, SIZES[0]), ignore_dims=[0])
    nir.write(folder / "net.nir", graph)
    np.savez(folder / "test_spikes.npz", spikes=test_raster, labels=test_split.labels)
    assert main(["compile", str(folder / "net.nir"), *SEMANTICS, "-o", str(folder / "net.bundle"), "-q"]) == 0
    print(f"\nsnnTorch 64-32-10 Leaky on rate-coded digits: test accuracy {accuracy:.4f} (bundle's decoding), "
          f"{argmax_accuracy:.4f} (argmax of counts)")
    return User(folder, accuracy, test_raster, test_split.labels, argmax_accuracy,
                int(np.sum(decided(spikes) != argmax_decisions)))


def test_the_float_reference_has_snntorchs_accuracy_from_the_command_line(user, capsys):
    folder, accuracy = user.folder, user.accuracy
    code = main(["verify", str(folder / "net.nir"), str(folder / "net.bundle"), "--data",
                 str(folder / "test_spikes.npz"), "--json", str(folder / "verdict.json"), "--report",
                 str(folder / "report.html")])
    out = capsys.readouterr().out
    verdict = json.loads((folder / "verdict.json").read_text())
    assert code == (0 if verdict["passed"] else 1)
    assert verdict["samples"] == 360 and verdict["float_reference"] == "discrete"
    assert verdict["accuracy"]["float"] == accuracy > 0.8  # exactly snnTorch's
    assert "--time-scale" not in out and "one data step = one chip step (dt 0.0001 s)" in out
    assert verdict["data"]["cropped_events"] == 0 and verdict["data"]["empty_samples"] == 0
    # Where the other count rule parts from spike_count on these outputs, verify says so, and how often.
    rule = verdict["difficulty"]["count_rule"]
    assert rule["other_decoding"] == "spike_count_argmax" and rule["decided_otherwise"] == user.rules_differ > 0
    assert f"--decoding spike_count_argmax decides {user.rules_differ} of them otherwise" in out
    report = " ".join((folder / "report.html").read_text().split())
    assert f"<code>--decoding spike_count_argmax</code> decides {user.rules_differ} of them otherwise" in report
    print(f"\nchip accuracy {verdict['accuracy']['chip']:.4f}, float {verdict['accuracy']['float']:.4f}, "
          f"agreement {verdict['agreement']:.4f}, passed {verdict['passed']}")


def test_the_same_verdict_from_python_on_a_numpy_raster(user):
    folder, accuracy, raster, labels = user.folder, user.accuracy, user.raster, user.labels
    verdict = verify(folder / "net.nir", folder / "net.bundle", data=raster, labels=labels)
    cli = json.loads((folder / "verdict.json").read_text()) if (folder / "verdict.json").exists() else None
    assert verdict.to_dict()["accuracy"]["float"] == accuracy
    if cli is not None:  # the command line's test ran first
        assert verdict.to_dict()["accuracy"] == cli["accuracy"] and verdict.to_dict()["agreement"] == cli["agreement"]


def test_spike_count_argmax_gives_the_accuracy_of_torchs_argmax(user):
    """A user who scored their model by argmax of summed spikes (as snnTorch's accuracy_rate does) compiles with
    --decoding spike_count_argmax, and verify's float accuracy is that figure, exactly."""
    folder, accuracy, argmax_accuracy = user.folder, user.accuracy, user.argmax_accuracy
    options = [value if value != "spike_count" else decision.SPIKE_COUNT_ARGMAX for value in SEMANTICS]
    assert main(["compile", str(folder / "net.nir"), *options, "-o", str(folder / "argmax.bundle"), "-q"]) == 0
    verdict = verify(folder / "net.nir", folder / "argmax.bundle", data=user.raster, labels=user.labels).to_dict()
    assert verdict["accuracy"]["float"] == argmax_accuracy != accuracy  # this seeded split has ties
    assert verdict["difficulty"]["count_rule"]["other_decoding"] == "spike_count"
    assert verdict["difficulty"]["count_rule"]["decided_otherwise"] == user.rules_differ
    print(f"\nfloat accuracy: {accuracy:.4f} by spike_count, {argmax_accuracy:.4f} by spike_count_argmax")


USER_TEST = """
import numpy as np

def test_my_network_deploys(snn_verify):
    verdict = snn_verify("net.nir", "loihi2", data="test_spikes.npz", dt=1e-4, time_unit="s", fire_once=False,
                         reset="zero", decoding="spike_count", spike="pulse", integration="euler", duration={duration},
                         min_agreement=0.0, max_accuracy_drop=1.0)
    assert verdict.to_dict()["accuracy"]["float"] == {accuracy!r}

def test_my_raster_deploys_on_the_bundle(snn_verify):
    spikes = np.load("test_spikes.npz")
    verdict = snn_verify("net.nir", "net.bundle", data=spikes["spikes"], labels=spikes["labels"], min_agreement=0.0,
                         max_accuracy_drop=1.0)
    assert verdict.to_dict()["accuracy"]["float"] == {accuracy!r}
"""


def test_the_same_from_the_pytest_plugin(user, pytester):
    import shutil

    folder, accuracy = user.folder, user.accuracy
    for name in ("net.nir", "net.bundle", "test_spikes.npz"):
        shutil.copy(folder / name, pytester.path / name)
    pytester.makepyfile(test_user=USER_TEST.format(duration=STEPS * SNNTORCH_DT, accuracy=accuracy))
    result = pytester.runpytest("-p", "snn_deploy.deploy.testing", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=2)
