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


@pytest.fixture
def project(pytester):
    """A user's repository: a NIR file beside the test file."""
    export(random_ttfs_model(), pytester.path / "model.nir")
    return pytester


def _run(project, tolerances: str):
    project.makepyfile(test_model=USER_TEST.format(tolerances=tolerances))
    # Explicitly, as a user without the installed entry point would; with it this is the same plugin.
    return project.runpytest("-p", "snn_deploy.deploy.testing")


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
    _assert_no_library_traceback(result.stdout.str())


def test_entry_point_is_named_like_the_module():
    """pytest registers ``-p snn_deploy.deploy.testing`` under the module's name; an entry point of
    another name then registers the same module twice, and pytest stops with a ValueError."""
    from importlib.metadata import entry_points

    ours = [ep for ep in entry_points(group="pytest11") if ep.value == "snn_deploy.deploy.testing"]
    assert all(ep.name == ep.value for ep in ours), ours
