"""Target descriptions: the shipped files, their cited figures, and one-line errors for broken files."""

import re

import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.targets import description
from snn_deploy.targets.description import COSTS, TargetError



def test_targets_command_lists_loihi1_and_loihi2(capsys):
    assert main(["targets"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"loihi1", "loihi2"} <= set(listed)


@pytest.mark.parametrize("name", ["loihi1", "loihi2"])
def test_every_target_states_what_the_quantizer_placer_and_energy_model_read(name):
    target = description.load(name)
    for section, key in (("synapse", "weight_bits"), ("synapse", "weight_exp_min"), ("synapse", "weight_exp_max"),
                         ("neuron", "threshold_bits"), ("neuron", "state_bits"), ("core", "max_neurons"),
                         ("chip", "neuro_cores"), ("core", "synapse_memory_bytes")):
        assert isinstance(target.value(section, key), int), (section, key)
    tiles_east_west, tiles_north_south = target.value("chip", "mesh")
    assert tiles_east_west * tiles_north_south * target.value("chip", "cores_per_tile") == 128
    for key in COSTS:
        low, nominal, high = target.cost("energy", f"{key}_pj")
        assert 0 < low <= nominal <= high
    assert target.value("energy", "basis") and target.value("latency", "basis")


def test_loihi1_limits_are_the_published_ones():
    target = description.load("loihi1")
    assert target.value("chip", "neuro_cores") == 128
    assert target.value("core", "max_neurons") == 1024
    assert target.value("core", "max_input_axons") == 4096
    assert target.value("core", "max_output_axons") == 4096
    assert target.value("core", "synapse_memory_bytes") == 128 * 1024
    assert target.value("neuron", "threshold_bits") == 17 and target.value("neuron", "state_bits") == 24
    assert (target.value("synapse", "weight_exp_min"), target.value("synapse", "weight_exp_max")) == (-7, 7)
    assert dict(target.boards) == {"Kapoho Bay": 2, "Nahuku (8-chip)": 8, "Nahuku (32-chip)": 32,
                                   "Pohoiki Beach": 64, "Pohoiki Springs": 768}


def test_loihi1_nominal_costs_are_davies_2018_table_2():
    target = description.load("loihi1")
    nominal = {key: target.cost("energy", f"{key}_pj")[1] for key in COSTS}
    assert nominal == {"synaptic_op": 23.6, "neuron_update_active": 81.0, "neuron_update_inactive": 52.0,
                       "spike_message": 1.7, "hop_east_west": 3.0, "hop_north_south": 4.0}
    assert target.cost("latency", "synaptic_op_ns")[1] == 3.5
    assert target.cost("latency", "spike_message_ns")[1] == 2.1
    assert "pre-silicon" in target.value("energy", "basis")


def test_loihi2_costs_are_flagged_estimates_given_as_ranges():
    target = description.load("loihi2")
    assert target.value("energy", "basis").startswith("ESTIMATE")
    assert target.value("latency", "basis").startswith("ESTIMATE")
    for section, unit in (("energy", "pj"), ("latency", "ns")):
        for key in COSTS:
            low, _, high = target.cost(section, f"{key}_{unit}")
            assert low < high, (section, key)
    low, _, high = target.cost("energy", "static_power_w")
    assert low < high
    assert dict(target.boards)["Kapoho Point"] == 8
    assert target.optional("core", "max_input_axons") is None  # not published: not budgeted


def test_only_loihi2s_programmable_neurons_reset_by_subtraction():
    assert description.load("loihi2").value("neuron", "reset_modes") == ["zero", "subtract"]
    assert description.load("loihi1").value("neuron", "reset_modes") == ["zero"]
    assert description.load("loihi2").reset_modes == ("zero", "subtract")
    assert description.load("loihi1").reset_modes == ("zero",)


def _broken(tmp_path, substitutions):
    """loihi1.toml with each (pattern, replacement) applied once."""
    text = (description.TARGET_DIR / "loihi1.toml").read_text()
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        assert count == 1, pattern
    path = tmp_path / "broken.toml"
    path.write_text(text)
    return path


def test_a_target_that_states_no_reset_modes_has_only_the_zero_reset(tmp_path):
    assert description.load(str(_broken(tmp_path, [(r"^reset_modes = .*$", "")]))).reset_modes == ("zero",)


@pytest.mark.parametrize("substitutions, message", [
    ([(r"^max_neurons = 1024.*$", "")], "[core] max_neurons is missing"),
    ([(r"^synaptic_op_pj = .*$", "synaptic_op_pj = { low = 30.0, nominal = 23.6, high = 35.5 }")],
     "[energy] synaptic_op_pj must have low <= nominal <= high"),
    ([(r"^cores_per_tile = 4.*$", "cores_per_tile = 2")],
     "[chip] mesh 8 x 4 tiles x 2 cores per tile is not neuro_cores = 128"),
    ([(r"^max_input_axons = 4096.*$", "max_input_axons = -1")], "[core] max_input_axons must be a positive integer"),
    ([(r"^\[synapse_memory.dense\]$", ""), (r"^\[synapse_memory.sparse\]$", ""), (r"^index_bits = .*$", "")],
     "names no encoding"),
    ([(r"^chips = 768$", "chips = 0")], "(Pohoiki Springs) chips must be a positive integer"),
    ([(r"^reset_modes = .*$", 'reset_modes = ["zero", "to_rest"]')],
     "[neuron] reset_modes must be a non-empty list of zero, subtract"),
])
def test_a_malformed_target_file_is_one_line_naming_file_and_key(tmp_path, substitutions, message):
    path = _broken(tmp_path, substitutions)
    with pytest.raises(TargetError) as error:
        description.load(str(path))
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert len(str(error.value).splitlines()) == 1


def test_an_unknown_target_names_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'loihi9'; known targets: .*loihi1.*loihi2"):
        description.load("loihi9")
