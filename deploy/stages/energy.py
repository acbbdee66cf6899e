"""energy: joules, latency and operation counts per inference, from the measured activity of a run.

From the bundle (network and placement), the spike record of a run (bitsim or Lava), its input
spikes and the target's cost tables (``[energy]``, ``[latency]`` in its TOML file). All counts are
means per inference (per sample). A layer is a population together with the connection into it.

Counts per layer:
  synaptic_ops              spikes of the source x their nonzero fan-out (as verify's activity)
  neuron_updates            every neuron, every step (the chip updates them all), split into
    _active / _inactive     active: state possibly nonzero. From recorded traces (u or v nonzero) when
                            the record has them; otherwise from the first step a synaptic input reaches
                            the neuron to the end of the run, an upper bound (the state may decay to
                            zero sooner). Neurons with a nonzero bias are active every step.
  spike_messages            one per (source spike, destination core holding synapses of that source)
  hops_east_west, _north_south   mesh hops of those messages: the tile distance between the source's
                            core and the destination core on the chip's mesh (``[chip] mesh``,
                            ``cores_per_tile``); messages from the input enter from the host and
                            their route is not counted
  messages_between_chips    messages whose source and destination cores sit on different chips
                            (counted; no cited per-message energy exists, so they cost only as a message)
Energy (dynamic) = sum of count x cost, for the target's low, nominal and high costs; static energy =
static power per chip x chips used x run time (all steps). Latency: a step lasts as long as its
busiest core (synaptic ops + neuron updates + outgoing messages) plus its longest mesh route plus the
time-step barrier; the latency per inference sums the steps up to the decision (``decisions_step``:
the step each sample decided, <= 0 for none, which counts the whole run).

Alongside: NeuroBench counts (``NEUROBENCH_SOURCE``) and the same network run as a conventional ANN,
one dense pass of multiply-accumulates (``ANN_BASIS``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...targets import decision, record as record_io
from ...targets.bundle import Bundle, CoreAssignment, DenseConnection
from ...targets.description import COSTS, Target
from ...targets.record import SpikeEvents, SpikeRecord
from ..artifacts.energy import (AnnBaseline, EnergyBasis, EnergyEstimate, EnergySplit, LayerEnergy, Latency,
                                NeuroBench, OperationCounts, Range, TotalEnergy)
from ..errors import DeployError

LEVELS = ("low", "nominal", "high")

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm at 0.9 V:
# arithmetic only, memory access excluded.
MAC_ENERGY_J = {"fp32": (3.7 + 0.9) * 1e-12, "int8": (0.2 + 0.03) * 1e-12}
ANN_BASIS = ("the same layers as one dense ANN pass (inputs x outputs MACs per layer) x energy per MAC from "
             "Horowitz, ISSCC 2014, 45 nm, 0.9 V: fp32 multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ; int8 multiply "
             "0.2 pJ + add 0.03 pJ = 0.23 pJ; arithmetic only, memory access excluded")
NEUROBENCH_SOURCE = ("NeuroBench (Yik et al., Nature Communications 2025; neurobench.metrics.workload): "
                     "effective synaptic operations count (nonzero input, nonzero weight) pairs, as ACs for "
                     "spiking inputs and MACs for graded ones, 'dense' counting every pair every step; "
                     "activation sparsity = 1 - spikes / (neurons x steps) over the neuron layers; membrane "
                     "updates = neurons at the first step plus each later step where v changed")

_COUNT_OF_COST = {"synaptic_op": "synaptic_ops", "neuron_update_active": "neuron_updates_active",
                  "neuron_update_inactive": "neuron_updates_inactive", "spike_message": "spike_messages",
                  "hop_east_west": "hops_east_west", "hop_north_south": "hops_north_south"}


@dataclass(frozen=True)
class Cores:
    """Where one population sits: per core (block of neurons) its first neuron, chip and mesh position."""

    starts: np.ndarray
    stops: np.ndarray
    chip: np.ndarray
    x: np.ndarray  # tile column (east-west)
    y: np.ndarray  # tile row (north-south)

    @classmethod
    def of(cls, cores: tuple[CoreAssignment, ...], target: Target) -> "Cores":
        tiles_east_west = int(target.value("chip", "mesh")[0])
        tile = np.array([c.core for c in cores], np.int64) // int(target.value("chip", "cores_per_tile"))
        return cls(starts=np.array([c.start for c in cores], np.int64),
                   stops=np.array([c.stop for c in cores], np.int64), chip=np.array([c.chip for c in cores], np.int64),
                   x=tile % tiles_east_west, y=tile // tiles_east_west)

    def of_neuron(self, neurons: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, neurons, side="right") - 1


@dataclass(frozen=True)
class Routes:
    """Per source neuron of one connection: what each of its spikes costs on the way to the target cores."""

    synapses_per_core: np.ndarray  # (source size, target cores): nonzero weights into each core
    messages: np.ndarray  # (source size,) destination cores reached
    hops_east_west: np.ndarray
    hops_north_south: np.ndarray
    between_chips: np.ndarray
    longest: dict[str, np.ndarray]  # level -> (source size,) longest route latency in seconds


def _routes(conn: DenseConnection, source: Cores | None, target_cores: Cores, latency: dict) -> Routes:
    """Where each source neuron's spikes go: one message per target core it has synapses on, routed
    over the mesh from its own core (``source`` None: the input, which enters from the host)."""
    per_core = np.stack([np.count_nonzero(conn.weights[a:b], axis=0)
                         for a, b in zip(target_cores.starts, target_cores.stops)], axis=1)
    reached = per_core > 0
    size = per_core.shape[0]
    if source is None:  # the input: spikes enter from the host, routes unknown
        zeros = np.zeros(size, np.int64)
        return Routes(per_core, reached.sum(axis=1), zeros, zeros, zeros, {level: np.zeros(size) for level in LEVELS})
    at = source.of_neuron(np.arange(size))
    same_chip = reached & (source.chip[at][:, None] == target_cores.chip[None, :])
    east_west = np.abs(source.x[at][:, None] - target_cores.x[None, :]) * same_chip
    north_south = np.abs(source.y[at][:, None] - target_cores.y[None, :]) * same_chip
    longest = {level: (east_west * latency["hop_east_west"][level] + north_south * latency["hop_north_south"][level]
                       ).max(axis=1, initial=0.0) for level in LEVELS}
    return Routes(per_core, reached.sum(axis=1), east_west.sum(axis=1), north_south.sum(axis=1),
                  (reached & ~same_chip).sum(axis=1), longest)


def synaptic_ops(conn: DenseConnection, source: SpikeEvents) -> int:
    """The synaptic operations of one connection over a run: every source spike times its nonzero fan-out.
    The one count of them (verify's activity and the energy model both use it)."""
    fan_out = np.count_nonzero(conn.weights, axis=0)
    # Spikes per source neuron, then times its fan-out: the same integer as summing per spike, without an
    # array per spike (a run's input can hold tens of millions).
    return int(source.neuron_counts() @ fan_out)


def _first_input_step(conn: DenseConnection, source: SpikeEvents, num_steps: int) -> np.ndarray:
    """(samples, target neurons): the first step a spike of ``conn`` arrives (num_steps + 1 for never)."""
    never = num_steps + 1
    arrival = source.first_spike_steps().astype(np.int64) + 1  # one step of Dense delay
    arrival[arrival == 0] = never  # first_spike_steps() is -1 for silent neurons
    rows, cols = np.nonzero(conn.weights)
    first = np.full((source.num_samples, conn.weights.shape[0]), never, np.int64)
    if cols.size == 0:
        return first
    targets, starts = np.unique(rows, return_index=True)
    chunk = max(1, (1 << 22) // cols.size)
    for begin in range(0, source.num_samples, chunk):
        end = min(begin + chunk, source.num_samples)
        first[begin:end, targets] = np.minimum.reduceat(arrival[begin:end][:, cols], starts, axis=1)
    return first


def _active_per_step(first_input: np.ndarray, cores: Cores, num_steps: int) -> np.ndarray:
    """(samples, steps, cores): neurons active from their first input step on."""
    samples, size = first_input.shape
    shape = (samples, num_steps + 2, len(cores.starts))
    sample = np.repeat(np.arange(samples), size)
    core = np.tile(cores.of_neuron(np.arange(size)), samples)
    index = np.ravel_multi_index((sample, np.clip(first_input, 1, num_steps + 1).ravel(), core), shape)
    onsets = np.bincount(index, minlength=int(np.prod(shape))).astype(np.int32).reshape(shape)
    return np.cumsum(onsets, axis=1)[:, 1:num_steps + 1]


def _per_core_from_traces(trace: dict[str, np.ndarray], cores: Cores) -> np.ndarray:
    active = (trace["u"] != 0) | (trace["v"] != 0)
    return np.stack([active[:, :, a:b].sum(axis=2) for a, b in zip(cores.starts, cores.stops)], axis=2)


def _membrane_updates(trace: dict[str, np.ndarray]) -> int:
    v = trace["v"]
    return int(v.shape[0] * v.shape[2] + np.count_nonzero(np.diff(v, axis=1)))


def _costs(target: Target, section: str, unit: str, scale: float) -> dict[str, dict[str, float]]:
    keys = COSTS + (("barrier",) if section == "latency" else ())
    return {key: dict(zip(LEVELS, (v * scale for v in target.cost(section, f"{key}_{unit}")))) for key in keys}


def _per_step(events: SpikeEvents, values: np.ndarray, num_steps: int, delay: int) -> np.ndarray:
    """Sum ``values[neuron]`` (rows per neuron) of each event into (samples, steps, columns), at the
    event's step + ``delay``; events landing after the run are left out."""
    sample, step, neuron = events.events
    step = step - 1 + delay
    keep = step < num_steps
    index = sample[keep].astype(np.int64) * num_steps + step[keep]
    rows = values[neuron[keep]]
    # bincount adds its weights in the order given, as add.at does: the same sums, without add.at's slow path.
    out = np.stack([np.bincount(index, weights=rows[:, column], minlength=events.num_samples * num_steps)
                    for column in range(values.shape[1])], axis=1) if values.shape[1] else \
        np.zeros((events.num_samples * num_steps, 0))
    return out.reshape(events.num_samples, num_steps, values.shape[1])


@dataclass
class Traffic:
    """What the spikes of a batch of samples did on the chip, per sample and step."""

    synaptic_ops: dict[str, np.ndarray]  # population -> (samples, steps, cores) synaptic ops delivered
    messages_out: dict[str, np.ndarray]  # population -> (samples, steps, cores) spike messages sent
    longest_route: dict[str, np.ndarray]  # level -> (samples, steps) longest route latency, seconds
    first_input: dict[str, np.ndarray]  # population -> (samples, neurons) first step an input arrives


TRAFFIC_COUNTS = ("synaptic_ops", "spike_messages", "hops_east_west", "hops_north_south", "messages_between_chips")


def _layer_traffic(network, spikes: dict[str, SpikeEvents], routes: dict[str, Routes]) -> dict[str, dict[str, float]]:
    """Per target population, summed over the run: synaptic ops, messages, hops, messages between chips."""
    layers = {pop.name: dict.fromkeys(TRAFFIC_COUNTS, 0.0) for pop in network.populations}
    for conn in network.connections:
        source = spikes[conn.source]
        count = source.neuron_counts()
        # A population with several incoming connections (recurrence, a bias source) sums them.
        layer, route = layers[conn.target], routes[conn.name]
        layer["synaptic_ops"] += synaptic_ops(conn, source)
        for key, per_neuron in zip(TRAFFIC_COUNTS[1:], (route.messages, route.hops_east_west, route.hops_north_south,
                                                        route.between_chips)):
            layer[key] += float(count @ per_neuron)
    return layers


def _traffic(network, cores: dict[str, Cores], spikes: dict[str, SpikeEvents], routes: dict[str, Routes],
             samples: int, steps: int) -> Traffic:
    per_core = {pop.name: np.zeros((samples, steps, len(cores[pop.name].starts))) for pop in network.populations}
    traffic = Traffic(synaptic_ops=per_core, messages_out={k: v.copy() for k, v in per_core.items()},
                      longest_route={level: np.zeros((samples, steps)) for level in LEVELS},
                      first_input={p.name: np.full((samples, p.size), steps + 1, np.int64)
                                   for p in network.populations})
    for conn in network.connections:
        source, route = spikes[conn.source], routes[conn.name]
        traffic.synaptic_ops[conn.target] += _per_step(source, route.synapses_per_core, steps, delay=1)
        if conn.source in cores:  # the input is not on a core
            on_core = np.zeros((source.size, len(cores[conn.source].starts)))
            on_core[np.arange(source.size), cores[conn.source].of_neuron(np.arange(source.size))] = route.messages
            traffic.messages_out[conn.source] += _per_step(source, on_core, steps, delay=0)
        sample, step, neuron = source.events
        for level in LEVELS:
            np.maximum.at(traffic.longest_route[level], (sample, step - 1), route.longest[level][neuron])
        traffic.first_input[conn.target] = np.minimum(traffic.first_input[conn.target],
                                                      _first_input_step(conn, source, steps))
    return traffic


def _neuron_activity(network, traces: dict[str, dict[str, np.ndarray]], steps: int, cores: dict[str, Cores],
                     first_input: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int, bool]:
    """Active neuron updates per (sample, step, core) of each population, the NeuroBench membrane
    updates over the samples, and whether both came from recorded traces."""
    active, membrane_updates, from_traces = {}, 0, True
    for pop in network.populations:
        trace = traces.get(pop.name, {})
        if "u" in trace and "v" in trace:
            active[pop.name] = _per_core_from_traces(trace, cores[pop.name])
            membrane_updates += _membrane_updates(trace)
        else:
            from_traces = False
            first = first_input[pop.name].copy()
            first[:, np.asarray(pop.bias_mant) != 0] = 1  # a bias drives v every step
            active[pop.name] = _active_per_step(first, cores[pop.name], steps)
            membrane_updates += int(active[pop.name].sum())
    return active, membrane_updates, from_traces


# Bytes per sample, step and core of a batch's tables while ``_activity`` holds them: synaptic ops and
# messages (float64), the onsets (int32) and active neurons (int64), and ``_step_seconds``' float64 temporaries.
TABLE_BYTES = 8 * 8
# Bytes per sample and neuron of a connection's source: its first spike steps (int32) and their arrival (int64).
SOURCE_BYTES = 4 + 8


@dataclass
class RunActivity:
    """What the energy model needs of a run, gathered over batches of samples."""

    step_s: dict[str, np.ndarray]  # level -> (samples, steps) seconds each step takes
    active_updates: dict[str, int]  # population -> active neuron updates over all samples and steps
    membrane_updates: int
    from_traces: bool


def _activity(network, record: SpikeRecord, spikes: dict[str, SpikeEvents], cores: dict[str, Cores],
              routes: dict[str, Routes], latency: dict) -> RunActivity:
    """The (samples, steps, cores) tables of the run, a batch of samples at a time (within
    ``record.BATCH_BYTES``), reduced to what the estimate uses: each step's duration, and the active neuron
    and membrane updates. Every entry depends on its own sample alone, so the batches change no figure."""
    samples, steps = record.num_samples, record.num_steps
    all_cores = sum(len(c.starts) for c in cores.values())
    sources = sum(spikes[conn.source].size for conn in network.connections)
    batch = record_io.samples_per_batch(steps * (TABLE_BYTES * all_cores + 8 * len(LEVELS)) + SOURCE_BYTES * sources)
    step_s: dict[str, list] = {level: [] for level in LEVELS}
    active_updates = {pop.name: 0 for pop in network.populations}
    membrane_updates, from_traces = 0, True
    for start in range(0, max(samples, 1), batch):
        stop = min(start + batch, samples)
        part = {name: events.sample_range(start, stop) for name, events in spikes.items()}
        traces = {name: {key: value[start:stop] for key, value in per.items()} for name, per in record.traces.items()}
        traffic = _traffic(network, cores, part, routes, stop - start, steps)
        active, updates, traced = _neuron_activity(network, traces, steps, cores, traffic.first_input)
        membrane_updates += updates
        from_traces &= traced
        for pop in network.populations:
            active_updates[pop.name] += int(active[pop.name].sum())
        for level in LEVELS:
            step_s[level].append(_step_seconds(network, cores, traffic, active, latency, level))
    return RunActivity({level: np.concatenate(parts) for level, parts in step_s.items()}, active_updates,
                    membrane_updates, from_traces)


def _latency(step_s: dict[str, np.ndarray], decisions_step: np.ndarray | None) -> dict:
    samples, steps = next(iter(step_s.values())).shape
    decided = np.asarray(decisions_step, np.int64) if decisions_step is not None else np.full(samples, steps)
    has_decision = (decided >= 1) & (decided <= steps)
    decided = np.where(has_decision, decided, steps)
    within = np.arange(1, steps + 1)[None, :] <= decided[:, None]
    run = {level: float(step_s[level].sum()) / max(samples, 1) for level in LEVELS}
    return {"steps_to_decision": float(decided.mean()) if samples else 0.0,
            "decided": float(has_decision.mean()) if samples else 0.0,
            "step_s": {level: run[level] / max(steps, 1) for level in LEVELS},
            "to_decision_s": {level: float((step_s[level] * within).sum()) / max(samples, 1) for level in LEVELS},
            "run_s": run}


def estimate(bundle: Bundle, record: SpikeRecord, inputs: SpikeEvents, target: Target,
             decisions_step: np.ndarray | None = None) -> EnergyEstimate:
    """Energy, latency and operation counts per inference of the run ``record`` of ``bundle``
    (``artifacts.energy.EnergyEstimate``): per layer and in total the operations, spikes, messages and hops with
    their energy; the latency to the decision and of the whole run; NeuroBench's workload counts; and what
    a conventional ANN of the same shape would cost, each figure with its source in ``basis``."""
    network, placement = bundle.network, bundle.placement
    if not placement.cores:
        raise DeployError("the bundle has no placement; compile it again to estimate its energy")
    samples, steps = record.num_samples, record.num_steps
    per_sample = 1.0 / max(samples, 1)
    energy = _costs(target, "energy", "pj", 1e-12)
    latency = _costs(target, "latency", "ns", 1e-9)
    cores = {pop.name: Cores.of(placement.population_cores(pop.name), target) for pop in network.populations}
    spikes = {network.input.name: inputs, **record.spikes}
    routes = {conn.name: _routes(conn, cores.get(conn.source), cores[conn.target], latency)
              for conn in network.connections}
    traffic = _layer_traffic(network, spikes, routes)
    activity = _activity(network, record, spikes, cores, routes, latency)
    membrane_updates, from_traces = activity.membrane_updates, activity.from_traces

    layers = {}
    for pop in network.populations:
        layer = {key: value * per_sample for key, value in traffic[pop.name].items()}
        updates_active = float(activity.active_updates[pop.name]) * per_sample
        layer.update(spikes=spikes[pop.name].events.shape[1] * per_sample, neuron_updates=pop.size * steps,
                     neuron_updates_active=updates_active, neuron_updates_inactive=pop.size * steps - updates_active)
        layer["energy_j"] = {level: sum(layer[_COUNT_OF_COST[key]] * energy[key][level] for key in COSTS)
                             for level in LEVELS}
        layers[pop.name] = layer
    timing = _latency(activity.step_s, decisions_step)

    counted = [key for key in layers[network.populations[0].name] if key != "energy_j"]
    total = {key: sum(layer[key] for layer in layers.values()) for key in counted}
    static_w = dict(zip(LEVELS, target.cost("energy", "static_power_w")))
    dynamic = {level: sum(layer["energy_j"][level] for layer in layers.values()) for level in LEVELS}
    static = {level: static_w[level] * placement.chips_used * timing["run_s"][level] for level in LEVELS}
    total["energy_j"] = {"dynamic": dynamic, "static": static,
                         "total": {level: dynamic[level] + static[level] for level in LEVELS}}

    graded = {conn.target for conn in network.connections if conn.num_message_bits > 0}
    neurons = sum(pop.size for pop in network.populations)
    dense_macs = sum(int(conn.weights.size) for conn in network.connections)
    traffic_fields = [f.name for f in dataclasses.fields(OperationCounts)]
    return EnergyEstimate(
        target=target.name, samples=samples, num_steps=steps, chips_used=placement.chips_used,
        cores_used=placement.cores_used,
        basis=EnergyBasis(
            energy=target.value("energy", "basis"), latency=target.value("latency", "basis"),
            static="static power per chip x chips used x run time (all steps)",
            activity=f"spikes measured on {record.backend}, {samples} samples",
            active_updates=("recorded u and v traces" if from_traces else
                            "upper bound: active from the first synaptic input to the end of the run"),
            neurobench=NEUROBENCH_SOURCE, ann_baseline=ANN_BASIS),
        layers={name: LayerEnergy(**{key: layer[key] for key in traffic_fields}, energy_j=Range(**layer["energy_j"]))
                for name, layer in layers.items()},
        total=TotalEnergy(**{key: total[key] for key in traffic_fields},
                          energy_j=EnergySplit(**{part: Range(**value) for part, value in total["energy_j"].items()})),
        latency=Latency(steps_to_decision=timing["steps_to_decision"], decided=timing["decided"],
                        **{key: Range(**timing[key]) for key in ("step_s", "to_decision_s", "run_s")}),
        neurobench=NeuroBench(
            effective_acs=sum(layers[name]["synaptic_ops"] for name in layers if name not in graded),
            effective_macs=sum(layers[name]["synaptic_ops"] for name in graded),
            dense_synops=float(dense_macs * steps),
            activation_sparsity=1.0 - total["spikes"] / max(neurons * steps, 1),
            membrane_updates=membrane_updates * per_sample,
            membrane_updates_basis=("recorded v traces" if from_traces else
                                    "no traces recorded: the active neuron updates (an upper bound)")),
        ann_baseline=AnnBaseline(dense_macs=dense_macs,
                                 energy_j={kind: dense_macs * joules for kind, joules in MAC_ENERGY_J.items()}))


def _step_seconds(network, cores: dict[str, Cores], traffic: Traffic, active: dict[str, np.ndarray],
                  latency: dict, level: str) -> np.ndarray:
    """(samples, steps): how long each step takes: the busiest core, the longest route, the barrier."""
    busiest = np.zeros(traffic.longest_route[level].shape)
    for pop in network.populations:
        inactive = (cores[pop.name].stops - cores[pop.name].starts)[None, None, :] - active[pop.name]
        busy = (traffic.synaptic_ops[pop.name] * latency["synaptic_op"][level]
                + active[pop.name] * latency["neuron_update_active"][level]
                + inactive * latency["neuron_update_inactive"][level]
                + traffic.messages_out[pop.name] * latency["spike_message"][level])
        busiest = np.maximum(busiest, busy.max(axis=2))
    return busiest + traffic.longest_route[level] + latency["barrier"][level]


def decision_steps(output: SpikeEvents, decoding: str) -> np.ndarray:
    """The step each sample's decision is known: its first output spike ("first_spike"; -1 if none) or
    the end of the run (the count decodings)."""
    if decoding == decision.FIRST_SPIKE:
        first = output.first_spike_steps()
        return np.where((first > 0).any(axis=1), np.where(first > 0, first, output.num_steps + 1).min(axis=1), -1)
    return np.full(output.num_samples, output.num_steps)
