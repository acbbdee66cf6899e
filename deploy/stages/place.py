"""place: partition each population's neurons onto cores, within every per-core budget the target states.

Rules, each read from the target file (``[core]``, ``[chip]``), each checked where the target states it:
  neurons per core         max_neurons
  synapse memory per core  synapse_memory_bytes, costed by ``[synapse_memory]`` (below)
  input axons per core     max_input_axons: source neurons with at least one synapse on the core (fan-in)
  output axons per core    max_output_axons: (neuron, destination core) routes leaving the core (fan-out)
  cores per chip           [chip] neuro_cores
  neurons per chip         [chip] max_neurons
  synapses per chip        [chip] max_synapses

Each population gets cores of its own: its neurons are split into k nearly equal consecutive blocks,
one per core, with k the fewest for which every block fits (a search over k). Fan-out depends on where
the destinations sit, so populations are sized from the output back to the input; cores are then
numbered in network order and filled one chip after another: a chip is full when it has all its
cores, or when the next core would take it past its neurons or synapses.

Synapse memory. Each input axon of a core stores its synapses in groups of up to ``group_synapses``;
a group takes (synapses x bits per synapse + ``group_header_bits``) rounded up to whole words. The
dense encoding stores a weight for every neuron on the core; the sparse one stores only the nonzero
weights, each with an index wide enough to address the core's neurons. Every (core, connection) takes
the cheaper. A delayed connection stores each synapse's delay beside its weight: ``[synapse] delay_bits``
more bits per synapse (estimate, see the target file). The nonzero counts per (block, source neuron) come from one numpy reduction per block:
no Python loop ever visits single synapses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...targets.bundle import (ChipUse, CoreAssignment, DenseConnection, IntNetwork, LayerPlacement, LifPopulation,
                               Placement, PlacementReport)
from ...targets.description import Target
from ..errors import DeployError

NEURONS, MEMORY, INPUT_AXONS, OUTPUT_AXONS = ("neurons per core", "synapse memory per core",
                                              "input axons per core", "output axons per core")


@dataclass(frozen=True)
class ChipBudget:
    """What one chip of the target holds: its cores, and the neurons and synapses all of them together."""

    cores: int
    neurons: int
    synapses: int

    @classmethod
    def of(cls, target: Target) -> "ChipBudget":
        return cls(cores=int(target.value("chip", "neuro_cores")), neurons=int(target.value("chip", "max_neurons")),
                   synapses=int(target.value("chip", "max_synapses")))


@dataclass(frozen=True)
class CoreBudget:
    """What one core of the target holds (None: the target states no such limit)."""

    neurons: int
    memory_bits: int
    input_axons: int | None
    output_axons: int | None
    word_bits: int
    group_synapses: int
    group_header_bits: int
    dense: bool
    sparse_index_bits: tuple[int, int] | None

    @classmethod
    def of(cls, target: Target) -> "CoreBudget":
        encodings = target.spec["synapse_memory"]  # validated by description.load
        return cls(neurons=int(target.value("core", "max_neurons")),
                   memory_bits=8 * int(target.value("core", "synapse_memory_bytes")),
                   input_axons=target.optional("core", "max_input_axons"),
                   output_axons=target.optional("core", "max_output_axons"),
                   word_bits=int(target.value("synapse_memory", "word_bits")),
                   group_synapses=int(target.value("synapse_memory", "group_synapses")),
                   group_header_bits=int(target.value("synapse_memory", "group_header_bits")),
                   dense="dense" in encodings,
                   sparse_index_bits=tuple(encodings["sparse"]["index_bits"]) if "sparse" in encodings else None)


@dataclass(frozen=True)
class Synapses:
    """Where one connection has synapses: ``present`` is (target size, source size), 1 where the weight
    is nonzero (uint8, so that block sums run at memory speed); ``weight_bits``: what one synapse stores,
    its weight and, if delayed, its delay."""

    name: str
    present: np.ndarray
    weight_bits: int

    @classmethod
    def of(cls, conn: DenseConnection, delay_bits: int) -> "Synapses":
        return cls(conn.name, (conn.weights != 0).view(np.uint8),
                   conn.num_weight_bits + (delay_bits if conn.delays is not None else 0))


@dataclass(frozen=True)
class Blocks:
    """One population cut into ``len(bounds) - 1`` consecutive blocks of neurons, one per core."""

    bounds: np.ndarray  # (k + 1,) neuron index where each block starts, then the population size
    synapses: np.ndarray  # (k,) nonzero synapses into each block
    memory_bits: np.ndarray  # (k,) synapse memory each block takes
    encoding: tuple[str, ...]  # (k,) "dense", "sparse" or both joined by "+" (one per incoming connection)
    input_axons: np.ndarray  # (k,)
    output_axons: np.ndarray  # (k,)
    reached: dict[str, np.ndarray]  # incoming connection -> (source size,) blocks each source neuron reaches
    violations: tuple[tuple[str, str], ...]  # (rule, "worst > limit") some block breaks; empty when all fit

    @property
    def count(self) -> int:
        return len(self.bounds) - 1


def axon_memory_bits(synapses, bits_per_synapse, budget: CoreBudget) -> np.ndarray:
    """Bits one input axon takes to store ``synapses`` synapses (elementwise; 0 for none)."""
    synapses = np.asarray(synapses, dtype=np.int64)
    bits_per_synapse = np.asarray(bits_per_synapse, dtype=np.int64)
    group, header, word = budget.group_synapses, budget.group_header_bits, budget.word_bits
    full_groups, rest = np.divmod(synapses, group)
    words_per_full_group = -(-(group * bits_per_synapse + header) // word)
    words_rest = np.where(rest > 0, -(-(rest * bits_per_synapse + header) // word), 0)
    return (full_groups * words_per_full_group + words_rest) * word


def sparse_index_bits(neurons: np.ndarray, budget: CoreBudget) -> np.ndarray:
    """Index width the sparse encoding needs to address ``neurons`` neurons; -1 where it cannot."""
    low, high = budget.sparse_index_bits
    needed = np.maximum(low, np.ceil(np.log2(np.maximum(neurons, 2))).astype(np.int64))
    return np.where(needed <= high, needed, -1)


def split(size: int, count: int) -> np.ndarray:
    """Bounds of ``count`` consecutive blocks of nearly equal size (sizes differ by at most one)."""
    return (np.arange(count + 1, dtype=np.int64) * size) // count


def _encode(counts: np.ndarray, sizes: np.ndarray, weight_bits: int,
            budget: CoreBudget) -> tuple[np.ndarray, list[str]]:
    """Memory bits of one connection per block in its cheaper encoding, and that encoding's name."""
    axons = np.count_nonzero(counts, axis=1)
    costs, names = [], []
    if budget.dense:
        costs.append(axons * axon_memory_bits(sizes, weight_bits, budget))
        names.append("dense")
    if budget.sparse_index_bits is not None:
        index_bits = sparse_index_bits(sizes, budget)
        candidates = index_bits >= 0
        if costs:  # cost sparse only where its floor (weight and index bits, no headers) undercuts dense
            candidates &= counts.sum(axis=1, dtype=np.int64) * (weight_bits + index_bits) < costs[0]
        sparse = np.full(len(sizes), np.iinfo(np.int64).max)
        rows = np.flatnonzero(candidates)
        sparse[rows] = axon_memory_bits(counts[rows], weight_bits + index_bits[rows, None], budget).sum(axis=1)
        costs.append(sparse)
        names.append("sparse")
    costs = np.stack(costs)
    best = np.argmin(costs, axis=0)
    return costs[best, np.arange(len(sizes))], [names[i] for i in best]


def block_stats(pop: LifPopulation, incoming: list[Synapses], fan_out: np.ndarray, count: int,
                budget: CoreBudget) -> Blocks:
    """Cut ``pop`` into ``count`` blocks and measure each against the core budget.

    ``fan_out`` is, per neuron of ``pop``, the number of destination cores its spikes go to.
    """
    bounds = split(pop.size, count)
    sizes = np.diff(bounds)
    synapses = np.zeros(count, np.int64)
    memory = np.zeros(count, np.int64)
    axons = np.zeros(count, np.int64)
    encodings: list[list[str]] = [[] for _ in range(count)]
    reached = {}
    for conn in incoming:
        counts = np.empty((count, conn.present.shape[1]), np.int32)
        for block, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            np.add.reduce(conn.present[start:stop], axis=0, dtype=np.int32, out=counts[block])
        bits, names = _encode(counts, sizes, conn.weight_bits, budget)
        memory += bits
        synapses += counts.sum(axis=1, dtype=np.int64)
        axons += np.count_nonzero(counts, axis=1)
        for block, name in enumerate(names):
            encodings[block].append(name)
        reached[conn.name] = np.count_nonzero(counts, axis=0)
    routes = np.concatenate([[0], np.cumsum(fan_out, dtype=np.int64)])
    out_axons = routes[bounds[1:]] - routes[bounds[:-1]]
    return Blocks(bounds=bounds, synapses=synapses, memory_bits=memory,
                  encoding=tuple("+".join(dict.fromkeys(e)) for e in encodings), input_axons=axons,
                  output_axons=out_axons, reached=reached,
                  violations=_violations(sizes, memory, axons, out_axons, budget))


def _violations(neurons: np.ndarray, memory_bits: np.ndarray, input_axons: np.ndarray, output_axons: np.ndarray,
                budget: CoreBudget) -> tuple[tuple[str, str], ...]:
    """Each rule that some core breaks, with the worst core's number and the limit."""
    broken = []
    for rule, used, limit in ((NEURONS, neurons, budget.neurons), (MEMORY, memory_bits, budget.memory_bits),
                              (INPUT_AXONS, input_axons, budget.input_axons),
                              (OUTPUT_AXONS, output_axons, budget.output_axons)):
        if limit is not None and used.size and used.max() > limit:
            shown = ((readable_bytes(-(-int(used.max()) // 8)), readable_bytes(limit // 8)) if rule == MEMORY
                     else (f"{int(used.max()):,}", f"{limit:,}"))
            broken.append((rule, f"{shown[0]} > {shown[1]}"))
    return tuple(broken)


def _one_neuron_per_core(pop: LifPopulation, incoming: list[Synapses], fan_out: np.ndarray,
                         budget: CoreBudget) -> tuple[tuple[str, str], ...]:
    """The rules a core holding a single neuron of ``pop`` would break (computed per neuron, not per block)."""
    memory = np.zeros(pop.size, np.int64)
    axons = np.zeros(pop.size, np.int64)
    for conn in incoming:
        per_neuron = np.add.reduce(conn.present, axis=1, dtype=np.int64)
        one_synapse_bits = _encode(np.ones((1, 1), np.int32), np.ones(1, np.int64), conn.weight_bits, budget)[0][0]
        memory += per_neuron * one_synapse_bits
        axons += per_neuron
    return _violations(np.ones(pop.size, np.int64), memory, axons, fan_out, budget)


def size_population(pop: LifPopulation, incoming: list[Synapses], fan_out: np.ndarray,
                    budget: CoreBudget) -> tuple[Blocks, str]:
    """The fewest blocks that fit, and the rule that made it that many ("" for one core).

    The search starts at the lower bounds (neurons, and every nonzero weight stored in at least its
    weight bits), gallops up by 1/8 until the blocks fit, then bisects back to the fewest that fit.
    One neuron per core always fits once ``_one_neuron_per_core`` finds nothing broken.
    """
    broken = _one_neuron_per_core(pop, incoming, fan_out, budget)
    if broken:
        raise DeployError(f"layer {pop.name}: even one neuron per core breaks "
                          f"{'; '.join(f'{rule} ({numbers})' for rule, numbers in broken)}; "
                          "split its inputs over several layers or prune its weights")
    by_neurons = -(-pop.size // budget.neurons)
    by_memory = -(-sum(int(np.add.reduce(c.present, axis=None, dtype=np.int64)) * c.weight_bits for c in incoming)
                  // budget.memory_bits)
    count = min(pop.size, max(1, by_neurons, by_memory))
    blocks = block_stats(pop, incoming, fan_out, count, budget)
    if not blocks.violations:
        return blocks, (NEURONS if count == by_neurons > 1 else MEMORY if count > 1 else "")
    failed = blocks
    while blocks.violations:
        failed = blocks
        count = min(pop.size, max(count + 1, -(-count * 9 // 8)))
        blocks = block_stats(pop, incoming, fan_out, count, budget)
    low, high = failed.count, blocks.count
    while high - low > 1:
        middle = block_stats(pop, incoming, fan_out, (low + high) // 2, budget)
        if middle.violations:
            low, failed = middle.count, middle
        else:
            high, blocks = middle.count, middle
    return blocks, failed.violations[0][0]


# Feed-forward networks are placed in one pass; recurrent ones settle within a few.
MAX_PLACEMENT_PASSES = 4


def place(network: IntNetwork, target: Target, max_chips: int = 1) -> Placement:
    """Place every population on cores of at most ``max_chips`` chips, or raise a DeployError that
    names each layer's need, the rule that sets it, the smallest number of chips that fits and what
    to prune instead."""
    if max_chips < 1:
        raise DeployError(f"the chip count must be at least 1, got {max_chips}")
    budget = CoreBudget.of(target)
    depth = network.layer_depth()
    # A target without delay_bits has no delayed connections: quantize refuses them.
    delay_bits = int(target.optional("synapse", "delay_bits") or 0)
    incoming = {pop.name: [Synapses.of(c, delay_bits) for c in network.connections if c.target == pop.name]
                for pop in network.populations}
    # A neuron's output axons depend on how its targets are split, so targets are sized first. A
    # recurrent target is not sized yet: the first pass counts one route per neuron that reaches it,
    # and passes repeat with the previous pass's splits until the core counts settle.
    sized: dict[str, tuple[Blocks, str]] = {}
    for _ in range(MAX_PLACEMENT_PASSES):
        previous = {name: blocks.count for name, (blocks, _) in sized.items()}
        estimated = False  # a fan-out counted before its target was sized (recurrence)
        for pop in sorted(network.populations, key=lambda p: -depth.get(p.name, 0)):
            fan_out = np.zeros(pop.size, np.int64)
            for conn in network.connections:
                if conn.source == pop.name:
                    estimated |= conn.target not in sized
                    fan_out += (sized[conn.target][0].reached[conn.name] if conn.target in sized
                                else np.count_nonzero(conn.weights, axis=0) > 0)
            sized[pop.name] = size_population(pop, incoming[pop.name], fan_out, budget)
        if not estimated or previous == {name: blocks.count for name, (blocks, _) in sized.items()}:
            break
    cores_per_chip = int(target.value("chip", "neuro_cores"))
    total = sum(blocks.count for blocks, _ in sized.values())
    if total > max_chips * cores_per_chip:
        raise DeployError(_does_not_fit(network, sized, total, max_chips, target, budget))
    assignments = []
    for pop in network.populations:
        blocks = sized[pop.name][0]
        for block in range(blocks.count):
            assignments.append(CoreAssignment(
                core=0, population=pop.name, start=int(blocks.bounds[block]), stop=int(blocks.bounds[block + 1]),
                synapses=int(blocks.synapses[block]), memory_bytes=int(-(-blocks.memory_bits[block] // 8)),
                encoding=blocks.encoding[block], input_axons=int(blocks.input_axons[block]),
                output_axons=int(blocks.output_axons[block])))
    chip_budget = ChipBudget.of(target)
    cores = fill_chips(assignments, chip_budget)
    chips = max(core.chip for core in cores) + 1 if cores else 0
    if chips > max_chips:
        raise DeployError(f"the network does not fit on {max_chips} {target.name} chip{'s' if max_chips > 1 else ''}: "
                          f"a {target.name} chip holds at most {chip_budget.neurons:,} neurons and "
                          f"{chip_budget.synapses:,} synapses ([chip] max_neurons, max_synapses), so its {total:,} "
                          f"cores need {chips} chips (--max-chips {chips})")
    return Placement(target=target.name, cores=cores)


def fill_chips(cores: list[CoreAssignment], budget: ChipBudget) -> tuple[CoreAssignment, ...]:
    """Number the cores, in order, one chip after another: the next chip starts when this one has all its
    cores or the next core would take it past its neurons or synapses. A core beyond a whole chip's
    neurons or synapses is a DeployError."""
    numbered, chip, on_chip, neurons, synapses = [], 0, 0, 0, 0
    for core in cores:
        for used, limit, what in ((core.neurons, budget.neurons, "neurons"),
                                  (core.synapses, budget.synapses, "synapses")):
            if used > limit:
                raise DeployError(f"a core of layer {core.population} holds {used:,} {what}, more than a whole chip "
                                  f"({limit:,}, [chip] max_{what})")
        if (on_chip == budget.cores or neurons + core.neurons > budget.neurons
                or synapses + core.synapses > budget.synapses):
            chip, on_chip, neurons, synapses = chip + 1, 0, 0, 0
        numbered.append(replace(core, chip=chip, core=on_chip))
        on_chip, neurons, synapses = on_chip + 1, neurons + core.neurons, synapses + core.synapses
    return tuple(numbered)


def _does_not_fit(network: IntNetwork, sized: dict[str, tuple[Blocks, str]], total: int, max_chips: int,
                  target: Target, budget: CoreBudget) -> str:
    cores_per_chip = int(target.value("chip", "neuro_cores"))
    needs = []
    for pop in network.populations:
        blocks, rule = sized[pop.name]
        cores = f"{blocks.count:,} core{'s' if blocks.count > 1 else ''}"
        if rule == MEMORY:
            needs.append(f"layer {pop.name} needs {readable_bytes(int(blocks.memory_bits.sum()) // 8)} synapse memory "
                         f"({int(blocks.synapses.sum()):,} synapses) -> {cores}")
        elif rule == NEURONS:
            needs.append(f"layer {pop.name} has {pop.size:,} neurons -> {cores}")
        elif rule:
            needs.append(f"layer {pop.name} needs {cores} ({rule})")
        else:
            needs.append(f"layer {pop.name} needs 1 core")
    chips = -(-total // cores_per_chip)
    boards = [(name, size) for name, size in target.boards if size >= chips]
    board = (f"; a {boards[0][0]} board holds {boards[0][1]}" if boards else
             f"; more than the largest system listed ({target.boards[-1][0]}, {target.boards[-1][1]} chips)"
             if target.boards else "")
    largest = max(network.populations, key=lambda p: sized[p.name][0].count)
    blocks, rule = sized[largest.name]
    room = max_chips * cores_per_chip - (total - blocks.count)
    synapses = int(blocks.synapses.sum())
    fit = f"to fit {max_chips} chip{'s' if max_chips > 1 else ''}"
    if room < 1:
        shrink = f"; the layers other than {largest.name} alone need {total - blocks.count:,} cores"
    elif rule == NEURONS:
        shrink = f"; or shrink layer {largest.name} to at most {room * budget.neurons:,} neurons {fit}"
    else:
        keep = synapses * room // blocks.count
        shrink = (f"; or prune layer {largest.name} to about {keep:,} of its {synapses:,} synapses "
                  f"({100 * keep / max(synapses, 1):.1f}%) {fit}")
    return (f"the network does not fit on {max_chips} {target.name} chip{'s' if max_chips > 1 else ''}: "
            + "; ".join(needs)
            + f"; {target.name} has {readable_bytes(budget.memory_bits // 8)} synapse memory and {budget.neurons:,} neurons "
              f"per core x {cores_per_chip} cores per chip; total {total:,} cores; smallest fit: {chips} chips "
              f"(--max-chips {chips}){board}{shrink}")


def readable_bytes(count: int) -> str:
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{int(count)} B"


def placement_report(placement: Placement, target: Target) -> PlacementReport:
    """The placement in numbers for the compile report: per layer and per chip, with budgets."""
    budget = CoreBudget.of(target)
    layers: dict[str, dict] = {}
    for core in placement.cores:
        layer = layers.setdefault(core.population, {"cores": 0, "neurons": 0, "synapses": 0, "memory_bytes": 0,
                                                    "encodings": []})
        layer["cores"] += 1
        layer["neurons"] += core.neurons
        layer["synapses"] += core.synapses
        layer["memory_bytes"] += core.memory_bytes
        if core.encoding not in layer["encodings"]:
            layer["encodings"].append(core.encoding)
    cores_per_chip = int(target.value("chip", "neuro_cores"))
    return PlacementReport(
        target=placement.target, cores_used=placement.cores_used, chips_used=placement.chips_used,
        budget_per_core={"neurons": budget.neurons, "memory_bytes": budget.memory_bits // 8,
                         "input_axons": budget.input_axons, "output_axons": budget.output_axons},
        layers={name: LayerPlacement(**layer) for name, layer in layers.items()},
        chips=tuple(ChipUse(**chip, cores_budget=cores_per_chip,
                            memory_budget_bytes=cores_per_chip * budget.memory_bits // 8) for chip in placement.chips()))
