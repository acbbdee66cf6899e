"""Target descriptions: the shipped files, their cited figures, every key read, one-line errors for broken
files; what a target decides through them (widths, weight exponents, back ends); and the import graph of
targets/."""

import ast
import json
import tomllib
from dataclasses import fields

import numpy as np
import pytest

from snn_deploy.deploy.artifacts.discrete import Discretization
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.quantize import quantize_layer
from snn_deploy.targets import backends, description
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets.bundle import (Bundle, BundleError, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, Timing)
from snn_deploy.targets.description import COSTS, TargetError
from snn_deploy.targets.fixed_point import Widths

from helpers import edited_target, target_fields


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


def test_a_target_that_states_no_reset_modes_has_only_the_zero_reset(tmp_path):
    assert description.load(str(edited_target(tmp_path, [(r"^reset_modes = .*$", "")]))).reset_modes == ("zero",)


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
    ([(r"^decay_bits = 12.*$", "")], "[neuron] decay_bits is missing"),
    ([(r"^decay_bits = 12", 'decay_bits = 12\nfire_once = "refractory"')],
     "[neuron] fire_once is not a key snn-deploy reads"),
    ([(r"^\[energy\]$", "[energy]\ncomment = 'x'")], "[energy] comment is not a key snn-deploy reads"),
    ([(r"^arithmetic = .*$", 'arithmetic = "float32"')], "arithmetic must name an arithmetic snn-deploy implements"),
    ([(r"^backends = .*$", 'backends = ["bitsim", "spinnaker"]')],
     "backends must be a non-empty list of distinct back ends from bitsim, lava, loihi2"),
    ([(r"^dense_delay_steps = 1", "dense_delay_steps = 2")],
     "[synapse] dense_delay_steps must be 1, the one step by which the step schedule"),
    ([(r"^graded_spikes = false", "graded_spikes = 0")], "[synapse] graded_spikes must be true or false"),
    ([(r"^current_decay_offset = 1", "current_decay_offset = -1")],
     "[neuron] current_decay_offset must be a non-negative integer"),
    ([(r"^weight_exp_min = -7", "weight_exp_min = 8")], "weight_exp_min 8 is above weight_exp_max 7"),
    ([(r"^state_bits = 24", "state_bits = 40")], "state_bits 40 exceeds the 32-bit register"),
])
def test_a_malformed_target_file_is_one_line_naming_file_and_key(tmp_path, substitutions, message):
    path = edited_target(tmp_path, substitutions)
    with pytest.raises(TargetError) as error:
        description.load(str(path))
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert len(str(error.value).splitlines()) == 1


def test_an_unknown_target_names_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'loihi9'; known targets: .*loihi1.*loihi2"):
        description.load("loihi9")


# --- every key is read -------------------------------------------------------------------------

def _key_paths(table: dict, section: str = description.TOP):
    """Every key of a parsed description as a dotted path, descending into the tables that are sections."""
    for key, value in table.items():
        path = f"{section}.{key}" if section else key
        if isinstance(value, dict) and path in description.sections():
            yield from _key_paths(value, path)
        else:
            yield path


@pytest.mark.parametrize("name", description.names())
def test_every_key_of_a_shipped_target_is_one_the_code_reads(name):
    paths = set(_key_paths(tomllib.loads((description.TARGET_DIR / f"{name}.toml").read_text())))
    assert paths - description.known_keys() == set()
    required = {f"{section}.{key}" if section else key for section, keys in description.REQUIRED.items()
                for key in keys}
    assert required - paths == set()


def test_the_widths_are_required_neuron_and_synapse_keys():
    stated = {**description.REQUIRED["neuron"], **description.REQUIRED["synapse"]}
    assert {f.name for f in fields(Widths)} <= set(stated)


def test_the_two_loihis_differ_in_widths_by_their_data():
    loihi1, loihi2 = description.load("loihi1").widths, description.load("loihi2").widths
    assert (loihi1.weight_exp_min, loihi1.graded_spikes) == (-7, False)
    assert (loihi2.weight_exp_min, loihi2.graded_spikes) == (-8, True)
    assert (loihi1.state_bits, loihi1.decay_bits, loihi1.threshold_shift, loihi1.activation_shift) == (24, 12, 6, 6)
    assert loihi1.current_decay_offset == loihi2.current_decay_offset == 1


# --- the weight exponent --------------------------------------------------------------------------

def test_the_compiler_keeps_weight_exponents_within_the_targets_range():
    """A block 1/30,000 as strong as the layer's other input needs exponent -8: loihi2 has it, loihi1 stops at -7."""
    disc = Discretization("out", (("strong", np.array([[1.0, 0.5], [0.8, 1.0]])), ("weak", np.array([[2e-5], [3e-5]]))),
                          alpha_u=np.full(2, 0.9), alpha_v=np.full(2, 0.9), drive=np.zeros(2), threshold=np.ones(2),
                          reset="zero", fire_once=True)
    exponents = {name: {conn.name: conn.weight_exp for conn in quantize_layer(
        disc, description.load(name), {"strong": True, "weak": True}, 100)[1]} for name in ("loihi1", "loihi2")}
    assert exponents == {"loihi1": {"strong->out": 7, "weak->out": -7}, "loihi2": {"strong->out": 7, "weak->out": -8}}
    # A bundle in loihi1's widths cannot hold the -8 either.
    network = IntNetwork(InputLayer("input", 1), (LifPopulation("out", 1, du=0, dv=0, vth=10, bias_mant=0),),
                         (DenseConnection("weak", "input", "out", np.array([[100]]), weight_exp=-8),), "out")
    with pytest.raises(BundleError, match=r"connection 'weak': weight_exp -8 is outside the target's \[-7, 7\]"):
        Bundle(**target_fields("loihi1"), network=network, placement=Placement("loihi1", ()), timing=Timing(1, 4))


def test_graded_spikes_are_refused_on_a_target_without_them():
    network = IntNetwork(InputLayer("input", 1), (LifPopulation("out", 1, du=0, dv=0, vth=10, bias_mant=0),),
                         (DenseConnection("graded", "input", "out", np.array([[100]]), num_message_bits=8),), "out")
    fields_of = {name: target_fields(name) for name in ("loihi1", "loihi2")}
    Bundle(**fields_of["loihi2"], network=network, placement=Placement("loihi2", ()), timing=Timing(1, 4))
    with pytest.raises(BundleError, match="connection 'graded' carries graded spikes .* the target has none"):
        Bundle(**fields_of["loihi1"], network=network, placement=Placement("loihi1", ()), timing=Timing(1, 4))


# --- back ends ------------------------------------------------------------------------------------

def _loihi1_bundle() -> Bundle:
    network = IntNetwork(InputLayer("input", 2), (LifPopulation("out", 2, du=100, dv=100, vth=10, bias_mant=0),),
                         (DenseConnection("dense", "input", "out", np.full((2, 2), 50)),), "out")
    return Bundle(**target_fields("loihi1"), network=network, placement=Placement("loihi1", ()), timing=Timing(1, 8))


def test_a_back_end_the_target_does_not_list_is_refused_by_name():
    bundle = _loihi1_bundle()
    assert bundle.backends == ("bitsim",)
    assert backends.get("bitsim", bundle).run
    for name in ("lava", "loihi2"):
        with pytest.raises(BundleError) as refused:
            backends.get(name, bundle)
        assert str(refused.value) == f"the loihi1 bundle runs on bitsim; its target does not list {name}"


def test_the_cli_refuses_a_back_end_the_target_does_not_list_with_exit_2(tmp_path, capsys):
    bundle_io.save(_loihi1_bundle(), tmp_path / "loihi1.bundle")
    out = tmp_path / "run.h5"
    command = ["run", str(tmp_path / "loihi1.bundle"), "--data", "random", "--samples", "2", "-o", str(out)]
    assert main([*command, "--backend", "lava"]) == 2
    error = capsys.readouterr().err
    assert "the loihi1 bundle runs on bitsim; its target does not list lava" in error
    assert len(error.splitlines()) == 1 and not out.exists()
    assert main([*command, "--backend", "bitsim"]) == 0 and out.exists()


def test_a_bundle_keeps_its_widths_and_back_ends_and_an_old_format_is_named(tmp_path):
    bundle = _loihi1_bundle()
    bundle_io.save(bundle, tmp_path / "b.bundle")
    loaded = bundle_io.load(tmp_path / "b.bundle")
    assert (loaded.widths, loaded.backends) == (description.load("loihi1").widths, ("bitsim",))
    with np.load(tmp_path / "b.bundle", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    manifest = json.loads(str(arrays.pop("manifest")))
    manifest["format_version"] = 1
    np.savez(tmp_path / "old.bundle.npz", manifest=np.array(json.dumps(manifest)), **arrays)
    with pytest.raises(BundleError, match="has bundle format version 1; this snn-deploy reads version 2"):
        bundle_io.load(tmp_path / "old.bundle.npz")


# --- the import graph -------------------------------------------------------------------------------

def _imports_within_targets() -> dict[str, set[str]]:
    """Each module of targets/ -> the modules of targets/ it imports anywhere (functions included)."""
    modules = {path.stem for path in description.TARGET_DIR.glob("*.py")}
    graph = {}
    for name in modules:
        tree = ast.parse((description.TARGET_DIR / f"{name}.py").read_text())
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                graph[name] |= {node.module} if node.module else {alias.name for alias in node.names}
    return {name: {target for target in targets if target in modules} for name, targets in graph.items()}


def test_targets_has_no_import_cycle_and_the_lava_worker_imports_neither_driver():
    graph = _imports_within_targets()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            assert state.get(target) != "open", f"import cycle: {' -> '.join(path + [target])}"
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not graph["lava_worker"] & {"lava", "loihi2"}
    assert "lava_wire" in graph["lava"] and "lava_wire" in graph["lava_worker"] and "lava" in graph["loihi2"]
