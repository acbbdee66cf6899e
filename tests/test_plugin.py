"""The pytest plugin, run the way a user runs it: a three-line test in another project (pytester)."""

import nir  # noqa: F401  (see below)
import pytest

from snn_deploy.deploy.stages.export import export

from helpers import random_ttfs_model

pytest_plugins = ["pytester"]
# pytester runs the inner tests in this process and afterwards unloads every module they imported;
# h5py (under nir) cannot be imported twice, so it is imported here, once, before any run.

# 16 steps per tau and 30 samples keep each inner run to about a second.
USER_TEST = """
def test_model_deploys(snn_verify):
    snn_verify("model.nir", target="loihi2", data="yinyang:test", samples=30, steps_per_tau=16, {tolerances})
"""


# The plugin, and no short test summary: under CI (CI=true) pytest prints failure messages there in full,
# which would count every message twice.
PLUGIN = ("-p", "snn_deploy.deploy.testing", "-rN")

@pytest.fixture
def project(pytester):
    """A user's repository: a NIR file beside the test file."""
    export(random_ttfs_model(), pytester.path / "model.nir")
    return pytester


def _run(project, tolerances: str):
    project.makepyfile(test_model=USER_TEST.format(tolerances=tolerances))
    # Explicitly, as a user without the installed entry point would; with it this is the same plugin.
    return project.runpytest(*PLUGIN)


def _assert_no_library_traceback(output: str) -> None:
    assert "Traceback" not in output and "snn_deploy/" not in output and "deploy/verify.py" not in output


def test_passing_tolerance(project):
    result = _run(project, "min_agreement=0.0, max_accuracy_drop=1.0")
    result.assert_outcomes(passed=1)


def test_failing_tolerance_shows_measured_against_allowed(project):
    # Against the continuous-time float model a spike-time error of exactly 0 steps is impossible.
    result = _run(project, "min_agreement=0.0, max_accuracy_drop=1.0, max_spike_time_error_p95=0.0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*snn_verify: *model.nir on loihi2 via bitsim, yinyang:test (30 samples): * tolerance checks exceeded",
        "*tolerance*measured*allowed*measurement",
        "*ok * min_agreement * >=  0 * agreement (chip vs float decisions)",
        "*EXCEEDED max_spike_time_error_p95 * <=  0 * layer lif1: spike-time error p95 (steps)",
    ])
    _assert_no_library_traceback(result.stdout.str())


def test_tolerance_file_beside_the_model_applies(project):
    (project.path / "snn-deploy.toml").write_text("min_agreement = 0.0\n[max_spike_time_error_steps]\np95 = 0\n")
    result = _run(project, "max_accuracy_drop=1.0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*EXCEEDED max_spike_time_error_p95*"])


def test_bad_input_is_one_readable_line(project):
    result = _run(project, "data_set_typo=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*snn_verify: unknown tolerance 'data_set_typo' (known: *"])
    output = result.stdout.str()
    _assert_no_library_traceback(output)
    assert "During handling of the above exception" not in output
    assert output.count("unknown tolerance 'data_set_typo'") == 1


@pytest.mark.parametrize("arguments, message", [
    ('data="yinyang:test", samples=5000', "--samples 5000 asks for more samples than yinyang:test has (1000)"),
    ('data="random:seed=-1"', "random data: seed must be a whole number >= 0, got -1"),
    ('data="yinyang:test", reset="hard"', "option --reset must be one of zero, subtract, got 'hard'"),
    ('data="yinyang:test", target="loihi9"', "unknown target 'loihi9'"),
    ('data="yinyang:test", backend="spinnaker"', "unknown back end 'spinnaker'"),
])
def test_each_bad_input_fails_the_test_once_naming_it(project, arguments, message):
    project.makepyfile(test_model=f"""
def test_model_deploys(snn_verify):
    snn_verify("model.nir", steps_per_tau=16, {arguments})
""")
    result = project.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert output.count(f"snn_verify: {message}") == 1, output
    assert "During handling of the above exception" not in output
    _assert_no_library_traceback(output)


def test_an_imported_graph_states_its_semantics_as_keywords_on_random_spike_trains(pytester):
    """A graph that states no semantics (as from another tool): the CLI's option names as keyword arguments,
    unlabelled random spike trains, and the stages alone (the command line cannot even be imported)."""
    import json

    from snn_deploy.deploy.stages.export import to_nir

    graph = to_nir(random_ttfs_model())
    stated = json.loads(graph.metadata["snn_deploy"])
    graph.metadata = {"snn_deploy": json.dumps({"encoding": stated["encoding"]})}
    nir.write(pytester.path / "model.nir", graph)
    pytester.makepyfile(test_model="""
import sys

def test_model_deploys(snn_verify):
    sys.modules["snn_deploy.deploy.interfaces.cli"] = None  # importing the CLI now fails
    verdict = snn_verify("model.nir", data="random:rate=0.05,seed=3", samples=20, steps_per_tau=16,
                         time_unit="tau", fire_once=True, reset="zero", decoding="first_spike", duration=3.0,
                         spike="dirac", integration="exact", min_agreement=0.0)
    assert verdict.metrics.samples == 20 and verdict.metrics.accuracy is None
    assert verdict.metrics.dataset == "random spike trains (rate 0.05 per step, seed 3)"
""")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_workers_split_the_verification_into_the_same_verdict(project):
    project.makepyfile(test_model="""
def test_model_deploys(snn_verify):
    options = dict(target="loihi2", data="yinyang:test", samples=30, steps_per_tau=16, min_agreement=0.0)
    assert snn_verify("model.nir", workers=2, **options).to_dict() == snn_verify("model.nir", **options).to_dict()
""")
    project.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_entry_point_is_named_like_the_module():
    """pytest registers ``-p snn_deploy.deploy.testing`` under the module's name; an entry point of
    another name then registers the same module twice, and pytest stops with a ValueError."""
    from importlib.metadata import entry_points

    ours = [ep for ep in entry_points(group="pytest11") if ep.value == "snn_deploy.deploy.testing"]
    assert all(ep.name == ep.value for ep in ours), ours


def test_a_compiled_bundle_is_taken_whatever_its_file_is_called(project):
    """compile writes what -o names (the README's examples write .npz): a .npz bundle is the bundle, not a target
    name, and verifies as the same bundle named .bundle does."""
    from snn_deploy.deploy.interfaces.cli import main

    for name in ("model.npz", "model.bundle"):
        assert main(["compile", str(project.path / "model.nir"), "--steps-per-tau", "16", "-o",
                     str(project.path / name), "-q"]) == 0
    project.makepyfile(test_model="""
def test_model_deploys(snn_verify):
    options = dict(data="yinyang:test", samples=30, min_agreement=0.0, max_accuracy_drop=1.0)
    npz, bundle = snn_verify("model.nir", "model.npz", **options), snn_verify("model.nir", "model.bundle", **options)
    assert npz.to_dict() == bundle.to_dict() and npz.metrics.samples == 30
""")
    project.runpytest(*PLUGIN).assert_outcomes(passed=1)
