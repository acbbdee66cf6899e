"""finetune: a NIR graph and data -> the graph with its float weights adjusted so that their 8-bit deployment
decides like the original float model (``snn-deploy finetune``).

It trains through the chip's discrete-time model (``references.trainable``) with fake-quantized weights: every
batch, the current weights are discretized and quantized by the compiler itself (``quantize``) and the network the
integers realize (``quantize.dequantize``) runs forward, while the gradient passes straight through the rounding
to the float weights (a straight-through estimator). The loss distils the original float model's outputs on the
data: the output's spike counts or a readout's membrane (whichever the decoding reads), as a relative squared
error, and its decisions, as a cross-entropy of the decoding's scores against them (``decision_weight``: what verify
counts is decisions, and a squared error of counts weighs a flipped decision no more than a shifted count); where
the data have labels, a cross-entropy against the labels adds a task loss (``label_weight``).

The parameters trained are the weights (and the nonzero biases) of the Affine, Linear, Conv1d and Conv2d nodes
whose entries each reach the chip's gains as one entry times a fixed factor (``parameter_maps``); any other is
kept, and the report says why. After every epoch the weights are compiled as compile deploys them (quantized and,
with ``calibrate``, calibrated on the tuning data) and run on bitsim; the epoch whose chip decisions on the tuning
data agree most often with the original float model's is kept (epoch 0: the original weights, so tuning never
makes that deployment worse on the data it saw).

The tuned graph has the original's nodes and edges (nested subgraphs inlined), the semantics it was tuned with
in its metadata, and the record of what it was tuned from (``targets.bundle.TunedFrom``): the original's
sha256, the data and the settings. verify of a bundle compiled from it compares the chip with the ORIGINAL graph.
Deterministic: the same graph, data and settings give the same tuned graph.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...targets import bitsim, decision
from ...targets.bundle import TUNED_FROM_KEY, Bundle, TunedFrom
from ...targets.description import Target
from ..artifacts.discrete import DiscreteNetwork
from ..artifacts.network import FloatNetwork
from ..artifacts.semantics import METADATA_KEY, semantic_fields
from ..artifacts.tuning import EpochRecord, TunedGraph, TuningReport, TuningSettings
from ..errors import DeployError
from ..references import discrete as discrete_reference
from .calibrate import calibrate
from .discretize import discretize
from .load import from_graph, inline_subgraphs
from .quantize import dequantize, quantize
from .stimulus import DataOptions, load_stimulus
from .verify import decide

# The synapse nodes whose parameters fine-tuning adjusts, and which of their fields.
TRAINABLE_FIELDS = {"Affine": ("weight", "bias"), "Linear": ("weight",), "Conv1d": ("weight", "bias"),
                    "Conv2d": ("weight", "bias")}
DEFAULT_TUNING_SAMPLES = 200
# Relative tolerance of the check that a parameter entry reaches a gain times a fixed factor (float rounding of
# the discretization's products).
MAP_TOLERANCE = 1e-9

Gains = dict[tuple[str, str], np.ndarray]  # (population, source) -> (size, source size)


@dataclass(frozen=True)
class ParameterMap:
    """Where one parameter array's entries land among the gains: for each (population, source), the flat gain
    indices, the parameter entry behind each, and the factor: gain[k] = factor[k] * parameter[entry[k]] plus what
    the other parameters contribute."""

    node: str
    field: str
    original: np.ndarray  # the graph's values, float64, flat
    places: tuple[tuple[tuple[str, str], np.ndarray, np.ndarray, np.ndarray], ...]

    @property
    def name(self) -> str:
        return f"{self.node}.{self.field}"


def _layer_gains(discrete: DiscreteNetwork) -> Gains:
    """The gains of the graph's layers (the constant sources' relays are the compiler's, not the graph's)."""
    return {(p.name, source): gain for p in discrete.populations if not p.bias_source for source, gain in p.inputs}


def _gains(graph, net: FloatNetwork, dt: float) -> Gains:
    return _layer_gains(discretize(from_graph(graph, semantic_fields(net.semantics)), dt))


def _with_field(graph, node: str, field: str, values: np.ndarray):
    import nir

    current = graph.nodes[node]
    shaped = values.reshape(np.shape(getattr(current, field)))
    nodes = {**graph.nodes, node: dataclasses.replace(current, **{field: shaped})}
    return nir.NIRGraph(nodes=nodes, edges=graph.edges, metadata=graph.metadata, type_check=False)


def parameter_maps(graph, net: FloatNetwork, discrete: DiscreteNetwork) -> tuple[
        Gains, tuple[ParameterMap, ...], tuple[tuple[str, str], ...]]:
    """(the gains of ``graph``, whose network ``net`` is ``discrete`` at its step, the map of every trainable
    parameter array, the (name, why) of those kept).

    A map is found by evaluating the discretization with the array set to 0, 1, its entries' indices i and i^2:
    where the gain's change at 1 (the factor) is nonzero, i over it names the entry, and the change at i^2 must
    be the factor times its square (an entry reaching a gain through a product with another parameter, as in two
    Affine nodes in a row, fails and is kept as it is)."""
    graph, dt = inline_subgraphs(graph), discrete.dt
    original = _layer_gains(discrete)
    maps, frozen = [], []
    for node, value in graph.nodes.items():
        for field in TRAINABLE_FIELDS.get(type(value).__name__, ()):
            given = getattr(value, field, None)
            values = np.asarray(0.0 if given is None else given, np.float64).reshape(-1)
            name = f"{node}.{field}"
            if not np.any(values):
                frozen.append((name, "all zero"))
                continue
            index = np.arange(1, values.size + 1, dtype=np.float64)
            at = {v: _gains(_with_field(graph, node, field, x), net, dt)
                  for v, x in (("zero", np.zeros_like(values)), ("one", np.ones_like(values)), ("i", index),
                               ("i2", index ** 2))}
            places, why = [], ""
            for key, one in at["one"].items():
                # (a bias of zero adds no constant source: its gains are then zero)
                zero = at["zero"].get(key, np.zeros_like(one))
                factor = (one - zero).reshape(-1)
                hit = np.flatnonzero(factor)
                if hit.size == 0:
                    continue
                entry = (at["i"][key] - zero).reshape(-1)[hit] / factor[hit]
                squared = (at["i2"][key] - zero).reshape(-1)[hit] / factor[hit]
                whole = np.rint(entry)
                if not (np.allclose(entry, whole, rtol=MAP_TOLERANCE, atol=0)
                        and np.allclose(squared, whole ** 2, rtol=MAP_TOLERANCE, atol=0)):
                    why = f"reaches the gains into {key[0]} through a product with another parameter"
                    break
                places.append((key, hit, whole.astype(np.int64) - 1, factor[hit]))
            if why or not places:
                frozen.append((name, why or "reaches no gain (a bias the chip holds as its own bias)"))
                continue
            maps.append(ParameterMap(node, field, values, tuple(places)))
    return original, tuple(maps), tuple(frozen)


def _torch_gains(original: Gains, maps: tuple[ParameterMap, ...], parameters: list) -> dict:
    """The gains as torch tensors of the current ``parameters`` (one per map, flat)."""
    import torch

    gains = {key: torch.as_tensor(g).reshape(-1) for key, g in original.items()}
    for parameter_map, parameter in zip(maps, parameters):
        change = parameter - torch.as_tensor(parameter_map.original)
        for key, hit, entry, factor in parameter_map.places:
            gains[key] = gains[key].index_add(0, torch.as_tensor(hit), torch.as_tensor(factor) * change[entry])
    return {key: gains[key].reshape(original[key].shape) for key in original}


def _with_gains(discrete: DiscreteNetwork, gains: Gains) -> DiscreteNetwork:
    return dataclasses.replace(discrete, populations=tuple(
        dataclasses.replace(p, inputs=tuple((source, gains.get((p.name, source), gain)) for source, gain in p.inputs))
        for p in discrete.populations))


def _decisions(spikes, membrane: np.ndarray | None, bundle: Bundle) -> np.ndarray:
    return decide(spikes, bundle.decoding, membrane, bundle.timing.latency_steps)


def finetune(graph, net: FloatNetwork, target: Target, data, settings: TuningSettings = TuningSettings(), *,
             samples: int | None = None, dt: float | None = None, options: DataOptions = DataOptions(),
             progress: Callable[[EpochRecord], None] | None = None) -> TunedGraph:
    """``graph`` (``net`` is it loaded, with its semantics) tuned on the first ``samples`` samples (default
    DEFAULT_TUNING_SAMPLES) of ``data`` (any source ``stimulus.load_stimulus`` reads) for ``target``;
    ``progress`` is called with each epoch's record."""
    import torch

    from ..references import trainable
    from .compile import compile_network

    _check_settings(settings)
    graph = inline_subgraphs(graph)
    if net.semantics.decoding == decision.FIRST_SPIKE:
        raise DeployError("finetune distils the output's spike counts or a readout's membrane; a first_spike "
                          "decision has no such output to distil (compile and calibrate this graph instead)")
    bundle = compile_network(net, target, dt=dt, split_weights=settings.split_weights, calibrate=None)
    stimulus = load_stimulus(data, DEFAULT_TUNING_SAMPLES if samples is None else samples, bundle, options=options)
    inputs, labels = stimulus.inputs, stimulus.labels
    data_name = stimulus.selection or stimulus.name
    discrete = discretize(net, bundle.timing.dt)
    original, maps, frozen = parameter_maps(graph, net, discrete)
    if not maps:
        raise DeployError("finetune: no parameter to tune (" + "; ".join(f"{n}: {why}" for n, why in frozen) + ")")
    out, latency, num_steps = discrete.output, bundle.timing.latency_steps, bundle.timing.num_steps
    readout = discrete.population(out).readout
    reference, _, traces = discrete_reference.run(discrete, inputs, num_steps)
    target_decisions = _decisions(reference[out], traces[out]["v"] if readout else None, bundle)
    target_output = traces[out]["v"][:, latency:] if readout else reference[out].counts().astype(np.float64)
    decided = torch.as_tensor(target_decisions != decision.NO_DECISION)

    raster = torch.as_tensor(inputs.raster(slice(0, inputs.num_samples)))
    parameters = [torch.tensor(m.original, requires_grad=True) for m in maps]
    optimizer = torch.optim.Adam([{"params": [p], "lr": settings.learning_rate * max(float(np.abs(m.original).max()),
                                                                                     1e-12)}
                                  for p, m in zip(parameters, maps)])
    rng = np.random.default_rng(settings.seed)

    def batch_loss(rows: np.ndarray):
        gains = _torch_gains(original, maps, parameters)
        quantized = quantize(_with_gains(discrete, {k: g.detach().numpy() for k, g in gains.items()}), target,
                             settings.split_weights)
        realized = dequantize(quantized, target.widths)
        realized_gains = {(p.name, s): g for p in realized.populations for s, g in p.inputs}
        # The straight-through estimator: forward the realized gains, backward the float ones.
        forward = {k: g + (torch.as_tensor(realized_gains[k]) - g.detach()) for k, g in gains.items()}
        result = trainable.run(realized, forward, raster[rows].to(torch.float64))
        output = result.membrane[:, latency:] if readout else result.counts
        wanted = torch.as_tensor(target_output[rows])
        loss = ((output - wanted) ** 2).mean() / max(float((wanted ** 2).mean()), 1e-12)
        if settings.decision_weight > 0 and decided[rows].any():
            loss = loss + settings.decision_weight * torch.nn.functional.cross_entropy(
                _scores(output, bundle.decoding)[decided[rows]], torch.as_tensor(target_decisions[rows][decided[rows]]))
        if labels is not None and settings.label_weight > 0:
            loss = loss + settings.label_weight * torch.nn.functional.cross_entropy(
                _scores(output, bundle.decoding), torch.as_tensor(labels[rows], dtype=torch.int64))
        return loss

    def chip_agreement() -> float:
        """On bitsim, the tuning data decided as compile deploys the graph with these weights written: quantized, and
        calibrated on the tuning data (``settings.calibrate``)."""
        written = discretize(from_graph(_with_values(graph, maps, parameters), semantic_fields(net.semantics)),
                             bundle.timing.dt)
        chip = dataclasses.replace(bundle, network=quantize(written, target, settings.split_weights).network)
        if settings.calibrate:
            chip, _ = calibrate(chip, written, inputs, data_name)
        record = bitsim.run(chip, inputs)
        chip_decisions = _decisions(record.spikes[out], record.membrane(out) if readout else None, chip)
        return float(np.mean(chip_decisions == target_decisions))

    order = np.arange(inputs.num_samples)
    batches = [order[i:i + settings.batch_size] for i in range(0, order.size, settings.batch_size)]
    with torch.no_grad():
        first_loss = float(np.mean([batch_loss(rows).item() for rows in batches]))
    records = [EpochRecord(0, first_loss, chip_agreement())]
    best, kept = 0, [p.detach().clone() for p in parameters]  # the best epoch so far (ties: the earliest)
    if progress:
        progress(records[0])
    for epoch in range(1, settings.epochs + 1):
        losses = []
        for rows in np.array_split(rng.permutation(inputs.num_samples), len(batches)):
            rows = np.sort(rows)
            optimizer.zero_grad()
            loss = batch_loss(rows)
            if not torch.isfinite(loss):
                raise DeployError(f"finetune diverged: the loss is {loss.item()} in epoch {epoch}; lower "
                                  f"--learning-rate (now {settings.learning_rate:g})")
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        records.append(EpochRecord(epoch, float(np.mean(losses)), chip_agreement()))
        if records[-1].chip_agreement > records[best].chip_agreement:
            best, kept = epoch, [p.detach().clone() for p in parameters]
        if progress:
            progress(records[-1])
    report = TuningReport(data=data_name, samples=inputs.num_samples,
                          trained=tuple(m.name for m in maps), frozen=frozen, epochs=tuple(records), kept_epoch=best)
    tuned_from = TunedFrom(nir_file=net.source_file, nir_sha256=net.source_sha256, data=report.data,
                           settings={**settings.as_metadata(), "samples": inputs.num_samples,
                                     "target": target.name, "dt": bundle.timing.dt})
    return TunedGraph(graph=_tuned_graph(graph, net, maps, kept, tuned_from), report=report)


def _scores(output, decoding: str):
    """The logits a cross-entropy takes from the output, by the decoding: the counts, or the readout membrane's
    maximum, last or mean over the window."""
    if decoding == decision.MAX_MEMBRANE:
        return output.amax(dim=1)
    if decoding == decision.FINAL_MEMBRANE:
        return output[:, -1]
    if decoding == decision.MEAN_MEMBRANE:
        return output.mean(dim=1)
    return output


def _check_settings(settings: TuningSettings) -> None:
    if settings.epochs < 0:
        raise DeployError(f"--epochs must be at least 0, got {settings.epochs}")
    if settings.batch_size < 1:
        raise DeployError(f"--batch-size must be at least 1, got {settings.batch_size}")
    if not (np.isfinite(settings.learning_rate) and settings.learning_rate > 0):
        raise DeployError(f"--learning-rate must be a positive number, got {settings.learning_rate}")
    for option, weight in (("--decision-weight", settings.decision_weight), ("--label-weight", settings.label_weight)):
        if not (np.isfinite(weight) and weight >= 0):
            raise DeployError(f"{option} must be a number >= 0, got {weight}")


def _with_values(graph, maps: tuple[ParameterMap, ...], values: list):
    """``graph`` with each mapped array set to its values (tensors), in the array's own dtype."""
    for parameter_map, value in zip(maps, values):
        dtype = np.asarray(getattr(graph.nodes[parameter_map.node], parameter_map.field)).dtype
        graph = _with_field(graph, parameter_map.node, parameter_map.field, value.detach().numpy().astype(dtype))
    return graph


def _tuned_graph(graph, net: FloatNetwork, maps: tuple[ParameterMap, ...], values: list, tuned_from: TunedFrom):
    """``graph`` with the tuned values (``_with_values``), the semantics it was tuned with and ``tuned_from`` in its
    metadata."""
    import nir

    graph = _with_values(graph, maps, values)
    metadata = {**(graph.metadata or {}), METADATA_KEY: net.semantics.to_json(),
                TUNED_FROM_KEY: tuned_from.to_metadata()}
    return nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=metadata, type_check=False)

