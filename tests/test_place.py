"""Placement: per-core budgets with exact memory costs, multi-chip, and named-rule errors."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.reporting.text import format_placement
from snn_deploy.deploy.stages.place import (CoreBudget, axon_memory_bits, place, placement_report,
                                            sparse_index_bits)
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description
from snn_deploy.targets.bundle import (Bundle, CoreAssignment, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, PlacementReport, Timing)

from helpers import edited_target, target_fields


def network(sizes, weights=None, names=None):
    """A chain input -> populations; ``weights(index, shape)`` gives each connection's weights (default: ones)."""
    names = names or [f"fc{i + 1}" for i in range(len(sizes) - 1)]
    pops, conns, source = [], [], "input"
    for index, (size, name) in enumerate(zip(sizes[1:], names)):
        shape = (size, sizes[index])
        w = weights(index, shape) if weights else np.ones(shape, np.int32)
        pops.append(LifPopulation(name=name, size=size, du=0, dv=0, vth=100, bias_mant=0))
        conns.append(DenseConnection(name=f"{source}->{name}", source=source, target=name, weights=w))
        source = name
    return IntNetwork(input=InputLayer("input", sizes[0]), populations=tuple(pops), connections=tuple(conns),
                      output=source)


@pytest.fixture(scope="module")
def loihi1():
    return description.load("loihi1")


@pytest.fixture(scope="module")
def loihi2():
    return description.load("loihi2")


def test_axon_memory_is_groups_of_64_synapses_in_whole_64_bit_words(loihi1):
    budget = CoreBudget.of(loihi1)
    # 64 x 8 + 10 header bits = 522 -> 9 words; the 65th synapse opens a group of 8 + 10 bits -> 1 word.
    assert axon_memory_bits([0, 1, 16, 64, 65, 200], 8, budget).tolist() == [0, 64, 192, 576, 640, 1856]
    assert sparse_index_bits(np.array([1, 64, 1024, 4096, 8192]), budget).tolist() == [6, 6, 10, 12, -1]


def test_dense_layer_splits_by_synapse_memory_with_exact_costs(loihi1):
    placement = place(network([400, 400, 10]), loihi1)
    hidden, second, out = placement.cores
    assert [(c.population, c.chip, c.core, c.start, c.stop) for c in placement.cores] == [
        ("fc1", 0, 0, 0, 200), ("fc1", 0, 1, 200, 400), ("fc2", 0, 2, 0, 10)]
    # 400 input axons x 1856 bits (200 synapses each, dense) = 92,800 bytes; one core would need 2 x that
    # (400 synapses per axon: 6 full groups + 16 = 3648 bits), over the 131,072-byte budget.
    assert (hidden.memory_bytes, hidden.synapses, hidden.input_axons, hidden.output_axons, hidden.encoding) == (
        92_800, 80_000, 400, 200, "dense")
    assert second.memory_bytes == 92_800
    assert (out.memory_bytes, out.synapses, out.input_axons, out.output_axons) == (6_400, 4_000, 400, 0)
    assert placement.chips() == [{"chip": 0, "cores": 3, "neurons": 410, "synapses": 164_000,
                                  "memory_bytes": 192_000}]


def test_sparse_connectivity_takes_the_sparse_encoding(loihi1):
    def two_targets_per_input(index, shape):
        w = np.zeros(shape, np.int32)
        w[np.arange(shape[1]) % shape[0], np.arange(shape[1])] = 3
        w[(np.arange(shape[1]) + 1) % shape[0], np.arange(shape[1])] = -4
        return w

    core, = place(network([500, 1000], two_targets_per_input), loihi1).cores
    # 500 axons x one group of 2 synapses x (8 weight + 10 index bits) + 10 header bits = 46 -> 1 word
    assert (core.encoding, core.synapses, core.memory_bytes, core.input_axons) == ("sparse", 1000, 500 * 8, 500)


def test_neurons_per_core_split_into_nearly_equal_blocks(loihi1):
    placement = place(network([1, 3000]), loihi1)
    assert [(c.start, c.stop) for c in placement.cores] == [(0, 1000), (1000, 2000), (2000, 3000)]


def test_fan_out_per_core_splits_the_source_layer(loihi1):
    placement = place(network([10, 1024, 1024]), loihi1)
    first = [c for c in placement.cores if c.population == "fc1"]
    second = [c for c in placement.cores if c.population == "fc2"]
    # fc2: with 128 neurons per core, 1024 axons x 2 full groups (1152 bits) exceed 128 KB; 9 cores of
    # 113-114 neurons take 1024 axons x (576 + 448) bits = 128 KB exactly. So each fc1 neuron routes to
    # 9 cores: 9216 routes > 4096 on one core, 3 cores of 341-342 neurons stay under.
    assert len(second) == 9 and {c.memory_bytes for c in second} == {131_072}
    assert len(first) == 3
    assert [c.output_axons for c in first] == [341 * 9, 341 * 9, 342 * 9]
    assert all(c.output_axons <= 4096 for c in first)


def test_one_neuron_over_the_fan_in_limit_is_a_named_rule_error(loihi1):
    with pytest.raises(DeployError, match=r"layer fc1: even one neuron per core breaks input axons per core "
                                          r"\(5,000 > 4,096\)"):
        place(network([5000, 10]), loihi1)


def test_multi_chip_placement_and_the_error_that_suggests_it(loihi1):
    wide = network([1, 130 * 1024])
    with pytest.raises(DeployError) as error:
        place(wide, loihi1)
    message = str(error.value)
    assert message.startswith("the network does not fit on 1 loihi1 chip: layer fc1 has 133,120 neurons -> 130 cores")
    assert message.endswith("smallest fit: 2 chips (--max-chips 2); a Kapoho Bay board holds 2; "
                            "or shrink layer fc1 to at most 131,072 neurons to fit 1 chip")
    assert "\n" not in message
    placement = place(wide, loihi1, max_chips=2)
    assert placement.chips_used == 2 and placement.cores_used == 130
    assert (placement.cores[-1].chip, placement.cores[-1].core) == (1, 1)
    assert [chip["cores"] for chip in placement.chips()] == [128, 2]


def test_oversized_network_fails_with_named_rules_numbers_and_a_multi_chip_suggestion(loihi2):
    big = network([4096, 8192, 8192, 10])
    with pytest.raises(DeployError) as error:
        place(big, loihi2)
    message = str(error.value)
    assert "the network does not fit on 1 loihi2 chip" in message
    assert "layer fc1 needs 34.2 MB synapse memory (33,554,432 synapses) -> 274 cores" in message
    assert "layer fc2 needs 73.2 MB synapse memory (67,108,864 synapses) -> 586 cores" in message
    assert "loihi2 has 128 KB synapse memory and 8,192 neurons per core x 128 cores per chip" in message
    assert "total 861 cores; smallest fit: 7 chips (--max-chips 7); a Kapoho Point board holds 8" in message
    assert "the layers other than fc2 alone need 275 cores" in message
    fitted = place(big, loihi2, max_chips=7)
    assert (fitted.cores_used, fitted.chips_used) == (861, 7)


def test_pruning_suggestion_when_the_other_layers_leave_room(loihi2):
    with pytest.raises(DeployError, match=r"or prune layer fc1 to about [\d,]+ of its 25,165,824 synapses \(\d+\.\d%\) "
                                          r"to fit 1 chip"):
        place(network([3072, 8192]), loihi2)


def test_placement_is_deterministic(loihi1):
    rng = np.random.default_rng(3)
    net = network([784, 600, 10], lambda i, shape: rng.integers(-3, 4, shape))
    assert place(net, loihi1) == place(net, loihi1)


def test_chip_count_must_be_positive(loihi1):
    with pytest.raises(DeployError, match="at least 1, got 0"):
        place(network([4, 4]), loihi1, max_chips=0)


def test_per_core_table_collapses_long_runs_and_ends_with_the_chip_summary(loihi1):
    placement = place(network([784, 3000, 10]), loihi1)
    lines = format_placement(placement, loihi1)
    assert lines[0] == "placement on loihi1: 23 cores on 1 chip (128 cores per chip)"
    assert len(lines) == 2 + 3 + 1 + 1
    assert "1-20: 20 more cores of fc1, 136-137 neurons" in lines[3]
    assert "/ 4,096" in lines[2] and "/ 128 KB" in lines[2]
    assert lines[-1].startswith("  chip 0: 23 of 128 cores, 3,010 neurons, 2,382,000 synapses, synapse memory")
    report = placement_report(placement, loihi1)
    assert PlacementReport.from_dict(json.loads(json.dumps(dataclasses.asdict(report)))) == report
    assert report.layers["fc1"].cores == 22 and report.chips[0].memory_budget_bytes == 128 * 131_072


def test_bundle_round_trips_the_placement_and_still_reads_pre_placement_fields(tmp_path, loihi1):
    net = network([4, 6, 2])
    timing = Timing(1, 20)  # positional: only the step count matters here
    placed = Bundle(**target_fields("loihi1"), network=net, placement=place(net, loihi1), timing=timing)
    bundle_io.save(placed, tmp_path / "placed.bundle")
    assert bundle_io.load(tmp_path / "placed.bundle").placement == placed.placement
    # A placement written before the per-core fields existed has only these four keys and the same checksum.
    bare = Bundle(**target_fields("loihi1"), network=net, timing=timing,
                  placement=Placement("loihi1", (CoreAssignment(core=0, population="fc1", start=0, stop=6),)))
    bundle_io.save(bare, tmp_path / "bare.bundle")
    with zipfile.ZipFile(tmp_path / "bare.bundle") as archive, archive.open("manifest.npy") as handle:
        manifest = json.loads(str(np.lib.format.read_array(handle)))
    assert manifest["placement"]["cores"] == [{"core": 0, "population": "fc1", "start": 0, "stop": 6}]
    assert bundle_io.load(tmp_path / "bare.bundle").checksum == bare.checksum


def test_a_chip_holds_no_more_neurons_or_synapses_than_the_target_states(tmp_path):
    """[chip] max_neurons 1000: after fc1 (600 neurons, 1 core) and two 150-neuron cores of fc2, the next
    core of fc2 starts chip 1, though chip 0 has cores to spare."""
    target = description.load(str(edited_target(tmp_path, [(r"^max_neurons = 131_072.*$", "max_neurons = 1000")])))
    net = network([2, 600, 600])
    placement = place(net, target, max_chips=2)
    assert [(c.population, c.chip, c.core, c.neurons) for c in placement.cores] == [
        ("fc1", 0, 0, 600), ("fc2", 0, 1, 150), ("fc2", 0, 2, 150), ("fc2", 1, 0, 150), ("fc2", 1, 1, 150)]
    assert [chip["neurons"] for chip in placement.chips()] == [900, 300]
    with pytest.raises(DeployError, match=r"does not fit on 1 loihi1 chip: a loihi1 chip holds at most 1,000 neurons "
                                          r"and 130,000,000 synapses \(\[chip\] max_neurons, max_synapses\), so its 5 "
                                          r"cores need 2 chips \(--max-chips 2\)"):
        place(net, target)
    # The shipped loihi1 (131,072 neurons per chip) holds all five cores on one chip.
    assert place(net, description.load("loihi1")).chips_used == 1


def test_a_core_beyond_a_whole_chips_synapses_is_refused(tmp_path):
    target = description.load(str(edited_target(tmp_path, [(r"^max_synapses = .*$", "max_synapses = 50_000")])))
    with pytest.raises(DeployError, match=r"a core of layer fc2 holds 90,000 synapses, more than a whole chip "
                                          r"\(50,000, \[chip\] max_synapses\)"):
        place(network([2, 600, 600]), target, max_chips=4)
