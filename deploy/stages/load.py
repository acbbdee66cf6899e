"""load: a NIR file or graph -> the float network, every semantic choice made explicit (``artifacts.semantics``).

A choice that is neither in the graph's metadata nor given as an option is an error, never a
silent default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...targets.bundle import TUNED_FROM_KEY, TunedFrom
from ...targets.decision import MEMBRANE_DECODINGS, SPIKE_DECODINGS
from ..artifacts.network import READOUT_DYNAMICS, FloatLayer, FloatNetwork, Projection
from ..artifacts.semantics import semantics_from_metadata
from ..errors import DeployError
from .connectivity import SYNAPSE_TYPES, LinearMap, add, compose, linear_map


# nir's type check when the Input's shape is not what the node it feeds takes: in exporters' graphs, the sample's
# batch dimension (snnTorch without ignore_dims) or its time steps (sinabs' layers fed (batch, time, ...)).
INPUT_MISMATCH = "type mismatch: input.output:"
INPUT_MISMATCH_HINT = ("; the Input's shape holds a dimension the first node does not take, e.g. the export "
                       "sample's batch (snnTorch: ignore_dims=[0]) or time steps (sinabs: export through "
                       "IAFSqueeze/LIFSqueeze); README \"Verify your own network\"")


def read_nir(path: str | Path):
    """nir.read with every failure turned into a one-line DeployError naming the file."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise DeployError(f"NIR file not found: {path}")
    try:
        return nir.read(path)
    except OSError:
        raise DeployError(f"{path} is not a NIR file (not readable as HDF5)") from None
    except (KeyError, ValueError, TypeError, AssertionError, AttributeError, IndexError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if INPUT_MISMATCH in message:
            message += INPUT_MISMATCH_HINT
        raise DeployError(f"{path} is a malformed NIR graph: {message}") from None


def _vector(node_name: str, field_name: str, value, size: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(size, float(array))
    array = array.reshape(-1)
    if array.shape != (size,):
        raise DeployError(f"node {node_name}: {field_name} has shape {array.shape}, expected ({size},)")
    if not np.all(np.isfinite(array)):
        raise DeployError(f"node {node_name}: {field_name} contains NaN or infinity")
    return array


def _check_positive(node_name: str, field_name: str, array: np.ndarray) -> None:
    if np.any(array <= 0):
        bad = float(array[array <= 0][0])
        raise DeployError(f"node {node_name}: {field_name} must be > 0, got {bad:g}")


NEURON_TYPES = ("CubaLIF", "LIF", "IF", *READOUT_DYNAMICS)

# NIR primitives refused, with why (the other unknown types get the generic refusal).
REFUSED_TYPES = {
    "Threshold": "a stateless spike where the input exceeds a level; the chip fires only from a neuron's membrane, "
                 "whose decay keeps part of the last step's state, so it is exact only inside a neuron node "
                 "(use IF, LIF or CubaLIF)",
}
SUBGRAPH_SEPARATOR = "."


def inline_subgraphs(graph):
    """The graph with every nested NIRGraph node replaced by its nodes, named ``<subgraph>.<node>``: an edge into
    the subgraph goes to what its Input feeds, an edge out of it leaves from what feeds its Output (snnTorch
    exports RLeaky and RSynaptic as such subgraphs: a neuron and its recurrent weights)."""
    import nir

    nodes, inner_edges, entries, exits = {}, [], {}, {}
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        inner = inline_subgraphs(node)
        ins = [n for n, x in inner.nodes.items() if isinstance(x, nir.Input)]
        outs = [n for n, x in inner.nodes.items() if isinstance(x, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise DeployError(f"subgraph {name} needs exactly one Input and one Output node, it has {len(ins)} and "
                              f"{len(outs)}")
        if (ins[0], outs[0]) in inner.edges:
            raise DeployError(f"subgraph {name} passes its Input straight to its Output, which no node of the chip "
                              "represents")
        prefixed = {n: f"{name}{SUBGRAPH_SEPARATOR}{n}" for n in inner.nodes}
        for n, x in inner.nodes.items():
            if n not in (ins[0], outs[0]):
                if prefixed[n] in graph.nodes:
                    raise DeployError(f"node {prefixed[n]} of subgraph {name} has the name of another node")
                nodes[prefixed[n]] = x
        entries[name] = [prefixed[d] for s, d in inner.edges if s == ins[0]]
        exits[name] = [prefixed[s] for s, d in inner.edges if d == outs[0]]
        inner_edges += [(prefixed[s], prefixed[d]) for s, d in inner.edges if s != ins[0] and d != outs[0]]
    if not entries:
        return graph
    edges = [(s, d) for src, dst in graph.edges for s in exits.get(src, [src]) for d in entries.get(dst, [dst])]
    return nir.NIRGraph(nodes=nodes, edges=inner_edges + edges, metadata=getattr(graph, "metadata", {}) or {},
                        type_check=False)


def from_graph(graph, overrides: dict[str, Any] | None = None, source_file: str = "",
               source_sha256: str = "") -> FloatNetwork:
    """Read a graph of neuron nodes (CubaLIF, LIF, IF; the readouts CubaLI, LI, I) joined by paths of synapse
    nodes into a FloatNetwork.

    Every neuron node becomes a layer whose projections are the synapse paths ending at it, each
    composed into one matrix (``connectivity``). Paths may start at the Input, at an earlier layer,
    or at the layer itself or a later one (recurrence: on the chip every projection delivers one step
    later, which is what breaks the loop). Layers are ordered by their distance from the input.
    """
    import nir

    graph = inline_subgraphs(graph)
    nodes, edges = graph.nodes, graph.edges
    predecessors: dict[str, list[str]] = {name: [] for name in nodes}
    for src, dst in edges:
        if src not in nodes or dst not in nodes:
            raise DeployError(f"edge {src} -> {dst} names a node the graph does not have")
        predecessors[dst].append(src)
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise DeployError(f"the graph needs exactly one Input and one Output node, it has {len(inputs)} and "
                          f"{len(outputs)}")
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind in REFUSED_TYPES:
            raise DeployError(f"node {name} is a {kind}, which the target cannot run: {REFUSED_TYPES[kind]}")
        if not isinstance(node, (nir.Input, nir.Output)) and kind not in NEURON_TYPES + SYNAPSE_TYPES:
            raise DeployError(f"node {name} is a {kind}, which the target cannot run (it runs the neurons "
                              f"{', '.join(NEURON_TYPES)} and the synapses {', '.join(SYNAPSE_TYPES)})")
    metadata = getattr(graph, "metadata", {}) or {}
    semantics = semantics_from_metadata(metadata, overrides)
    tuned_from = _tuned_from(metadata, source_file)
    input_name = inputs[0]
    input_shape = tuple(int(d) for d in np.atleast_1d(nodes[input_name].input_type["input"]))
    sources = {input_name: input_shape}
    neuron_names = [n for n, node in nodes.items() if type(node).__name__ in NEURON_TYPES]
    for name in neuron_names:
        sources[name] = _node_shape(name, nodes[name])

    paths: dict[str, dict[str, tuple[tuple[str, ...], LinearMap]]] = {}

    def incoming(name: str, visiting: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], LinearMap]]:
        """Per source, what the output of synapse node ``name`` is as a linear map of that source's spikes."""
        if name in paths:
            return paths[name]
        if name in visiting:
            raise DeployError(f"synapse nodes {' -> '.join(visiting)} form a loop without a neuron")
        summed = _sum_inputs(name, predecessors[name], sources, lambda p: incoming(p, visiting + (name,)))
        result = {}
        for source, (through, inner) in summed.items():
            result[source] = (through + (name,), compose(linear_map(nodes[name], inner.output_shape, name), inner,
                                                         name))
        paths[name] = result
        return result

    layers = {}
    for name in neuron_names:
        shape = sources[name]
        size = int(np.prod(shape))
        projections = []
        for source, (through, path) in _sum_inputs(name, predecessors[name], sources,
                                                   lambda p: incoming(p, (name,))).items():
            if path.matrix.shape[0] != size:
                raise DeployError(f"node {name} has {size} neurons but {' -> '.join(through) or source} "
                                  f"delivers {path.matrix.shape[0]} values")
            projections.append(Projection(source=source, nodes=through, weight=path.matrix, bias=path.bias,
                                          delay=path.delay))
        params = _neuron_parameters(name, nodes[name], size)
        layers[name] = FloatLayer(name=name, projections=tuple(projections), kind=type(nodes[name]).__name__,
                                  **params)
    if not layers:
        raise DeployError(f"the graph has no neuron node ({', '.join(NEURON_TYPES)})")
    feeding = predecessors[outputs[0]]
    if len(feeding) != 1 or feeding[0] not in layers:
        raise DeployError(f"the Output node must be fed by one neuron node, it is fed by {', '.join(feeding) or 'nothing'}")
    unused = [n for n, node in nodes.items() if type(node).__name__ in SYNAPSE_TYPES and n not in paths]
    if unused:
        raise DeployError(f"synapse nodes that feed no neuron: {', '.join(unused)} (a dead end, or a loop of "
                          "synapses alone); the graph would run without them")
    _check_readouts(layers, feeding[0], semantics.decoding)
    return FloatNetwork(input_name=input_name, input_size=int(np.prod(input_shape)), input_shape=input_shape,
                        layers=_by_depth(input_name, layers), output=feeding[0], semantics=semantics,
                        source_file=source_file, source_sha256=source_sha256, tuned_from=tuned_from)


def _tuned_from(metadata: dict, source_file: str) -> TunedFrom | None:
    """What a fine-tuned graph was tuned from (its metadata's ``TUNED_FROM_KEY``), None for a graph not tuned; a
    malformed value is a DeployError naming the file and the key."""
    raw = metadata.get(TUNED_FROM_KEY)
    if raw is None:
        return None
    try:
        return TunedFrom.from_metadata(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError as exc:
        raise DeployError(f"{source_file or 'the graph'}: graph metadata {exc}") from None


def _check_readouts(layers: dict[str, FloatLayer], output: str, decoding: str) -> None:
    """A readout never spikes: it must be the output, decoded from its membrane; a spiking output needs a spike
    decoding."""
    for layer in layers.values():
        fed = [target.name for target in layers.values() if any(p.source == layer.name for p in target.projections)]
        if layer.readout and fed:
            raise DeployError(f"node {layer.name} is a {layer.kind} readout, which never spikes, yet it feeds "
                              f"{', '.join(fed)}; a readout can only be the output")
    readout = layers[output]
    if readout.readout and decoding not in MEMBRANE_DECODINGS:
        raise DeployError(f"the output node {output} is a {readout.kind} readout, which never spikes: decode its "
                          f"membrane (--decoding {'|'.join(MEMBRANE_DECODINGS)}), not {decoding}")
    if not readout.readout and decoding not in SPIKE_DECODINGS:
        raise DeployError(f"the output node {output} is a spiking {readout.kind}: decode its spikes (--decoding "
                          f"{'|'.join(SPIKE_DECODINGS)}), not {decoding}, which reads a readout's membrane")


def _node_shape(name: str, node) -> tuple[int, ...]:
    shape = node.input_type.get("input") if getattr(node, "input_type", None) else None
    if shape is None:
        shape = np.shape(node.v_threshold)
    return tuple(int(d) for d in np.atleast_1d(shape))


def _sum_inputs(name: str, feeding: list[str], sources: dict[str, tuple[int, ...]], through_synapse):
    """The input of node ``name`` (the sum of what its predecessors deliver) per source: a source feeding it
    directly contributes the identity; a synapse node contributes its own paths."""
    if not feeding:
        raise DeployError(f"node {name} has no input")
    summed: dict[str, tuple[tuple[str, ...], LinearMap]] = {}
    for predecessor in feeding:
        if predecessor in sources:
            size = int(np.prod(sources[predecessor]))
            contributions = {predecessor: ((), LinearMap(np.eye(size), np.zeros(size), sources[predecessor]))}
        else:
            contributions = through_synapse(predecessor)
        for source, (through, path) in contributions.items():
            if source in summed:
                previous_through, previous = summed[source]
                if previous.matrix.shape != path.matrix.shape:
                    raise DeployError(f"node {name}: its inputs from {source} have different shapes")
                path = add(previous, path, name)
                through = previous_through + tuple(n for n in through if n not in previous_through)
            summed[source] = (through, path)
    return summed


def feed_forward_depths(input_name: str, layers) -> dict[str, int]:
    """Each layer's shortest feed-forward distance from the input (the input is 0, its first layer 1)."""
    depth = {input_name: 0}
    changed = True
    while changed:
        changed = False
        for layer in layers:
            reach = [depth[p.source] + 1 for p in layer.projections if p.source in depth]
            if reach and min(reach) < depth.get(layer.name, np.inf):
                depth[layer.name] = min(reach)
                changed = True
    return depth


def _by_depth(input_name: str, layers: dict[str, FloatLayer]) -> tuple[FloatLayer, ...]:
    """Layers in order of their shortest feed-forward distance from the input (ties: graph order)."""
    depth = feed_forward_depths(input_name, layers.values())
    unreached = [name for name in layers if name not in depth]
    if unreached:
        raise DeployError(f"node {unreached[0]} is not reached from the input")
    return tuple(sorted(layers.values(), key=lambda layer: depth[layer.name]))


def _neuron_parameters(name: str, neuron, size: int) -> dict[str, np.ndarray]:
    """The CubaLIF-shaped parameters of a neuron node (see FloatLayer)."""
    import nir

    def get(key: str, default=None) -> np.ndarray:
        value = getattr(neuron, key, None)
        return _vector(name, key, default if value is None else value, size)

    zeros, ones = np.zeros(size), np.ones(size)
    # A readout's threshold is never crossed, and it never resets.
    readout = type(neuron).__name__ in READOUT_DYNAMICS
    threshold = {"v_threshold": np.full(size, np.inf), "v_reset": zeros} if readout else {
        "v_threshold": get("v_threshold"), "v_reset": get("v_reset", 0.0)}
    if isinstance(neuron, (nir.CubaLIF, nir.CubaLI)):
        params = {key: get(key) for key in ("tau_syn", "tau_mem", "r", "w_in", "v_leak")}
        _check_positive(name, "tau_syn", params["tau_syn"])
    elif isinstance(neuron, (nir.LIF, nir.LI)):
        params = {"tau_syn": zeros, "tau_mem": get("tau"), "r": get("r"), "w_in": ones, "v_leak": get("v_leak")}
    else:  # IF, I: no leak at all
        params = {"tau_syn": zeros, "tau_mem": np.full(size, np.inf), "r": get("r"), "w_in": ones, "v_leak": zeros}
    params.update(threshold)
    if not isinstance(neuron, (nir.IF, nir.I)):
        _check_positive(name, "tau_mem" if isinstance(neuron, (nir.CubaLIF, nir.CubaLI)) else "tau",
                        params["tau_mem"])
    _check_positive(name, "v_threshold", params["v_threshold"])
    return params


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> FloatNetwork:
    """Read a NIR file into a FloatNetwork."""
    import hashlib

    path = Path(path)
    graph = read_nir(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return from_graph(graph, overrides, source_file=path.name, source_sha256=digest)
