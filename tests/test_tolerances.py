"""Tolerances from a file next to the model, options over the file, and one-line errors."""

from types import SimpleNamespace

import pytest

from snn_deploy.deploy.artifacts.verdict import Accuracy, HardwareEvents
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.artifacts.tolerances import ToleranceOrigin
from snn_deploy.deploy.stages.tolerances import checks, load_tolerances, origin, tolerance_file
from snn_deploy.deploy import Tolerances


@pytest.fixture
def model(tmp_path):
    """A NIR path: the tolerance loader only looks beside it, so the file need not exist."""
    return tmp_path / "yy.nir"


def test_defaults_without_a_file(model):
    assert tolerance_file(model) is None
    assert load_tolerances(model, {}) == Tolerances()


def test_folder_file_with_nested_and_dotted_spike_time_key(model):
    (model.parent / "snn-deploy.toml").write_text(
        "max_accuracy_drop = 0.02\nmin_agreement = 0.9\nmax_hardware_events = 3\n"
        "[max_spike_time_error_steps]\np95 = 2.5\n")
    assert load_tolerances(model, {}) == Tolerances(max_accuracy_drop=0.02, min_agreement=0.9,
                                                    max_spike_time_error_p95=2.5, max_hardware_events=3)
    (model.parent / "snn-deploy.toml").write_text("max_spike_time_error_steps.p95 = 4\n")
    assert load_tolerances(model, {}).max_spike_time_error_p95 == 4.0


def test_model_file_wins_over_folder_file_and_options_win_over_both(model):
    (model.parent / "snn-deploy.toml").write_text("min_agreement = 0.5\nmax_accuracy_drop = 0.5\n")
    (model.parent / "yy.tolerances.toml").write_text("min_agreement = 0.9\n")
    assert tolerance_file(model) == model.parent / "yy.tolerances.toml"
    # Only the model's own file is read: the folder file's max_accuracy_drop does not apply.
    assert load_tolerances(model, {}) == Tolerances(min_agreement=0.9)
    tolerances = load_tolerances(model, {"min_agreement": 0.99, "max_accuracy_drop": None})
    assert tolerances == Tolerances(min_agreement=0.99)


def test_every_tolerance_states_where_it_came_from(model):
    (model.parent / "yy.tolerances.toml").write_text("min_agreement = 0.9\nmax_hardware_events = 2\n")
    tolerances = load_tolerances(model, {"max_hardware_events": 5, "max_accuracy_drop": None},
                                 spelled=lambda field: "--" + field.replace("_", "-"))
    file = str(model.parent / "yy.tolerances.toml")
    assert tolerances.origins == {
        "max_accuracy_drop": ToleranceOrigin("default"), "min_agreement": ToleranceOrigin("file", file),
        "max_spike_time_error_p95": ToleranceOrigin("default"),
        "max_hardware_events": ToleranceOrigin("option", "--max-hardware-events")}
    assert tolerances == Tolerances(min_agreement=0.9, max_hardware_events=5)  # origins are not the limits
    assert load_tolerances(None, {"min_agreement": 0.5}).origins["min_agreement"] == ToleranceOrigin(
        "option", "min_agreement=")  # the Python keyword, as verify() and snn_verify() take it
    # Built in code: what equals the default is the default, anything else was given in code.
    in_code = Tolerances(min_agreement=0.5)
    assert [origin(in_code, field) for field in ("min_agreement", "max_accuracy_drop")] == [
        ToleranceOrigin("option", "Tolerances(min_agreement=)"), ToleranceOrigin("default")]


@pytest.mark.parametrize("text, message", [
    ("min_agreemnt = 0.9\n", "unknown key 'min_agreemnt'"),
    ("[max_spike_time_error_steps]\np99 = 2\n", "unknown key 'max_spike_time_error_steps.p99'"),
    ("min_agreement = 1.5\n", "min_agreement must be a number in [0, 1], got 1.5"),
    ("max_accuracy_drop = 'small'\n", "max_accuracy_drop must be a number in [0, 1], got 'small'"),
    ("max_spike_time_error_steps.p95 = -1\n", "max_spike_time_error_steps.p95 must be a number of steps >= 0"),
    ("max_spike_time_error_steps.p95 = nan\n", "max_spike_time_error_steps.p95 must be a number of steps >= 0"),
    ("max_hardware_events = 1.5\n", "max_hardware_events must be a whole number >= 0, got 1.5"),
    ("max_hardware_events = true\n", "max_hardware_events must be a whole number >= 0, got True"),
    ("min_agreement = \n", "not valid TOML"),
])
def test_bad_file_is_one_line_error_naming_file_and_key(model, text, message):
    path = model.parent / "yy.tolerances.toml"
    path.write_text(text)
    with pytest.raises(DeployError) as error:
        load_tolerances(model, {})
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    ({"min_agreement": 2.0}, "tolerance option: min_agreement must be a number in [0, 1], got 2.0"),
    ({"max_spike_time_error_steps": 2.0}, "unknown tolerance 'max_spike_time_error_steps'"),
])
def test_bad_option(model, overrides, message):
    with pytest.raises(DeployError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_tolerances(model, overrides)


def _metrics(float_acc, chip_acc, agreement, p95s, wraps, samples=100):
    """The parts of a verdict's metrics the checks read (a stand-in for ``artifacts.verdict.Metrics``)."""
    return SimpleNamespace(
        samples=samples, accuracy=Accuracy(float=float_acc, discrete=float_acc, chip=chip_acc), agreement=agreement,
        spike_time_error_steps={f"lif{i}": SimpleNamespace(p95=p) for i, p in enumerate(p95s, start=1)},
        hardware_events={"lif1": HardwareEvents(current_wraps=wraps), "lif2": HardwareEvents()}, readout=None)


@pytest.mark.parametrize("metrics, tolerances, exceeded", [
    (_metrics(0.9, 0.9, 1.0, [0.5, None], 0), Tolerances(max_spike_time_error_p95=1.0), []),
    (_metrics(0.95, 0.90, 0.93, [3.0, 1.5], 2), Tolerances(max_spike_time_error_p95=1.0),
     ["max_accuracy_drop", "min_agreement", "max_spike_time_error_p95", "max_spike_time_error_p95",
      "max_hardware_events"]),
    (_metrics(0.95, 0.90, 0.93, [3.0, 1.5], 2), Tolerances(),
     ["max_accuracy_drop", "min_agreement", "max_hardware_events"]),
    (_metrics(0.80, 0.81, 0.98, [3.0, 1.5], 0), Tolerances(max_accuracy_drop=0.0, min_agreement=0.98), []),
])
def test_checks_fail_exactly_the_exceeded_tolerances(metrics, tolerances, exceeded):
    assert [c.tolerance for c in checks(metrics, tolerances) if not c.passed] == exceeded


@pytest.mark.parametrize("float_acc, chip_acc, samples, max_drop, passed", [
    (0.50, 0.49, 100, 0.01, True),  # 0.5 - 0.49 = 0.010000000000000009 in floats
    (0.50, 0.48, 100, 0.01, False),
    (0.59, 0.30, 100, 0.29, True),  # 0.29 * 100 = 28.999999999999996 in floats
    (1 / 3, 0.0, 3, 0.33, False),  # 1/3 of the samples is more than 0.33
])
def test_an_accuracy_drop_is_compared_in_samples_exactly(float_acc, chip_acc, samples, max_drop, passed):
    metrics = _metrics(float_acc, chip_acc, 1.0, [], 0, samples)
    (drop,) = [c for c in checks(metrics, Tolerances(max_accuracy_drop=max_drop)) if c.tolerance == "max_accuracy_drop"]
    assert drop.passed is passed
